// samples/seeds/as_completed.cpp — results in completion order with as_completed().
//
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "Working with as_completed()":
//     def process_item(item):
//         time.sleep(0.5)
//         return item * 2
//     items = [1, 2, 3, 4, 5]
//     with ProcessPoolExecutor(max_workers=3) as executor:
//         futures = {executor.submit(process_item, item): item for item in items}
//         for future in as_completed(futures):
//             original = futures[future]
//             result = future.result()
//             print(f"{original} -> {result}")
//     # Output (completion order, not submission order):
//     # 2 -> 4
//     # 4 -> 8
//     # 1 -> 2
//     # 3 -> 6
//     # 5 -> 10
//
// coexec: futures are hashable, so the dict is a std::unordered_map keyed by
// coexec::future<long>, and coexec::as_completed() takes the map (its keys)
// just as Python's does. The order of the lines varies from run to run.
#include <chrono>
#include <cstdio>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coexec/as_completed.hpp"
#include "coexec/future.hpp"
#include "coexec/process_pool.hpp"

namespace {

long process_item(long item) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return item * 2;
}

}  // namespace

int main() {
    const std::vector<long> items{1, 2, 3, 4, 5};

    coexec::process_pool executor{{.max_workers = 3}};
    std::unordered_map<coexec::future<long>, long> futures;
    for (long item : items)
        futures.emplace(executor.submit(&process_item, item), item);

    for (const coexec::future<long>& future : coexec::as_completed(futures)) {
        long original = futures.at(future);
        long result = future.get();
        std::printf("%ld -> %ld\n", original, result);
    }
    return 0;
}
