// One small read from ordinary code, awaited with sync_wait: what a caller
// pays to use coexec::io outside a thread_pool.
//
//   coexec     `sync_wait(io::read(fd, 64 bytes, 0))` on a cached file, 20,000
//              times in a row on one thread (the thread keeps the loop's
//              reactor between calls: lib/io/run_loop_io.cpp)
//   peer       blocking `pread` of the same 64 bytes on the same thread: the
//              floor, one syscall and no event loop
//   first call the first sync_wait with io on a fresh thread, which makes the
//              ring (or epoll set): reported as a note
//
// Each side 3 times, alternating; the median per call of each.
#include <fcntl.h>
#include <unistd.h>

#include <coexec/io.hpp>
#include <coexec/sync_wait.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"

namespace {

using coexec_bench::clock;

constexpr int calls = 20'000;
constexpr std::size_t bytes = 64;

double us_per_call(clock::time_point t0, clock::time_point t1) {
    return coexec_bench::seconds_between(t0, t1) * 1e6 / calls;
}

double coexec_calls(int fd) {
    char buf[bytes];
    auto t0 = clock::now();
    for (int i = 0; i < calls; ++i) {
        if (coexec::sync_wait(coexec::io::read(fd, {buf, bytes}, 0)) != bytes) std::abort();
    }
    return us_per_call(t0, clock::now());
}

double pread_calls(int fd) {
    char buf[bytes];
    auto t0 = clock::now();
    for (int i = 0; i < calls; ++i) {
        if (::pread(fd, buf, bytes, 0) != static_cast<ssize_t>(bytes)) std::abort();
    }
    return us_per_call(t0, clock::now());
}

}  // namespace

int main() {
    char path[] = "/tmp/coexec-bench-sync-wait-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::unlink(path);
    const std::string data(4096, 'x');
    if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) return 1;

    // The first io under sync_wait on a fresh thread makes its reactor.
    double first_us = 0;
    std::thread([&] {
        char buf[bytes];
        auto t0 = clock::now();
        coexec::sync_wait(coexec::io::read(fd, {buf, bytes}, 0));
        first_us = coexec_bench::seconds_between(t0, clock::now()) * 1e6;
    }).join();

    std::vector<double> co, peer;
    coexec_calls(fd);  // warm-up: this thread's reactor, the page cache
    for (int r = 0; r < 3; ++r) {
        co.push_back(coexec_calls(fd));
        peer.push_back(pread_calls(fd));
    }
    const double c = coexec_bench::median(co);
    const double p = coexec_bench::median(peer);
    std::printf("sync_wait(io::read %zu B), backend %s: %.2f us per call; pread %.2f us\n", bytes,
                std::string(coexec::io::backend_name()).c_str(), c, p);
    coexec_bench::report("sync_wait(io::read 64 B) from ordinary code, per call", c, "us",
                         "blocking pread, same thread (the floor)", p, coexec_bench::better::lower);
    coexec_bench::note("sync_wait io: the first call on a fresh thread (it makes the loop's " +
                       std::string(coexec::io::backend_name()) + " reactor) took " +
                       std::to_string(static_cast<int>(first_us)) +
                       " us; later calls reuse it. Median of 3 runs of 20,000 calls.");
    ::close(fd);
    return 0;
}
