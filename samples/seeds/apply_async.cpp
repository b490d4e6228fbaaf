// samples/seeds/apply_async.cpp — Pool.apply_async for fire-and-forget tasks.
//
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "Pool with apply_async()":
//     def notify(email):
//         time.sleep(0.5)
//         print(f"Sent: {email}")
//     emails = ["a@test.com", "b@test.com", "c@test.com"]
//     with multiprocessing.Pool(processes=2) as pool:
//         async_results = [pool.apply_async(notify, (email,)) for email in emails]
//         for ar in async_results:
//             ar.get()
//     print("All notifications sent")
//     # Sent: a@test.com / Sent: b@test.com / Sent: c@test.com / All notifications sent
//     # (no output shown in the seed; the first two lines may swap)
//
// coexec: apply_async is submit, returning a coexec::future<void>; ar.get()
// waits (and would rethrow the task's exception). The "Sent:" lines are
// printed by the worker processes, which share the program's stdout: a worker
// flushes what it prints, as it leaves without running exit handlers.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/process_pool.hpp"

namespace {

void notify(std::string email) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::printf("Sent: %s\n", email.c_str());
    std::fflush(stdout);
}

}  // namespace

int main() {
    const std::vector<std::string> emails{"a@test.com", "b@test.com", "c@test.com"};
    {
        coexec::process_pool pool{{.max_workers = 2}};
        std::vector<coexec::future<void>> async_results;
        for (const auto& email : emails)
            async_results.push_back(pool.submit(&notify, email));
        for (const auto& ar : async_results)
            ar.get();
    }
    std::printf("All notifications sent\n");
    return 0;
}
