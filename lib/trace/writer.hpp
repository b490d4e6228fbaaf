// lib/trace/writer.hpp — the writer thread: buffers → JSON file.
//
// The writer owns the output file while a session records. Every
// flush_interval it drains each thread's buffer, turns the records into
// Chrome trace-event JSON (writer.cpp), samples the registered executors'
// counters (registry.hpp) and appends the text to the file. It is the only
// consumer of the buffers, and it takes no lock that a recording thread may
// hold, so the signal-time flush can rely on it.
#pragma once

#include <cstdint>
#include <string>

#include "trace/recorder.hpp"

namespace coexec::detail::trace {

/// Opens `path` and writes the JSON header. Throws std::system_error.
/// Called by start() before recording begins.
void writer_open(const std::string& path, const session_info& session);

/// Starts the writer thread if it is not running (the first event of a
/// session). Never throws: without a thread, events wait in the buffers.
void writer_ensure_thread() noexcept;

/// Stops the writer thread, drains every buffer, writes the last counters
/// and the footer, closes the file. Called by stop() after recording ended.
void writer_finish() noexcept;

/// From a signal handler (async-signal-safe): asks the writer thread to
/// finish the file and waits for it (bounded); without a writer thread,
/// writes the footer itself.
void writer_finish_from_signal() noexcept;

}  // namespace coexec::detail::trace
