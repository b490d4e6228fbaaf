// samples/seeds/config_struct.cpp — passing a config struct to workers.
//
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "Passing Data to Workers":
//     @dataclass
//     class Config:
//         threshold: int
//         multiplier: float
//     def process_data(args):
//         data, config = args
//         return [x * config.multiplier for x in data if x > config.threshold]
//     config = Config(threshold=5, multiplier=2.0)
//     data_chunks = [[1, 2, 6, 8], [3, 5, 9, 10], [7, 11, 12, 4]]
//     with multiprocessing.Pool(processes=3) as pool:
//         results = pool.map(process_data, [(chunk, config) for chunk in data_chunks])
//     print(results)        # [[12.0, 16.0], [18.0, 20.0], [14.0, 22.0, 24.0]]
//                           # (no output shown in the seed; this is what it prints)
//
// coexec: the dataclass is a struct with a cereal-style serialize() (pickling's
// counterpart: coexec::serializable checks it at compile time), and the
// (chunk, config) tuples are pairs, applied as the function's two arguments.
#include <string>
#include <utility>
#include <vector>

#include "coexec/process_pool.hpp"
#include "coexec/serializable.hpp"
#include "py_print.hpp"

namespace {

struct config {
    long threshold = 0;
    double multiplier = 1.0;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(threshold, multiplier);
    }
};
static_assert(coexec::serializable<config>);

std::vector<double> process_data(std::vector<long> data, config cfg) {
    std::vector<double> out;
    for (long x : data) {
        if (x > cfg.threshold) out.push_back(static_cast<double>(x) * cfg.multiplier);
    }
    return out;
}

}  // namespace

int main() {
    const config cfg{.threshold = 5, .multiplier = 2.0};
    const std::vector<std::vector<long>> data_chunks{{1, 2, 6, 8}, {3, 5, 9, 10}, {7, 11, 12, 4}};

    coexec::process_pool pool{{.max_workers = 3}};
    std::vector<std::pair<std::vector<long>, config>> args;
    for (const auto& chunk : data_chunks)
        args.emplace_back(chunk, cfg);
    std::vector<std::vector<double>> results = pool.map(&process_data, args).to_vector();
    seeds::print(results);
    return 0;
}
