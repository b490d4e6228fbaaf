// Helper for the "parent SIGKILLed" fault tests: makes a process_pool (whose
// start method is argv[1]: fork_server, the default, fork or spawn), prints
// its worker pids (one per line, then "ready"), and waits to be killed.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coexec/process_pool.hpp"

namespace {
int pid_after_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return static_cast<int>(::getpid());
}
int sleep_forever() {
    for (;;)
        std::this_thread::sleep_for(std::chrono::seconds(1));
}
}  // namespace

int main(int argc, char** argv) {
    const std::string method = argc > 1 ? argv[1] : "fork_server";
    coexec::process_pool pool{{.max_workers = 3,
                               .start = method == "fork"    ? coexec::start_method::fork
                                        : method == "spawn" ? coexec::start_method::spawn
                                                            : coexec::start_method::fork_server}};
    // Workers after the first start in the background: all three are up
    // first, so that one slow task per worker at once lands on each.
    for (int i = 0; i < 30'000 && pool.stats().workers_alive < 3; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 3; ++i)
        fs.push_back(pool.submit(pid_after_ms, 200));
    std::set<int> pids;
    for (auto& f : fs)
        pids.insert(f.get());
    for (int pid : pids)
        std::printf("%d\n", pid);
    std::printf("ready\n");
    std::fflush(stdout);
    auto busy = pool.submit(sleep_forever);  // a worker mid-task when we are killed
    for (;;)
        std::this_thread::sleep_for(std::chrono::seconds(1));
}
