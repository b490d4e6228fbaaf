// bench/io/child_measure.hpp — run one side of a benchmark in a forked child
// so that its peak RSS (getrusage of the child) is its own.
//
// Call from a single-threaded parent (before any pool exists in it): the
// child builds its own threads, measures, and sends its figures back.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <exception>

namespace coexec_bench_io {

struct child_result {
    bool ok = false;
    std::array<double, 4> figures{};  // whatever the measured function returns
    double maxrss_mib = 0;            // the child's peak resident set
};

/// Runs `fn()` (returning std::array<double, 4>) in a forked child.
template <class F>
child_result in_child(F&& fn) {
    child_result r;
    int p[2];
    if (::pipe(p) != 0) return r;
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid < 0) return r;
    if (pid == 0) {
        ::close(p[0]);
        int code = 0;
        try {
            std::array<double, 4> out = fn();
            if (::write(p[1], out.data(), sizeof out) != sizeof out) code = 2;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "  child failed: %s\n", e.what());
            code = 1;
        }
        std::fflush(stdout);
        ::_exit(code);
    }
    ::close(p[1]);
    std::size_t got = 0;
    auto* bytes = reinterpret_cast<char*>(r.figures.data());
    while (got < sizeof r.figures) {
        ssize_t n = ::read(p[0], bytes + got, sizeof r.figures - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(p[0]);
    int status = 0;
    rusage ru{};
    ::wait4(pid, &status, 0, &ru);
    r.ok = got == sizeof r.figures && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    r.maxrss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;
    return r;
}

}  // namespace coexec_bench_io
