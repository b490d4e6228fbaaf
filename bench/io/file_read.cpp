// Reading a large file in 64 KiB blocks with 32 reads in flight.
//
//   coexec    thread_pool{2}: 32 coroutines, each `co_await io::read(fd, buf,
//             offset)` on every 32nd block (32 reads in flight, 2 threads)
//   blocking  thread_pool{32}: 32 tasks, each a loop of blocking pread on every
//             32nd block (32 in flight, one thread each); and thread_pool{2}
//             (the same 2 threads as coexec, 2 reads in flight)
//   floor     no pool and no io_uring: 2 plain threads, each a loop of
//             blocking pread on every 2nd block, each cycling through 16
//             buffers (the 32 buffers of 32 reads in flight, on 2 cores):
//             what the copy into that many buffers costs on this machine
//
// Each side 5 times, alternating, and the median of each. Twice: "cold"
// (page cache dropped for the file with POSIX_FADV_DONTNEED before each run:
// device reads) and "cached" (the file in the page cache: syscall and copy
// costs only). The file is 1 GiB in $TMPDIR (default /tmp);
// COEXEC_BENCH_FILE_MIB=<n> makes it smaller where disk is tight.
#include <fcntl.h>
#include <unistd.h>

#include <coexec/future.hpp>
#include <coexec/io.hpp>
#include <coexec/task.hpp>
#include <coexec/thread_pool.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"

namespace {

using coexec_bench::clock;

constexpr std::size_t block = 64 * 1024;
constexpr std::size_t in_flight = 32;

struct temp_file {
    std::string path;
    int fd = -1;
    std::size_t size = 0;
    explicit temp_file(std::size_t bytes) : size(bytes) {
        const char* dir = std::getenv("TMPDIR");
        path = std::string(dir != nullptr ? dir : "/tmp") + "/coexec-bench-io-XXXXXX";
        fd = ::mkstemp(path.data());
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        std::vector<char> chunk(1 << 20);
        for (std::size_t i = 0; i < chunk.size(); ++i)
            chunk[i] = static_cast<char>(i * 7);
        for (std::size_t done = 0; done < bytes; done += chunk.size()) {
            if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size()))
                throw std::runtime_error("write failed (disk full? set COEXEC_BENCH_FILE_MIB)");
        }
        ::fsync(fd);
    }
    ~temp_file() {
        ::close(fd);
        ::unlink(path.c_str());
    }
    void drop_cache() const { ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); }
};

/// MiB/s for coexec: `in_flight` coroutines on a 2-worker pool.
double coexec_read(const temp_file& f) {
    coexec::thread_pool pool{{.max_workers = 2}};
    const std::size_t blocks = f.size / block;
    std::vector<coexec::future<std::size_t>> fs;
    auto t0 = clock::now();
    for (std::size_t k = 0; k < in_flight; ++k) {
        fs.push_back(pool.submit([&f, k, blocks]() -> coexec::task<std::size_t> {
            auto buf = std::make_unique<char[]>(block);
            std::size_t total = 0;
            for (std::size_t b = k; b < blocks; b += in_flight) {
                total += co_await coexec::io::read(
                    f.fd, coexec::io::mutable_buffer(buf.get(), block), b * block);
            }
            co_return total;
        }));
    }
    std::size_t total = 0;
    for (auto& x : fs)
        total += x.get();
    auto t1 = clock::now();
    if (total != blocks * block) throw std::runtime_error("coexec read a short total");
    return static_cast<double>(total) / (1 << 20) / coexec_bench::seconds_between(t0, t1);
}

/// MiB/s for blocking pread: `tasks` loops on a pool of `workers`.
double blocking_read(const temp_file& f, std::size_t workers, std::size_t tasks) {
    coexec::thread_pool pool{{.max_workers = workers}};
    const std::size_t blocks = f.size / block;
    std::vector<coexec::future<std::size_t>> fs;
    auto t0 = clock::now();
    for (std::size_t k = 0; k < tasks; ++k) {
        fs.push_back(pool.submit([&f, k, blocks, tasks] {
            auto buf = std::make_unique<char[]>(block);
            std::size_t total = 0;
            for (std::size_t b = k; b < blocks; b += tasks) {
                ssize_t n = ::pread(f.fd, buf.get(), block, static_cast<off_t>(b * block));
                if (n > 0) total += static_cast<std::size_t>(n);
            }
            return total;
        }));
    }
    std::size_t total = 0;
    for (auto& x : fs)
        total += x.get();
    auto t1 = clock::now();
    if (total != blocks * block) throw std::runtime_error("pread read a short total");
    return static_cast<double>(total) / (1 << 20) / coexec_bench::seconds_between(t0, t1);
}

/// MiB/s with no framework: 2 threads of blocking pread, each cycling
/// through in_flight / 2 buffers.
double floor_read(const temp_file& f) {
    constexpr std::size_t threads = 2;
    const std::size_t blocks = f.size / block;
    std::vector<std::size_t> totals(threads);
    auto t0 = clock::now();
    std::vector<std::thread> ts;
    for (std::size_t k = 0; k < threads; ++k) {
        ts.emplace_back([&f, &totals, k, blocks] {
            constexpr std::size_t buffers = in_flight / threads;
            auto buf = std::make_unique<char[]>(buffers * block);
            std::size_t total = 0, next = 0;
            for (std::size_t b = k; b < blocks; b += threads) {
                char* into = buf.get() + (next++ % buffers) * block;
                ssize_t n = ::pread(f.fd, into, block, static_cast<off_t>(b * block));
                if (n > 0) total += static_cast<std::size_t>(n);
            }
            totals[k] = total;
        });
    }
    for (auto& t : ts)
        t.join();
    auto t1 = clock::now();
    std::size_t total = 0;
    for (auto n : totals)
        total += n;
    if (total != blocks * block) throw std::runtime_error("floor read a short total");
    return static_cast<double>(total) / (1 << 20) / coexec_bench::seconds_between(t0, t1);
}

constexpr int rounds = 5;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main() {
    std::size_t mib = 1024;
    if (const char* env = std::getenv("COEXEC_BENCH_FILE_MIB"))
        mib = std::strtoul(env, nullptr, 10);
    if (mib == 0) mib = 1024;
    temp_file f(mib << 20);

    std::printf("reading a %zu MiB file in 64 KiB blocks (%s backend)\n", mib,
                std::string(coexec::io::backend_name()).c_str());
    for (bool cold : {true, false}) {
        auto prepare = [&] {
            if (cold) {
                f.drop_cache();
            } else {
                blocking_read(f, 2, 2);  // warm the page cache
            }
        };
        // One pass is ~0.1 s cached: on a shared machine one pass each
        // said little (0.5-1.15x over three runs), so the four alternate,
        // `rounds` passes each, and each figure is its median.
        std::vector<double> cos, b32s, b2s, fls;
        for (int r = 0; r < rounds; ++r) {
            prepare();
            cos.push_back(coexec_read(f));
            prepare();
            b32s.push_back(blocking_read(f, in_flight, in_flight));
            prepare();
            b2s.push_back(blocking_read(f, 2, 2));
            prepare();
            fls.push_back(floor_read(f));
        }
        const double co = median(cos), b32 = median(b32s), b2 = median(b2s), fl = median(fls);
        const char* mode = cold ? "cold" : "cached";
        std::printf("  %-6s %-44s %9.0f MiB/s\n", mode, "coexec io::read, 32 in flight, 2 threads",
                    co);
        std::printf("  %-6s %-44s %9.0f MiB/s\n", mode, "blocking pread, thread_pool{32}", b32);
        std::printf("  %-6s %-44s %9.0f MiB/s\n", mode, "blocking pread, thread_pool{2}", b2);
        std::printf("  %-6s %-44s %9.0f MiB/s\n", mode, "floor: 2 threads, pread into 32 buffers",
                    fl);
        std::string name = std::string("file read 64 KiB x 32 in flight, ") + mode;
        coexec_bench::report(name, co, "MiB/s", "blocking pread, thread_pool{32}", b32,
                             coexec_bench::better::higher);
        coexec_bench::report(name, co, "MiB/s", "blocking pread, thread_pool{2}", b2,
                             coexec_bench::better::higher);
        coexec_bench::report(name, co, "MiB/s", "floor: 2 threads, pread into 32 buffers", fl,
                             coexec_bench::better::higher);
    }
    coexec_bench::note("file read: " + std::to_string(mib) + " MiB file in " +
                       std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                       "; cold = POSIX_FADV_DONTNEED before each run; " +
                       std::string(coexec::io::backend_name()) +
                       " backend. A saturated worker gives half of its completions to a sleeping "
                       "one, and a worker reaps its own ring before stealing, so the 32 readers "
                       "split over both workers and stay there; cached, ~90% of their time is the "
                       "kernel's copy (_copy_to_iter) into 32 distinct 64 KiB buffers, as for "
                       "pread on thread_pool{32} (thread_pool{2} reuses 2 buffers that stay in "
                       "L2). The floor row: 2 plain threads of pread into the same 32 buffers, "
                       "no pool, no io_uring.");
    return 0;
}
