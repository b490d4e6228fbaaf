// lib/mpi/protocol.hpp — the rank protocol: what rank 0 and the worker ranks say.
//
// All traffic runs over the environment's own communicator (a duplicate of
// MPI_COMM_WORLD, so a program's own MPI messages never mix with it), point
// to point between rank 0 and each worker rank. Between one pair of ranks
// messages arrive in the order sent (MPI's non-overtaking rule), which the
// protocol relies on: a cancel never overtakes its task, a close never
// overtakes the last result.
//
//   tag     direction  body
//   open    0 → r      isolation u8, slots u64 (0: the rank's cores),
//                      initializer code address u64 (build-id form; 0: none)
//   opened  r → 0      0 u8, slots u64, pid u64, host string  |  1 u8, error string
//   clock   0 → r      empty: the rank answers with its clock (clock_reply)
//   clock_reply r → 0  the rank's CLOCK_MONOTONIC now, i64 ns
//   task    0 → r      the process_pool's task message (trampoline code address,
//                      encoded call), then a task_trailer
//   cancel  0 → r      id u64
//   result  r → 0      a payload, [a span_trailer,] then a result_trailer (the kinds below)
//   close   0 → r      now u8 (1: kill what runs, as terminate_workers does)
//   closed  r → 0      empty
//   exit    0 → r      empty: the rank's serve() returns
//
// The start-up check (every rank runs the same program and modules) is
// collective, in mpi_environment's constructor (lib/mpi/handshake.hpp).
//
// Trailers sit at the end so that the receiver uses the payload in place:
// it reads the trailer and shrinks the buffer, without copying the payload.
// Everything a worker rank sends is checked before use (sizes, ids, kinds):
// under thread isolation a task can corrupt its rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace coexec::detail::mpi {

enum tag : int {
    tag_open = 1,
    tag_opened,
    tag_task,
    tag_cancel,
    tag_result,
    tag_close,
    tag_closed,
    tag_exit,
    tag_clock,
    tag_clock_reply,
};

/// What a result message's payload holds.
enum class result_kind : std::uint8_t {
    value = 0,      ///< what remote_invoke wrote: a status byte, then the value or the exception
    failure = 1,    ///< an encoded exception for the task as a whole (worker_died, deadline, ...)
    cancelled = 2,  ///< empty: the rank cancelled the task as asked
};

/// task_trailer::flags
inline constexpr std::uint8_t task_traced = 1;  ///< a trace records: time the task (span_trailer)

struct task_trailer {
    std::uint64_t id;
    std::int64_t timeout_ns;  ///< 0: the pool's task_timeout
    std::uint8_t flags;
    std::uint8_t padding[7];
};

/// result_trailer::flags
inline constexpr std::uint8_t result_has_span = 1;  ///< a span_trailer precedes the result_trailer

struct result_trailer {
    std::uint64_t id;
    std::uint64_t respawns;  ///< the rank's process workers started to replace dead ones, so far
    std::uint8_t kind;
    std::uint8_t flags;
    std::uint8_t padding[6];
};

/// span_trailer::flags
/// `worker` is a thread id (thread isolation), not a process id.
inline constexpr std::uint32_t span_worker_thread = 1;

/// How a traced task went on its rank, on the rank's own clock (CLOCK_MONOTONIC
/// ns; rank 0 moves it onto its own: lib/trace/rank_link.hpp). Untrusted.
struct span_trailer {
    std::int64_t received;  ///< the task arrived on the rank
    std::int64_t started;   ///< it began to run; 0: unknown (it crashed, or never ran)
    std::int64_t finished;  ///< its outcome was known on the rank
    std::uint32_t worker;   ///< the local worker process's pid or thread's id; 0: unknown
    std::uint32_t flags;
};

template <class T>
void append_trailer(std::vector<std::byte>& bytes, const T& t) {
    const std::size_t at = bytes.size();
    bytes.resize(at + sizeof t);
    std::memcpy(bytes.data() + at, &t, sizeof t);
}

/// Removes the trailer from the end of `bytes`; false if it is too short.
template <class T>
bool take_trailer(std::vector<std::byte>& bytes, T& t) {
    if (bytes.size() < sizeof t) return false;
    const std::size_t at = bytes.size() - sizeof t;
    std::memcpy(&t, bytes.data() + at, sizeof t);
    bytes.resize(at);
    return true;
}

}  // namespace coexec::detail::mpi
