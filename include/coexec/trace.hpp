// coexec/trace.hpp — a timeline of what the executors did, for Perfetto.
//
// While a trace records, every executor writes what it does to a Chrome
// trace-event JSON file that ui.perfetto.dev and chrome://tracing open: a
// track per thread_pool worker and per process_pool worker process (and,
// from rank 0, a process per mpi_pool worker rank with its workers' tracks,
// times aligned to rank 0's clock), a slice per task named after its
// function, flow arrows from submit to the task's start to the coroutine
// that awaited it, coexec::io operations, pipeline stages, counters (queue
// depth, tasks in flight, workers alive) and instant events for worker
// deaths, respawns and deadline kills. docs/trace.md walks through the file.
//
//   COEXEC_TRACE=out.json ./program           // the whole run ("%p": the pid)
//   coexec::trace::start("out.json");  ...  coexec::trace::stop();
//
// @par Cost
// Off by default: each event site is one relaxed atomic load. While
// recording, each thread appends fixed-size records to its own bounded
// buffer (options::buffer_events, 64 Ki events = 3 MiB per thread by
// default) and a writer thread copies the buffers, unformatted, into a spill
// file without a name in the output's directory (48 bytes per event on
// disk); a thread at idle priority turns it into JSON in the file with
// CPU nothing else wants, and the session's end converts the rest. A full buffer drops
// new events and counts them (never blocks); the counts are in the file. The
// writer thread starts with the first recorded event, so a process_pool fork
// server made after start() is still made single-threaded.
//
// @par Ending the file
// The file is complete JSON after stop() (which blocks while it converts
// the session: about 0.5 to 1 s per million tasks), after exit() (an atexit
// handler stops the trace), and after SIGINT, SIGTERM or a crash (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGABRT) for each of them the program has no handler of
// its own for when the trace starts (the trace's handler has the file
// finished, then the signal takes its default action). SIGKILL leaves the
// events converted so far, as an event array without its end (Perfetto
// opens it): everything if the program idled a moment before, only the
// header if it kept every core busy.
//
// @par Thread safety
// start() and stop() may be called from any thread; events are recorded from
// every thread concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace coexec::trace {

struct options {
    /// Events each thread may hold before the writer drains them; rounded up
    /// to a power of two (at least 8). An event is 48 bytes.
    std::size_t buffer_events = std::size_t{64} * 1024;
    /// How often the writer thread drains the buffers and samples the
    /// executors' counters.
    std::chrono::milliseconds flush_interval{5};
};

/// Starts recording into `path` (created or truncated; "%p" in it becomes the
/// process id). Throws std::system_error if the file cannot be created, and
/// coexec::error if a trace is already recording.
void start(const std::string& path, options opts = {});

/// Stops recording: drains every buffer, finishes the JSON and closes the
/// file. Does nothing if no trace records. Blocks until the file is written.
void stop();

/// True while a trace records.
bool recording() noexcept;

/// Where the current (or last) trace is written; empty if none was started.
std::string path();

/// Events dropped so far in this session because a thread's buffer was full.
std::uint64_t dropped_events() noexcept;

/// Names the tasks submitted from this thread while it lives (innermost
/// wins), instead of their function's name:
///
///   { coexec::trace::name n("fetch"); pool.submit(fetch, url); }
///
/// Costs nothing while no trace records. Not movable; use it as a local.
class name {
  public:
    explicit name(std::string_view task_name);
    name(const name&) = delete;
    name& operator=(const name&) = delete;
    ~name();

  private:
    std::uint32_t m_previous;
};

}  // namespace coexec::trace
