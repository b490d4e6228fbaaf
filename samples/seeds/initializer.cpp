// samples/seeds/initializer.cpp — an initializer that loads a resource once per worker.
//
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "Using Initializer to Set Up Workers":
//     worker_config = None
//     def init_worker(config_dict):
//         global worker_config
//         worker_config = config_dict
//     def process_item(item):
//         return item * worker_config["multiplier"]
//     config = {"multiplier": 10}
//     with multiprocessing.Pool(processes=3, initializer=init_worker,
//                               initargs=(config,)) as pool:
//         results = pool.map(process_item, [1, 2, 3])
//     print(results)        # [10, 20, 30]   (no output shown in the seed)
//     # "This is useful for loading expensive resources once per worker."
//
// coexec: process_pool_options::initializer is a plain `void()` function that
// runs once in every worker before its first task; what it sets up lives in
// the worker's globals, as in Python. There is no `initargs`: the initializer
// loads the resource itself (here it parses a config text standing in for a
// file or a model); a value computed by the parent at run time is better sent
// with the tasks (see config_struct.cpp). If the initializer throws, the pool
// breaks and the tasks fail with coexec::broken_pool.
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "coexec/process_pool.hpp"
#include "py_print.hpp"

namespace {

// The resource, as it would be read from disk: `config = {"multiplier": 10}`.
constexpr const char* config_text = "multiplier 10\n";

// Each worker process has its own copy, filled by init_worker.
std::map<std::string, long> worker_config;

void init_worker() {
    std::istringstream in(config_text);
    std::string key;
    long value = 0;
    while (in >> key >> value)
        worker_config[key] = value;
}

long process_item(long item) {
    if (worker_config.empty())
        throw std::logic_error("process_item: the worker was not initialized");
    return item * worker_config.at("multiplier");
}

}  // namespace

int main() {
    coexec::process_pool pool{{.max_workers = 3, .initializer = &init_worker}};
    const std::vector<long> items{1, 2, 3};
    std::vector<long> results = pool.map(&process_item, items).to_vector();
    seeds::print(results);
    return 0;
}
