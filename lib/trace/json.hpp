// lib/trace/json.hpp — records → Chrome trace-event JSON text.
//
// The file: {"displayTimeUnit":"ns","traceEvents":[ ...events... ],
// "otherData":{...}}. Timestamps are microseconds (with nanosecond
// decimals) since the session started. Used by the writer when it converts
// a session's spill (writer.cpp) into the output file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "trace/recorder.hpp"

namespace coexec::detail::trace {

/// The text being made, and what each event needs to know of the session.
struct json_sink {
    std::string out;
    bool first = true;              // no event written yet
    std::int64_t origin = 0;        // the session's start (ns)
    std::uint32_t self_pid = 0;     // the recording process
    std::uint32_t name_submit = 0;  // interned marker names
    std::uint32_t name_resume = 0;
    std::uint32_t name_buffer_full = 0;
};

/// Readies `j` for a session starting at `origin`, and appends the file's
/// header with the process's name and sort index.
void json_begin(json_sink& j, std::int64_t origin, std::string_view program_name);

/// Appends the events of `r`, recorded by thread `tid` of process `pid`.
/// Records older than the session (leftovers) are skipped.
void json_record(json_sink& j, std::uint32_t pid, std::uint32_t tid, const record& r);

/// Appends the footer: the events dropped by full buffers, those lost by
/// a failed spill write (disk full), and the per-thread buffer size.
void json_end(json_sink& j, std::uint64_t dropped, std::uint64_t lost, std::size_t buffer_events);

}  // namespace coexec::detail::trace
