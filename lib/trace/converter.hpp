// lib/trace/converter.hpp — the spill turned into JSON in the background,
// with CPU the program does not want.
//
// Making the JSON only when a session ends (writer.cpp) keeps it off the
// program's CPU, but a program killed by SIGKILL (the OOM killer, a
// container stop, `timeout -s KILL`) then leaves only the header. So a
// thread at idle priority (SCHED_IDLE; nice 19 where that is refused)
// converts the spill as it grows: on a busy machine it gets next to no
// CPU, when the program idles the file catches up.
//
// The converting thread never writes the output, and nobody ever waits
// for it (it could be starved for seconds): it hands each block of text,
// ending at an event's end, to the writer, which writes it and adopts the
// state after it (conversion_take). At the session's end the finishing
// thread abandons it and converts the rest itself, from the last block it
// took; the abandoned thread exits when it next runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "trace/json.hpp"
#include "trace/spill.hpp"

namespace coexec::detail::trace {

/// A block of JSON text for the spill's records [begin, end), and the
/// converter's state after it.
struct converted_block {
    std::string text;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    spill_position position;
    bool first = true;  // json_sink::first after the block
};

struct conversion;

/// Starts converting the spill open as `spill_fd` from record `from`
/// (thread `position`, sink state `sink`: its out is not copied). Returns
/// null if no thread can be made (the session's end converts everything).
/// Call from a thread with the trace's signals blocked (it inherits them).
std::shared_ptr<conversion> conversion_start(int spill_fd, const json_sink& sink,
                                             std::uint64_t from, spill_position position) noexcept;

/// Lets the converter read the spill's records [0, written).
void conversion_publish(conversion& c, std::uint64_t written) noexcept;

/// The next converted block, if one is ready (the caller owns it).
std::unique_ptr<converted_block> conversion_take(conversion& c) noexcept;

/// Tells the converting thread to stop; it never hands over another block.
/// Blocks it had handed over can still be taken.
void conversion_abandon(conversion& c) noexcept;

}  // namespace coexec::detail::trace
