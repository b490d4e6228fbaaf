// One-at-a-time round trip through a process pool: submit a no-op, get() it,
// repeat; p50 and p99 over 20k trips after 2k warm-up, 2 workers.
//
//   coexec   process_pool{2}: submit(noop).get()
//            the same awaited (co_await) by a coroutine on a thread_pool
//            worker: the supervisor hands the resumption to that pool
//   python   ProcessPoolExecutor(2): submit(noop).result()   (10k trips)
//            multiprocessing.Pool(2): apply(noop)             (10k trips)
//   floor    no pool: a caller thread, a forked process and a relay thread
//            (the supervisor's place) pass a counter through shared memory,
//            each waiting with the spin policy of the party it stands for;
//            and the same without the relay (two parties)
#include <coexec/future.hpp>
#include <coexec/process_pool.hpp>
#include <coexec/task.hpp>
#include <coexec/thread_pool.hpp>

#include <coexec/detail/spin.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <new>
#include <thread>
#include <vector>

#include "bench_report.hpp"
#include "python_peer.hpp"

namespace {

int noop() {
    return 1;
}

// One cache line per hop, so each hand-off is one line's transfer.
struct alignas(64) hop {
    std::atomic<std::uint64_t> seq{0};
};
struct relay_lines {
    hop request, result, done;
    std::atomic<bool> abandoned{false};  // a party gave up: the others stop too
};

// Waits for `want`, or gives up (false) once the run is abandoned or its
// deadline passes (a party that died must not hang the bench).
bool wait_for(const hop& h, std::uint64_t want, coexec::detail::spin_policy policy,
              relay_lines& lines, coexec_bench::clock::time_point deadline) {
    while (!coexec::detail::spin_until(
        [&] { return h.seq.load(std::memory_order_acquire) == want; }, policy)) {
        if (lines.abandoned.load(std::memory_order_relaxed) ||
            coexec_bench::clock::now() > deadline) {
            lines.abandoned.store(true, std::memory_order_relaxed);
            return false;
        }
    }
    return true;
}

// The round trip's floor on this machine: the same hops as the pool's
// (caller → worker process → supervisor thread → caller, or caller → worker
// → caller with two parties) with nothing but the waiting. The caller waits
// with spin::future_wait, as get() does once its waits are this long.
// Empty if it could not be measured.
std::vector<double> relay_floor(bool with_relay, std::size_t warmup, std::size_t n) {
    namespace spin = coexec::detail::spin;
    void* mem = ::mmap(nullptr, sizeof(relay_lines), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return {};
    auto* lines = new (mem) relay_lines{};
    const std::uint64_t trips = warmup + n;
    const auto deadline = coexec_bench::clock::now() + std::chrono::seconds(30);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::munmap(mem, sizeof(relay_lines));
        return {};
    }
    if (pid == 0) {
        for (std::uint64_t i = 1; i <= trips; ++i) {
            if (!wait_for(lines->request, i, spin::process_worker, *lines, deadline)) ::_exit(1);
            lines->result.seq.store(i, std::memory_order_release);
        }
        ::_exit(0);
    }
    std::thread relay;
    if (with_relay) {
        relay = std::thread([&] {
            for (std::uint64_t i = 1; i <= trips; ++i) {
                if (!wait_for(lines->result, i, spin::process_supervisor, *lines, deadline)) return;
                lines->done.seq.store(i, std::memory_order_release);
            }
        });
    }
    const hop& back = with_relay ? lines->done : lines->result;
    std::vector<double> ns;
    ns.reserve(n);
    for (std::uint64_t i = 1; i <= trips; ++i) {
        auto t0 = coexec_bench::clock::now();
        lines->request.seq.store(i, std::memory_order_release);
        if (!wait_for(back, i, spin::future_wait, *lines, deadline)) break;
        auto t1 = coexec_bench::clock::now();
        if (i > warmup)
            ns.push_back(static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
    if (relay.joinable()) relay.join();
    if (lines->abandoned.load()) {
        ::kill(pid, SIGKILL);
        ns.clear();
    }
    ::waitpid(pid, nullptr, 0);
    ::munmap(mem, sizeof(relay_lines));
    return ns;
}

}  // namespace

int main() {
    coexec::process_pool::prepare();  // the fork server, while single-threaded
    const std::size_t warmup = 2'000;
    const std::size_t n = 20'000;

    std::vector<double> ns;
    std::vector<double> awaited;
    {
        coexec::process_pool pool{{.max_workers = 2}};
        for (std::size_t i = 0; i < warmup; ++i)
            pool.submit(&noop).get();
        ns.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            auto t0 = coexec_bench::clock::now();
            pool.submit(&noop).get();
            auto t1 = coexec_bench::clock::now();
            ns.push_back(static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
        }
        coexec::thread_pool threads{{.max_workers = 1}};
        awaited = threads
                      .submit([&]() -> coexec::task<std::vector<double>> {
                          std::vector<double> out;
                          out.reserve(n);
                          for (std::size_t i = 0; i < warmup + n; ++i) {
                              auto t0 = coexec_bench::clock::now();
                              co_await pool.submit(&noop);
                              auto t1 = coexec_bench::clock::now();
                              if (i >= warmup)
                                  out.push_back(static_cast<double>(
                                      std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                                          .count()));
                          }
                          co_return out;
                      })
                      .get();
    }
    auto three = relay_floor(true, warmup, n);
    auto two = relay_floor(false, warmup, n);
    auto s = coexec_bench::summarize_ns(ns);
    auto a = coexec_bench::summarize_ns(awaited);
    std::printf("process pool one-at-a-time round trip, 2 workers\n");
    std::printf("  coexec process_pool submit+get     p50 %8.2f us  p99 %8.2f us  mean %8.2f us\n",
                s.p50_us, s.p99_us, s.mean_us);
    std::printf("  co_await from a thread_pool worker p50 %8.2f us  p99 %8.2f us  mean %8.2f us\n",
                a.p50_us, a.p99_us, a.mean_us);
    if (three.empty() || two.empty()) {
        std::printf("  floor: not measured (fork failed or a party stopped answering)\n");
    } else {
        auto f3 = coexec_bench::summarize_ns(three);
        auto f2 = coexec_bench::summarize_ns(two);
        std::printf(
            "  floor: caller, process, relay      p50 %8.2f us  p99 %8.2f us  (coexec %.2fx)\n",
            f3.p50_us, f3.p99_us, s.p50_us / f3.p50_us);
        std::printf("  floor: caller, process (no relay)  p50 %8.2f us  p99 %8.2f us\n", f2.p50_us,
                    f2.p99_us);
        char floor_note[400];
        std::snprintf(floor_note, sizeof floor_note,
                      "Process round trip floor, same run: a caller thread, a forked process and "
                      "a relay thread passing a counter through shared memory with the pool's "
                      "spin policies, nothing else: p50 %.2f us, p99 %.2f us (coexec's p50 is "
                      "%.2fx that); without the relay (two parties): p50 %.2f us.",
                      f3.p50_us, f3.p99_us, s.p50_us / f3.p50_us, f2.p50_us);
        coexec_bench::note(floor_note);
    }

    coexec_bench::goal("round trip p50, process_pool", s.p50_us, "<=", 5, "us");
    coexec_bench::goal("round trip p99, process_pool", s.p99_us, "<=", 10, "us");

    auto py = coexec_bench::run_python("process_pool_peers.py",
                                       "round_trip --workers 2 --n 10000 --warmup 500");
    if (!py) return 0;
    using coexec_bench::better;
    const char* p50 = "round trip p50, process_pool";
    const char* p99 = "round trip p99, process_pool";
    coexec_bench::report(p50, s.p50_us, "us", "Python ProcessPoolExecutor", (*py)["ppe_p50_us"],
                         better::lower);
    coexec_bench::report(p50, s.p50_us, "us", "Python multiprocessing.Pool.apply",
                         (*py)["pool_p50_us"], better::lower);
    coexec_bench::report(p99, s.p99_us, "us", "Python ProcessPoolExecutor", (*py)["ppe_p99_us"],
                         better::lower);
    coexec_bench::report(p99, s.p99_us, "us", "Python multiprocessing.Pool.apply",
                         (*py)["pool_p99_us"], better::lower);
    coexec_bench::note(
        "Process-pool round trips: coexec 20k after 2k warm-up; Python 10k after 500 "
        "(Python 3, default start method).");
    return 0;
}
