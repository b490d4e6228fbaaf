// Helper for the spawn-fallback warning tests: makes two process pools and
// runs a task on each, in the way argv[1] says, then exits 0 if the tasks ran.
//   late      threads already run and prepare() was never called (fallback)
//   prepared  prepare() first, then threads, then the pools (no fallback)
//   explicit  threads, then pools that ask for spawn themselves (no fallback)
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "coexec/process_pool.hpp"

namespace {
int twice(int x) {
    return 2 * x;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const bool prepared = std::strcmp(argv[1], "prepared") == 0;
    const bool explicit_spawn = std::strcmp(argv[1], "explicit") == 0;
    if (prepared && !coexec::process_pool::prepare()) return 3;
    std::atomic<bool> stop{false};
    std::thread other([&] {
        while (!stop)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    int sum = 0;
    for (int i = 0; i < 2; ++i) {
        coexec::process_pool_options o{.max_workers = 1};
        if (explicit_spawn) o.start = coexec::start_method::spawn;
        coexec::process_pool pool{o};
        sum += pool.submit(twice, 21).get();
    }
    stop = true;
    other.join();
    return sum == 84 ? 0 : 1;
}
