// samples/seeds/process_queue_ordered.cpp — Process + Queue, results put back in order.
//
// Seed 002 (Q&A "Process + Queue vs Pool"):
//     output = mp.Queue()
//     def rand_string(length, pos, output):
//         rand_str = ''.join(random.choice(string.ascii_lowercase + string.ascii_uppercase
//                                          + string.digits) for i in range(length))
//         output.put((pos, rand_str))
//     processes = [mp.Process(target=rand_string, args=(5, x, output)) for x in range(4)]
//     for p in processes: p.start()
//     for p in processes: p.join()
//     results = [output.get() for p in processes]
//     print(results)        # [(1, '5lUya'), (3, 'QQvLr'), (0, 'KAQo6'), (2, 'nj6Q0')]
//     results.sort()
//     results = [r[1] for r in results]
//     print(results)        # ['KAQo6', '5lUya', 'nj6Q0', 'QQvLr']
// (The seed's code says `print(processes)` for the first line; the output it
// shows is that of `print(results)`.) The strings are random, so they differ
// on every run; the order of the first line varies too.
//
// coexec: mp.Queue is coexec::shared_queue<T> (bounded, across processes,
// handed to the worker as an argument); each mp.Process is one task on a
// 4-worker process_pool, and p.join() is waiting for its future. Sorting the
// (pos, string) tuples puts the results back in order. (Pool.map, or reading
// futures in submission order, gives that order without tags: pool_map.cpp.)
#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/shared_queue.hpp"
#include "py_print.hpp"

namespace {

using tagged_string = std::pair<long, std::string>;

/// Generates a random string of numbers, lower- and uppercase chars.
void rand_string(long length, long pos, coexec::shared_queue<tagged_string> output) {
    static constexpr std::string_view chars =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::mt19937 rng{std::random_device{}()};  // seeded per call: workers share no state
    std::uniform_int_distribution<std::size_t> pick(0, chars.size() - 1);
    std::string rand_str;
    for (long i = 0; i < length; ++i)
        rand_str += chars[pick(rng)];
    output.push({pos, rand_str});
}

}  // namespace

int main() {
    coexec::process_pool pool{{.max_workers = 4}};
    coexec::shared_queue<tagged_string> output(/*capacity=*/4);  // output = mp.Queue()

    // processes = [mp.Process(target=rand_string, args=(5, x, output)) for x in range(4)]
    std::vector<coexec::future<void>> processes;
    for (long x = 0; x < 4; ++x)
        processes.push_back(pool.submit(&rand_string, 5L, x, output));
    for (const auto& p : processes)
        p.get();  // p.join()

    // results = [output.get() for p in processes]
    std::vector<tagged_string> results;
    for (std::size_t i = 0; i < processes.size(); ++i)
        results.push_back(output.pop());
    seeds::print(results);

    // results.sort(); results = [r[1] for r in results]
    std::sort(results.begin(), results.end());
    std::vector<std::string> strings;
    for (auto& r : results)
        strings.push_back(r.second);
    seeds::print(strings);
    return 0;
}
