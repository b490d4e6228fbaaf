// samples/seeds/shared_counter.cpp — a counter shared by processes (Value + Lock).
//
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "Sharing State Between Processes":
//     def increment(counter, lock):
//         for _ in range(100000):
//             with lock:
//                 counter.value += 1
//     counter = multiprocessing.Value("i", 0)
//     lock = multiprocessing.Lock()
//     processes = [multiprocessing.Process(target=increment, args=(counter, lock))
//                  for _ in range(4)]
//     for p in processes: p.start()
//     for p in processes: p.join()
//     print(f"Final count: {counter.value}")      # Final count: 400000
//
// coexec: Value("i", 0) is coexec::shared_value<int>, Lock() is
// coexec::process_mutex; both live in shared memory and cross to a process
// worker by handle, so the four tasks update the same int. `with lock:` is a
// std::lock_guard. (For a single `+= 1`, counter.fetch_add(1) is atomic and
// needs no lock; the lock is for compound updates, as the guide warns.)
#include <cstdio>
#include <mutex>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/process_mutex.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/shared_value.hpp"

namespace {

void increment(coexec::shared_value<int> counter, coexec::process_mutex lock) {
    for (int i = 0; i < 100000; ++i) {
        std::lock_guard guard(lock);
        counter.value() += 1;
    }
}

}  // namespace

int main() {
    coexec::process_pool pool{{.max_workers = 4}};
    coexec::shared_value<int> counter(0);  // multiprocessing.Value("i", 0)
    coexec::process_mutex lock;            // multiprocessing.Lock()

    // processes = [Process(target=increment, args=(counter, lock)) for _ in range(4)]
    std::vector<coexec::future<void>> processes;
    for (int i = 0; i < 4; ++i)
        processes.push_back(pool.submit(&increment, counter, lock));
    for (const auto& p : processes)
        p.get();  // p.join(), and rethrows what the task threw

    std::printf("Final count: %d\n", counter.load());
    return 0;
}
