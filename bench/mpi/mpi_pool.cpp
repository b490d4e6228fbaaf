// mpi_pool against mpi4py.futures' MPIPoolExecutor, in the same run:
//
//   round trip    one task at a time, submit then get(), 1 worker rank (p50)
//   map           per task through map, unchunked (chunksize 1) and chunksize 100
//   primes        primes below 2M in 64 ranges on 2 worker ranks, one task at a time per rank
//
// Run plainly, this is the driver: it runs itself under
// `mpirun --oversubscribe --bind-to none -n N` with `--measure <what>` (rank 0
// measures, prints MEASURE lines; the other ranks serve), then the mpi4py peer
// (`/usr/bin/python3 -m mpi4py.futures bench/python/mpi_peer.py <what>`, Debian's
// python3-mpi4py) with the same settings, and reports the ratios. Both sides
// get the same Open MPI environment (ob1, shared memory, run as root allowed).
#include <coexec/mpi_pool.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench_report.hpp"

#ifndef COEXEC_MPIEXEC
#error "COEXEC_MPIEXEC must name mpiexec (set by bench/mpi/CMakeLists.txt)"
#endif

namespace {

using figures = std::map<std::string, double>;

int noop() {
    return 1;
}
long square(long x) {
    return x * x;
}
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

void measure_line(const char* key, double value) {
    std::printf("MEASURE|%s|%.6g\n", key, value);
    std::fflush(stdout);
}

coexec::mpi_isolation isolation_from(const char* name) {
    return std::strcmp(name, "thread") == 0 ? coexec::mpi_isolation::thread
                                            : coexec::mpi_isolation::process;
}

void round_trip(coexec::mpi_environment& env, coexec::mpi_isolation iso) {
    coexec::mpi_pool pool{env, {.slots_per_rank = 1, .isolation = iso}};
    for (int i = 0; i < 2000; ++i)
        pool.submit(noop).get();
    std::vector<double> ns;
    for (int i = 0; i < 20000; ++i) {
        auto t0 = coexec_bench::clock::now();
        pool.submit(noop).get();
        ns.push_back(static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(coexec_bench::clock::now() - t0)
                .count()));
    }
    auto s = coexec_bench::summarize_ns(ns);
    measure_line("round_trip_p50_us", s.p50_us);
    measure_line("round_trip_p99_us", s.p99_us);
}

void map_per_task(coexec::mpi_environment& env, coexec::mpi_isolation iso) {
    coexec::mpi_pool pool{env, {.slots_per_rank = 1, .isolation = iso}};
    auto per_task = [&](long n, std::size_t chunk) {
        std::vector<long> in(static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i)
            in[static_cast<std::size_t>(i)] = i;
        (void)pool.map(square, in, {.chunksize = chunk}).to_vector();  // warm-up
        std::vector<double> us;
        for (int r = 0; r < 3; ++r) {
            auto t0 = coexec_bench::clock::now();
            auto out = pool.map(square, in, {.chunksize = chunk}).to_vector();
            auto t1 = coexec_bench::clock::now();
            if (out.back() != (n - 1) * (n - 1)) std::abort();
            us.push_back(coexec_bench::seconds_between(t0, t1) * 1e6 / static_cast<double>(n));
        }
        return coexec_bench::median(us);
    };
    measure_line("map_chunk1_us", per_task(20'000, 1));
    measure_line("map_chunk100_us", per_task(200'000, 100));
}

void primes(coexec::mpi_environment& env, coexec::mpi_isolation iso) {
    const long below = 2'000'000;
    const long parts = 64;
    std::vector<std::pair<long, long>> ranges;
    const long step = (below + parts - 1) / parts;
    for (long start = 0; start < below; start += step)
        ranges.emplace_back(start, std::min(below, start + step));
    coexec::mpi_pool pool{env, {.slots_per_rank = 1, .isolation = iso}};
    pool.submit(count_primes_in_range, 0L, 10L).get();
    std::vector<double> s;
    long total = 0;
    for (int r = 0; r < 3; ++r) {
        auto t0 = coexec_bench::clock::now();
        total = 0;
        for (long c : pool.map(count_primes_in_range, ranges, {.chunksize = 1}))
            total += c;
        s.push_back(coexec_bench::seconds_between(t0, coexec_bench::clock::now()));
    }
    auto t0 = coexec_bench::clock::now();
    long serial = 0;
    for (auto [a, b] : ranges)
        serial += count_primes_in_range(a, b);
    const double serial_s = coexec_bench::seconds_between(t0, coexec_bench::clock::now());
    if (serial != total) std::abort();
    measure_line("primes_s", coexec_bench::median(s));
    measure_line("primes_serial_s", serial_s);
    measure_line("primes_total", static_cast<double>(total));
}

int measure(int argc, char** argv) {
    coexec::mpi_environment env(argc, argv);
    if (env.is_worker()) return env.serve();
    const char* what = argv[2];
    const auto iso = isolation_from(argc > 3 ? argv[3] : "process");
    if (std::strcmp(what, "round_trip") == 0) round_trip(env, iso);
    if (std::strcmp(what, "map") == 0) map_per_task(env, iso);
    if (std::strcmp(what, "primes") == 0) primes(env, iso);
    return 0;
}

// ---- the driver ----

// Runs `command`, passing other lines through to stderr; returns the
// figures of the lines starting with `prefix` ("MEASURE|" or "PY|").
std::optional<figures> run_job(const std::string& command, const char* prefix) {
    std::fflush(stdout);
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) return std::nullopt;
    figures out;
    char line[1024];
    const std::size_t n = std::strlen(prefix);
    while (std::fgets(line, sizeof line, p) != nullptr) {
        if (std::strncmp(line, prefix, n) != 0) {
            std::fputs(line, stderr);
            continue;
        }
        const char* key = line + n;
        const char* bar = std::strchr(key, '|');
        if (bar == nullptr) continue;
        out[std::string(key, bar)] = std::strtod(bar + 1, nullptr);
    }
    if (::pclose(p) != 0) {
        std::printf("NOTE|this job failed, its rows are missing: %s\n", command.c_str());
        return std::nullopt;
    }
    return out;
}

std::string mpirun(int ranks) {
    return std::string(COEXEC_MPIEXEC) + " --oversubscribe --bind-to none -n " +
           std::to_string(ranks) + " ";
}

int drive(const char* self) {
    // The same Open MPI settings for both sides: allowed as root (CI), the
    // ob1 layer over shared memory (self, vader) and TCP.
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    ::setenv("OMPI_MCA_pml", "ob1", 0);
    ::setenv("OMPI_MCA_btl", "self,vader,tcp", 0);
    const std::string me = std::string("'") + self + "' --measure ";
    const bool have_py =
        std::system("/usr/bin/python3 -c 'import mpi4py.futures' >/dev/null 2>&1") == 0;
    const std::string py =
        "/usr/bin/python3 -m mpi4py.futures '" COEXEC_BENCH_PYTHON_DIR "/mpi_peer.py' ";
    if (!have_py) {
        std::printf(
            "NOTE|mpi4py is missing (Debian: python3-mpi4py, for /usr/bin/python3): "
            "the mpi4py.futures rows were skipped.\n");
    }
    auto job = [&](int ranks, const std::string& what, const char* iso) {
        return run_job(mpirun(ranks) + me + what + " " + iso, "MEASURE|");
    };
    auto peer = [&](int ranks, const std::string& what) -> std::optional<figures> {
        if (!have_py) return std::nullopt;
        return run_job(mpirun(ranks) + py + what, "PY|");
    };
    using coexec_bench::better;
    const char* mpi4py = "mpi4py.futures MPIPoolExecutor";

    auto rt = job(2, "round_trip", "process");
    auto rt_thread = job(2, "round_trip", "thread");
    auto rt_py = peer(2, "round_trip");
    if (rt) {
        std::printf("mpi_pool round trip, 1 worker rank: p50 %.1f us (process isolation)",
                    (*rt)["round_trip_p50_us"]);
        if (rt_thread) std::printf(", %.1f us (thread)", (*rt_thread)["round_trip_p50_us"]);
        std::printf("\n");
    }
    if (rt && rt_py) {
        coexec_bench::report("mpi_pool round trip p50, unchunked", (*rt)["round_trip_p50_us"], "us",
                             mpi4py, (*rt_py)["round_trip_p50_us"], better::lower);
        const double ratio = (*rt_py)["round_trip_p50_us"] / (*rt)["round_trip_p50_us"];
        coexec_bench::goal("mpi_pool round trip vs mpi4py.futures", ratio, ">=", 10, "x");
        std::printf("goal: unchunked >= 10x mpi4py.futures: %.1fx, %s\n", ratio,
                    ratio >= 10 ? "met" : "not met in this run");
    }
    if (rt_thread && rt_py) {
        coexec_bench::report("mpi_pool round trip p50, unchunked, thread isolation",
                             (*rt_thread)["round_trip_p50_us"], "us", mpi4py,
                             (*rt_py)["round_trip_p50_us"], better::lower);
    }

    auto mp = job(2, "map", "process");
    auto mp_py = peer(2, "map");
    if (mp) {
        std::printf(
            "mpi_pool map per task, 1 worker rank: %.2f us unchunked, %.3f us chunksize 100\n",
            (*mp)["map_chunk1_us"], (*mp)["map_chunk100_us"]);
    }
    if (mp && mp_py) {
        coexec_bench::report("mpi_pool map per task, chunksize 1", (*mp)["map_chunk1_us"], "us",
                             mpi4py, (*mp_py)["map_chunk1_us"], better::lower);
        coexec_bench::report("mpi_pool map per task, chunksize 100", (*mp)["map_chunk100_us"], "us",
                             mpi4py, (*mp_py)["map_chunk100_us"], better::lower);
        const double ratio = (*mp_py)["map_chunk100_us"] / (*mp)["map_chunk100_us"];
        coexec_bench::goal("mpi_pool map chunksize 100 vs mpi4py.futures", ratio, ">=", 2, "x");
        std::printf("goal: chunksize 100 >= 2x mpi4py.futures: %.1fx, %s\n", ratio,
                    ratio >= 2 ? "met" : "not met in this run");
    }

    auto pr = job(3, "primes", "process");
    auto pr_py = peer(3, "primes");
    if (pr) {
        std::printf(
            "mpi_pool primes below 2M in 64 ranges, 2 worker ranks: %.3f s (serial on "
            "rank 0: %.3f s)\n",
            (*pr)["primes_s"], (*pr)["primes_serial_s"]);
    }
    if (pr && pr_py) {
        coexec_bench::report("mpi_pool primes <2M, 64 ranges, 2 worker ranks", (*pr)["primes_s"],
                             "s", mpi4py, (*pr_py)["primes_s"], better::lower);
    }
    coexec_bench::note(
        "mpi_pool: each figure from its own MPI job (mpirun --oversubscribe --bind-to none, "
        "OMPI_MCA_pml=ob1, btl self,vader,tcp), rank 0 plus 1 worker rank (2 for primes), 1 slot "
        "per rank, process isolation unless said; the mpi4py.futures peer runs as "
        "`mpirun ... /usr/bin/python3 -m mpi4py.futures` with the same settings. Round trip: "
        "p50 of 20k (mpi4py: 2k); map: median of 3 runs of 20k (chunksize 1) and 200k "
        "(chunksize 100) squares; primes: median of 3 runs.");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 2 && std::strcmp(argv[1], "--measure") == 0) return measure(argc, argv);
    return drive(argv[0]);
}
