// samples/seeds/executor_submit.cpp — ProcessPoolExecutor.submit and Future.result().
//
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "Using submit() for Individual Tasks":
//     def heavy_computation(n):
//         time.sleep(1)
//         return n * n
//     with ProcessPoolExecutor(max_workers=2) as executor:
//         future1 = executor.submit(heavy_computation, 10)
//         future2 = executor.submit(heavy_computation, 20)
//         future3 = executor.submit(heavy_computation, 30)
//         print(future1.result())        # 100
//         print(future2.result())        # 400
//         print(future3.result())        # 900
//
// coexec: executor.submit(f, x) returns a coexec::future<long>; .get() is
// .result(). The simulated work sleeps 0.5 s instead of 1 s (two rounds on two
// workers: about a second).
#include <chrono>
#include <cstdio>
#include <thread>

#include "coexec/future.hpp"
#include "coexec/process_pool.hpp"

namespace {

long heavy_computation(long n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // time.sleep(1), shortened
    return n * n;
}

}  // namespace

int main() {
    coexec::process_pool executor{{.max_workers = 2}};
    coexec::future<long> future1 = executor.submit(&heavy_computation, 10L);
    coexec::future<long> future2 = executor.submit(&heavy_computation, 20L);
    coexec::future<long> future3 = executor.submit(&heavy_computation, 30L);

    std::printf("%ld\n", future1.get());
    std::printf("%ld\n", future2.get());
    std::printf("%ld\n", future3.get());
    return 0;
}
