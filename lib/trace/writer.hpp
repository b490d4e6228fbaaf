// lib/trace/writer.hpp — the writer thread: buffers → spill → JSON file.
//
// The writer owns the output file and the session's spill (spill.hpp).
// While a session records, every flush_interval it moves each thread's
// buffered records into the spill (a copy, no formatting) and samples the
// registered executors' counters (registry.hpp), and it writes the blocks
// of JSON (json.hpp) an idle-priority thread made of the spill
// (converter.hpp). When the session ends (stop(), exit(), a traced signal)
// the rest of the spill becomes JSON in the output file. It is the only consumer of the
// buffers, and it takes no lock that a recording thread may hold, so the
// signal-time finish can rely on it.
#pragma once

#include <cstdint>
#include <string>

#include "trace/recorder.hpp"

namespace coexec::detail::trace {

/// Opens `path` and the spill next to it, and writes the JSON header.
/// Throws std::system_error. Called by start() before recording begins.
void writer_open(const std::string& path, const session_info& session);

/// Starts the writer thread if it is not running (the first event of a
/// session). Never throws: without a thread, events wait in the buffers.
void writer_ensure_thread() noexcept;

/// Stops the writer thread, drains every buffer, writes the last counters,
/// converts the rest of the spill, writes the footer and closes the file. Called by
/// stop() after recording ended.
void writer_finish() noexcept;

/// From a signal handler (async-signal-safe): asks the writer thread to
/// finish the file and waits while it makes progress (it gives up after 5 s
/// without any); without a writer thread, writes the footer itself.
void writer_finish_from_signal() noexcept;

}  // namespace coexec::detail::trace
