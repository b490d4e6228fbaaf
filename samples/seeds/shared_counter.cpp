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
// NOT IMPLEMENTED YET: coexec::shared_value<T> and coexec::process_mutex
// (API.md section 5, Python's Value and Lock) do not exist in
// include/coexec/ yet. This program stands in with what exists: a
// coexec::shared_buffer (memfd, the same pages in every worker) holding one
// int, incremented with std::atomic_ref — the atomic operation shared_value
// promises for lock-free types, so no lock is needed for `+= 1`. A compound
// update (read, compute, write) would need process_mutex. The program prints
// a note saying so first.
#include <atomic>
#include <cstdio>
#include <new>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/shared_buffer.hpp"

namespace {

std::atomic_ref<int> value_of(const coexec::shared_buffer& counter) {
    return std::atomic_ref<int>(*std::launder(reinterpret_cast<int*>(counter.data())));
}

// Python: `with lock: counter.value += 1`, here one atomic add on shared memory.
void increment(coexec::shared_buffer counter) {
    std::atomic_ref<int> value = value_of(counter);
    for (int i = 0; i < 100000; ++i)
        value.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

int main() {
    std::printf(
        "NOTE: coexec::shared_value and coexec::process_mutex are not implemented yet; "
        "this sample uses a shared_buffer and std::atomic_ref<int> in their place.\n");

    coexec::process_pool pool{{.max_workers = 4}};
    coexec::shared_buffer counter(sizeof(int));                // multiprocessing.Value("i", 0)
    static_assert(std::atomic_ref<int>::is_always_lock_free);  // address-free across processes
    new (counter.data()) int(0);

    std::vector<coexec::future<void>> processes;
    for (int i = 0; i < 4; ++i)
        processes.push_back(pool.submit(&increment, counter));  // the handle, not a copy
    for (const auto& p : processes)
        p.get();  // p.join()

    std::printf("Final count: %d\n", value_of(counter).load());
    return 0;
}
