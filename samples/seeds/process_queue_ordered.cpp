// samples/seeds/process_queue_ordered.cpp — Process + Queue, results put back in order.
//
// Seed 002 (Q&A "Process + Queue vs Pool"):
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
// coexec: each mp.Process is one task on a 4-worker process_pool; the Queue,
// filled in completion order, is as_completed() over the futures; sorting the
// (pos, string) tuples puts them back in order. The third line is the coexec
// way (and Pool.map's): futures read in submission order need no position tag.
// (API.md's shared_queue<T>, a cross-process queue, is not implemented yet;
// a queue is not needed for returning results anyway.)
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "coexec/as_completed.hpp"
#include "coexec/future.hpp"
#include "coexec/process_pool.hpp"
#include "py_print.hpp"

namespace {

/// Generates a random string of numbers, lower- and uppercase chars.
std::pair<long, std::string> rand_string(long length, long pos) {
    static constexpr std::string_view chars =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::mt19937 rng{std::random_device{}()};  // per call: workers share no state
    std::uniform_int_distribution<std::size_t> pick(0, chars.size() - 1);
    std::string rand_str;
    for (long i = 0; i < length; ++i)
        rand_str += chars[pick(rng)];
    return {pos, rand_str};
}

}  // namespace

int main() {
    coexec::process_pool pool{{.max_workers = 4}};

    // processes = [mp.Process(target=rand_string, args=(5, x, output)) for x in range(4)]
    std::vector<coexec::future<std::pair<long, std::string>>> processes;
    for (long x = 0; x < 4; ++x)
        processes.push_back(pool.submit(&rand_string, 5L, x));

    // results = [output.get() for p in processes]: in the order they finished
    std::vector<std::pair<long, std::string>> results;
    for (const auto& f : coexec::as_completed(processes))
        results.push_back(f.get());
    seeds::print(results);

    // results.sort(); results = [r[1] for r in results]
    std::sort(results.begin(), results.end());
    std::vector<std::string> strings;
    for (auto& r : results)
        strings.push_back(r.second);
    seeds::print(strings);

    // Without tags: the futures, in submission order.
    std::vector<std::string> in_order;
    for (const auto& f : processes)
        in_order.push_back(f.get().second);
    seeds::print(in_order);
    return 0;
}
