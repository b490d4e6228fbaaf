// CPU-bound scaling: count the primes below 2,000,000 in 64 ranges (the
// Python guide's ProcessPoolExecutor example), serially and on 2 workers.
// Scaling efficiency = serial time / (workers x parallel time).
//
//   coexec   in-process loop vs process_pool{2}.map(count, ranges, chunksize 1)
//   python   the same in Python: a loop vs ProcessPoolExecutor(2).map
//   floor    no pool: two forked processes each count every other range
//            (a static split, nothing exchanged but one pipe write), so its
//            efficiency is what two processes on this machine reach at best
#include <coexec/process_pool.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <utility>
#include <vector>

#include "bench_report.hpp"
#include "python_peer.hpp"

namespace {

bool is_prime(long n) {
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    for (long i = 3; i * i <= n; i += 2) {
        if (n % i == 0) return false;
    }
    return true;
}

long count_primes_in_range(long start, long end) {
    long count = 0;
    for (long n = start; n < end; ++n)
        count += is_prime(n) ? 1 : 0;
    return count;
}

// The same ranges on two forked processes, each taking every other range
// (the ranges grow in cost, so alternating balances them): the machine's
// own two-process scaling, with no pool involved. Returns the total.
long count_on_two_forked_processes(const std::vector<std::pair<long, long>>& ranges) {
    int fds[2][2];
    pid_t pids[2];
    for (int k = 0; k < 2; ++k) {
        if (::pipe(fds[k]) != 0) std::abort();
        pids[k] = ::fork();
        if (pids[k] < 0) std::abort();
        if (pids[k] == 0) {
            long n = 0;
            for (std::size_t i = static_cast<std::size_t>(k); i < ranges.size(); i += 2)
                n += count_primes_in_range(ranges[i].first, ranges[i].second);
            const bool sent = ::write(fds[k][1], &n, sizeof n) == sizeof n;
            ::_exit(sent ? 0 : 1);
        }
        ::close(fds[k][1]);
    }
    long total = 0;
    for (int k = 0; k < 2; ++k) {
        long n = 0;
        if (::read(fds[k][0], &n, sizeof n) != sizeof n) std::abort();
        ::close(fds[k][0]);
        ::waitpid(pids[k], nullptr, 0);
        total += n;
    }
    return total;
}

}  // namespace

int main() {
    coexec::process_pool::prepare();
    const long below = 2'000'000;
    const long parts = 64;
    const std::size_t workers = 2;
    std::vector<std::pair<long, long>> ranges;
    long step = (below + parts - 1) / parts;
    for (long start = 0; start < below; start += step)
        ranges.emplace_back(start, std::min(below, start + step));

    std::vector<double> serial_s;
    std::vector<double> parallel_s;
    std::vector<double> floor_s;  // two forked processes, no pool
    long serial_total = 0;
    long parallel_total = 0;
    {
        coexec::process_pool pool{{.max_workers = workers}};
        pool.submit(&count_primes_in_range, 0L, 10L).get();
        for (int r = 0; r < 3; ++r) {
            auto t0 = coexec_bench::clock::now();
            serial_total = 0;
            for (auto [s, e] : ranges)
                serial_total += count_primes_in_range(s, e);
            auto t1 = coexec_bench::clock::now();
            parallel_total = 0;
            for (long c : pool.map(&count_primes_in_range, ranges, {.chunksize = 1}))
                parallel_total += c;
            auto t2 = coexec_bench::clock::now();
            if (count_on_two_forked_processes(ranges) != serial_total) std::abort();
            auto t3 = coexec_bench::clock::now();
            serial_s.push_back(coexec_bench::seconds_between(t0, t1));
            parallel_s.push_back(coexec_bench::seconds_between(t1, t2));
            floor_s.push_back(coexec_bench::seconds_between(t2, t3));
        }
    }
    if (serial_total != parallel_total) {
        std::fprintf(stderr, "serial and parallel counts differ\n");
        return 1;
    }
    double ser = coexec_bench::median(serial_s);
    double par = coexec_bench::median(parallel_s);
    double eff = ser / (static_cast<double>(workers) * par);
    std::printf("primes below %ld in %ld ranges (%ld primes)\n", below, parts, serial_total);
    const double two = coexec_bench::median(floor_s);
    const double two_eff = ser / (static_cast<double>(workers) * two);
    std::printf("  coexec serial %.3f s, process_pool(2) %.3f s, efficiency %.1f%% (median of 3)\n",
                ser, par, eff * 100);
    std::printf("  floor: two forked processes, static split, no pool %.3f s, efficiency %.1f%%\n",
                two, two_eff * 100);

    auto py = coexec_bench::run_python("process_pool_peers.py", "primes --workers 2");
    if (!py) return 0;
    using coexec_bench::better;
    coexec_bench::report("primes <2M, 64 ranges, 2 workers: scaling efficiency", eff * 100, "%",
                         "Python PPE, same work", (*py)["efficiency"] * 100, better::higher);
    coexec_bench::report("primes <2M, 64 ranges, 2 workers: time", par, "s",
                         "Python PPE, same work", (*py)["parallel_s"], better::lower);
    std::printf(
        "NOTE|primes floor, same run: the 64 ranges on two forked processes with no pool (each "
        "counts every other range) reach %.1f%% efficiency on this machine; process_pool(2) "
        "reaches %.1f%%\n",
        two_eff * 100, eff * 100);
    coexec_bench::note(
        "primes: efficiency = serial time / (2 x time on 2 workers); each side against its own "
        "serial run (C++ vs Python). coexec: median of 3 runs; Python: one run.");
    return 0;
}
