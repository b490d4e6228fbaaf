// Soak: 100,000 tasks through a process pool while one thread SIGKILLs a
// random worker (one up for 10 ms at least) every 1-5 ms and another keeps
// submitting adversarial tasks (tasks that scribble over their channel, forge
// records, running ids and descriptors, truncate their descriptors, flood
// their socket). Every ordinary task must end with its value or with
// worker_died (its worker was killed under it): nothing lost, nothing hung,
// nothing wrong. Throughput is compared with the same 100,000 tasks without
// faults.
//
//   RESULT  throughput under faults against the same run without faults
//   GOAL    lost, hung and wrong tasks: 0
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coexec/process_pool.hpp>
#include <coexec/shared_buffer.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"
#include "process/channel.hpp"
#include "process/launch.hpp"
#include "process_tree.hpp"

namespace {

using namespace std::chrono_literals;
namespace proc = coexec::detail::proc;

constexpr int task_count = 100'000;
// Ordinary tasks in flight at once: a window, so the adversarial tasks are
// dispatched among them rather than behind the whole queue.
constexpr int window = 256;

long long twice(long long x) {
    return 2 * x;
}

// ---- the adversarial tasks (each runs in a worker, against its own channel) ----

std::span<std::byte> channel_mapping() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find("memfd:coexec-channel") == std::string::npos) continue;
        unsigned long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2) break;
        return {reinterpret_cast<std::byte*>(lo), hi - lo};
    }
    return {};
}

proc::channel own_channel() {
    proc::channel_fds f = proc::fixed_channel_fds();
    proc::channel_fds d;
    d.memfd.reset(::fcntl(f.memfd.release(), F_DUPFD_CLOEXEC, 10));
    d.wake.reset(::fcntl(f.wake.release(), F_DUPFD_CLOEXEC, 10));
    d.socket.reset(::fcntl(f.socket.release(), F_DUPFD_CLOEXEC, 10));
    return proc::channel::attach(std::move(d));
}

[[noreturn]] void wait_to_be_killed() {
    std::this_thread::sleep_for(60s);
    std::_Exit(0);
}

int attack(int kind, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const auto id = [] { return own_channel().running_id(); };
    switch (kind) {
        case 0: {  // random bytes over the header page, or the whole mapping
            auto map = channel_mapping();
            if (seed % 2 == 0) map = map.first(std::min<std::size_t>(map.size(), 4096));
            for (auto& b : map)
                b = static_cast<std::byte>(rng());
            return 1;
        }
        case 1: {  // truncate every descriptor 3..10 (sealed: nothing gives way)
            int n = 0;
            for (int fd = 3; fd <= 10; ++fd)
                n += ::ftruncate(fd, 0) == 0;
            return n;
        }
        case 2: {  // a record of an unknown kind
            proc::channel ch = own_channel();
            const std::byte payload[8]{};
            ch.publish_raw(77, 0, sizeof payload, 0, id(), payload, {});
            wait_to_be_killed();
        }
        case 3: {  // init_failed after ready
            proc::channel ch = own_channel();
            const std::byte payload[1]{std::byte{1}};
            ch.send(proc::msg_kind::init_failed, 0, payload);
            wait_to_be_killed();
        }
        case 4: {  // a running id the pool never gave, then a crash
            own_channel().set_running_id(rng() | 1);
            std::abort();
        }
        case 5: {  // a pipe passed off as a shared_buffer
            proc::channel ch = own_channel();
            int p[2];
            if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
            const std::byte payload[18]{std::byte{0}, std::byte{1}};
            ch.send(proc::msg_kind::result, id(), payload, {p, 1});
            wait_to_be_killed();
        }
        case 6: {  // a spilled result whose memfd is smaller than its record says
            proc::channel ch = own_channel();
            const int fd = ::memfd_create("soak", MFD_CLOEXEC | MFD_ALLOW_SEALING);
            if (fd < 0 || ::ftruncate(fd, 4096) != 0) std::abort();
            ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
            ch.publish_raw(static_cast<std::uint16_t>(proc::msg_kind::result),
                           proc::record_flag::spilled, 1u << 20, 1, id(), {}, {&fd, 1});
            wait_to_be_killed();
        }
        default: {  // claims not to have started, then dies (re-run at most twice)
            own_channel().set_running_id(0);
            std::abort();
        }
    }
}
constexpr int attack_kinds = 8;

// ---- the killer ----

int parent_pid() {
    return static_cast<int>(::getppid());
}

struct tally {
    long long ok = 0, died = 0, lost = 0, hung = 0, wrong = 0;
    double seconds = 0;
};

tally run(bool faults, int& kills, long long& attacks, long long& attacks_hung) {
    coexec::process_pool pool{{.max_workers = 2}};
    const int server = pool.submit(parent_pid).get();  // the workers' parent
    std::atomic<bool> stop{false};
    std::thread killer, adversary;
    if (faults) {
        killer = std::thread([&] {
            std::mt19937 rng(2024);
            // Only workers up for min_age: one killed again and again before
            // it is ready is what a crashing initializer looks like, and five
            // in a row break the pool by design.
            constexpr auto min_age = 10ms;
            std::map<int, std::chrono::steady_clock::time_point> first_seen;
            while (!stop.load()) {
                std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 4000));
                const auto now = std::chrono::steady_clock::now();
                std::map<int, std::chrono::steady_clock::time_point> seen;
                std::vector<int> old;
                for (int pid : coexec_test::children_of(server)) {
                    const auto it = first_seen.find(pid);
                    const auto since = it != first_seen.end() ? it->second : now;
                    seen.emplace(pid, since);
                    if (now - since >= min_age) old.push_back(pid);
                }
                first_seen = std::move(seen);
                if (!old.empty() && ::kill(old[rng() % old.size()], SIGKILL) == 0) ++kills;
            }
        });
        adversary = std::thread([&] {
            std::uint64_t seed = 1;
            while (!stop.load()) {
                auto f = pool.submit(attack, static_cast<int>(seed % attack_kinds), seed);
                ++seed;
                ++attacks;
                if (!f.wait_for(60s)) ++attacks_hung;
            }
        });
    }
    const auto t0 = coexec_bench::clock::now();
    std::vector<coexec::future<long long>> fs(task_count);
    tally t;
    auto settle = [&](int i) {
        auto& f = fs[static_cast<std::size_t>(i)];
        if (!f.wait_for(120s)) {
            ++t.hung;
            return;
        }
        try {
            (f.get() == 2LL * i ? t.ok : t.wrong)++;
        } catch (const coexec::worker_died&) {
            ++t.died;
        } catch (const std::exception& e) {
            if (t.lost++ == 0) std::printf("  lost: %s\n", e.what());
        }
        f = {};
    };
    for (int i = 0; i < task_count; ++i) {
        if (i >= window) settle(i - window);
        fs[static_cast<std::size_t>(i)] = pool.submit(twice, static_cast<long long>(i));
    }
    for (int i = std::max(0, task_count - window); i < task_count; ++i)
        settle(i);
    t.seconds = coexec_bench::seconds_between(t0, coexec_bench::clock::now());
    stop.store(true);
    if (killer.joinable()) killer.join();
    if (adversary.joinable()) adversary.join();
    return t;
}

}  // namespace

int main() {
    coexec::process_pool::prepare();  // the fork server, while single-threaded
    int kills = 0;
    long long attacks = 0, attacks_hung = 0;
    const tally clean = run(false, kills, attacks, attacks_hung);
    const tally faulty = run(true, kills, attacks, attacks_hung);
    const double clean_rate = task_count / clean.seconds;
    const double faulty_rate = task_count / faulty.seconds;
    std::printf("soak: %d tasks, 2 workers\n", task_count);
    std::printf(
        "  without faults  %8.0f tasks/s  ok %lld died %lld lost %lld hung %lld wrong %lld\n",
        clean_rate, clean.ok, clean.died, clean.lost, clean.hung, clean.wrong);
    std::printf(
        "  under faults    %8.0f tasks/s  ok %lld died %lld lost %lld hung %lld wrong %lld\n",
        faulty_rate, faulty.ok, faulty.died, faulty.lost, faulty.hung, faulty.wrong);
    std::printf("  %d workers SIGKILLed, %lld adversarial tasks (%lld hung)\n", kills, attacks,
                attacks_hung);
    const char* name = "soak 100k tasks, kills every 1-5 ms + adversarial tasks";
    coexec_bench::report(name, faulty_rate, "tasks/s", "same run without faults", clean_rate,
                         coexec_bench::better::higher);
    const double lost = static_cast<double>(clean.lost + faulty.lost);
    const double hung = static_cast<double>(clean.hung + faulty.hung + attacks_hung);
    const double wrong = static_cast<double>(clean.wrong + faulty.wrong);
    coexec_bench::goal("soak: lost tasks", lost, "<=", 0, "tasks");
    coexec_bench::goal("soak: hung tasks", hung, "<=", 0, "tasks");
    coexec_bench::goal("soak: wrong results", wrong, "<=", 0, "tasks");
    coexec_bench::note("Soak: " + std::to_string(kills) + " workers SIGKILLed and " +
                       std::to_string(attacks) +
                       " adversarial tasks during the faulty run; a task whose worker was killed "
                       "under it ends with worker_died (" +
                       std::to_string(faulty.died) + " of them).");
    return 0;
}
