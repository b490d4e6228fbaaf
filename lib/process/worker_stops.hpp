// lib/process/worker_stops.hpp — what the pool does with a worker found
// stopped (SIGSTOP from its task, a sibling's task or anyone; SIGTSTP; the
// kernel's SIGTTIN / SIGTTOU for a background process using the terminal).
//
// A stopped worker neither finishes its task nor dies: without a deadline its
// future, and the pool's destructor, would wait for ever. It is continued
// (SIGCONT, to its process group: the kernel stops a whole background group
// that reads the terminal) after continue_delay: a task that stops itself
// once then finishes, and a job that a batch scheduler suspends as a whole
// (stopping every process in turn, then continuing them) is not undone: by
// then the fork server, or the program, is stopped too. One stopped again
// and again (a task reading the terminal is stopped at each try) is killed,
// and its task fails with worker_died naming the stop. The fork server
// applies this to its children (fork_server.cpp), the supervisor to its own
// (start_method::fork and spawn: supervisor.cpp).
#pragma once

#include <signal.h>

#include <chrono>
#include <string>

#include "util/signal_name.hpp"

namespace coexec::detail::proc {

/// A worker stopped this many times within stop_window is killed.
inline constexpr int max_stops_in_window = 3;
inline constexpr std::chrono::milliseconds stop_window{2000};
/// How long a stopped worker stays stopped before it is continued.
inline constexpr std::chrono::milliseconds continue_delay{250};

/// One worker's recent stops.
struct stop_record {
    int count = 0;
    std::chrono::steady_clock::time_point window_start{};
    std::chrono::steady_clock::time_point continue_at{};  // {}: no continue pending
    int killed_for = 0;  // nonzero: the stop signal it was killed for
};

/// Counts a stop seen at `now`; true if the worker is to be killed rather
/// than continued.
inline bool stopped_too_often(stop_record& r, std::chrono::steady_clock::time_point now) noexcept {
    if (r.count == 0 || now - r.window_start > stop_window) {
        r.count = 0;
        r.window_start = now;
    }
    return ++r.count >= max_stops_in_window;
}

/// worker_died's cause for a worker killed for its stops.
inline std::string stop_cause(int stop_signal) {
    const bool terminal = stop_signal == SIGTTIN || stop_signal == SIGTTOU;
    return "the worker was stopped by " + signal_name(stop_signal) + " " +
           std::to_string(max_stops_in_window) + " times within " +
           std::to_string(stop_window.count()) + " ms" +
           (terminal ? " (the kernel stops a worker that reads the terminal, or writes to it "
                       "under stty tostop: workers run in the background)"
                     : " (sent by the task, a sibling's task or from outside)") +
           ", and a stopped worker never finishes its task: the pool killed it";
}

}  // namespace coexec::detail::proc
