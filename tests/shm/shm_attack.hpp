// tests/shm/shm_attack.hpp — tools for the shared-primitive attack tests: run
// a scenario in a child process (so a crash or a hang of the "parent" under
// attack is a result, not the end of the test run), and reach the raw bytes
// of a shared object as a hostile process would.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/values.hpp"

namespace coexec_test {

/// How a scenario run in a child process ended.
struct isolated_result {
    bool exited = false;  // returned normally; `code` is its value
    int code = -1;
    int signal = 0;  // killed by this signal (e.g. SIGSEGV, SIGFPE)
    bool timed_out = false;
    std::string describe() const {
        if (timed_out) return "hung (killed after the bound)";
        if (signal != 0) return "died of signal " + std::to_string(signal);
        return "exited with " + std::to_string(code);
    }
    bool ok() const { return exited && code == 0; }
};

/// Runs `body` in a forked child (its own process group, so its helpers die
/// with it) and waits at most `bound`. The child's return value is its exit
/// code; an escaping exception is exit code 99. Call while single-threaded.
template <class Body>
isolated_result run_isolated(Body body, std::chrono::seconds bound = std::chrono::seconds(30)) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::setpgid(0, 0);
        // The test framework's crash handlers would report in the child: a
        // crash must end it with its signal, for the parent to see.
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
            ::signal(sig, SIG_DFL);
        int code = 99;
        try {
            code = body();
        } catch (...) {
        }
        ::_exit(code);
    }
    isolated_result r;
    if (pid < 0) return r;
    ::setpgid(pid, pid);  // also from here, so the group exists before we may kill it
    const auto deadline = std::chrono::steady_clock::now() + bound;
    int status = 0;
    for (;;) {
        const pid_t got = ::waitpid(pid, &status, WNOHANG);
        if (got == pid) break;
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            r.timed_out = true;
            return r;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(-pid, SIGKILL);  // helpers the scenario left behind
    if (WIFEXITED(status)) {
        r.exited = true;
        r.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
    }
    return r;
}

/// A private writable mapping of the memory behind a shared handle: what a
/// task that scribbles over the objects it was given can reach.
struct raw_block {
    std::byte* data = nullptr;
    std::size_t size = 0;
    std::span<std::byte> bytes() const { return {data, size}; }
    template <class V>
    void put(std::size_t offset, V v) const {
        std::memcpy(data + offset, &v, sizeof v);
    }
};

/// Maps every block a handle (shared_queue, shared_value, process_mutex)
/// sends, in the order it sends them. The mappings stay for the process's life.
template <class Handle>
std::vector<raw_block> raw_blocks_of(const Handle& h) {
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    coexec::detail::byte_writer w(bytes, &fds);
    coexec::detail::encode(w, h);
    std::vector<raw_block> out;
    for (int fd : fds) {
        struct stat st {};
        ::fstat(fd, &st);
        const auto size = static_cast<std::size_t>(st.st_size);
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) throw std::runtime_error("raw_blocks_of: mmap failed");
        out.push_back({static_cast<std::byte*>(p), size});
    }
    return out;
}

/// Forks a process that runs `fn` and exits; waits for it. For an attacker
/// that must act while this process holds a lock.
template <class Fn>
void in_other_process(Fn fn) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        fn();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
}

/// Fills `b` with bytes from `rng`.
inline void scribble(std::span<std::byte> b, std::mt19937_64& rng) {
    for (auto& x : b)
        x = static_cast<std::byte>(rng());
}

/// Spins (sleeping 1 ms) until process `pid` sleeps in the kernel (state 'S').
inline bool wait_until_sleeping(pid_t pid, std::chrono::seconds bound = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
        char path[64];
        std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
        if (FILE* f = std::fopen(path, "r")) {
            char buf[512] = {};
            const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
            std::fclose(f);
            const char* close = std::strrchr(buf, ')');
            if (n > 0 && close != nullptr && close[1] == ' ' && close[2] == 'S') return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

}  // namespace coexec_test
