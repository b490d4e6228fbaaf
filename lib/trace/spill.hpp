// lib/trace/spill.hpp — a session's raw records, on disk until stop().
//
// While a trace records, the writer only copies the threads' records here
// (a memcpy and, per block, one write): formatting JSON during the run took
// the CPU the traced program's own threads needed (on a 2-core machine the
// writer's formatting cost more than the program's work). The JSON is made
// from the spill by an idle-priority thread (converter.hpp) and, for what
// it has not done, when the session ends (writer.cpp). The spill is an
// unlinked file in the output's directory, so a trace's disk use is where
// its user put the trace, memory stays bounded, and nothing is left behind.
//
// The spill is a sequence of 48-byte records; a kind::spill_thread record
// (a = pid, b = tid) says which thread the records after it came from.
// Used by one thread at a time (the writer's consumer); a spill_reader
// reads it back from another thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "trace/recorder.hpp"

namespace coexec::detail::trace {

/// Where a replay is: the thread the records being read came from.
struct spill_position {
    std::uint32_t pid = 0;
    std::uint32_t tid = 0;
};

/// Reads a spill's records back, with its own descriptor and buffer, so a
/// thread other than the spill's writer can read what is already written.
class spill_reader {
  public:
    spill_reader() = default;
    spill_reader(const spill_reader&) = delete;
    spill_reader& operator=(const spill_reader&) = delete;
    ~spill_reader() { close(); }

    /// Reads the file open as `fd` (duplicated: the spill may close its
    /// own). Returns false if it cannot.
    bool open(int fd) noexcept;
    void close() noexcept;

    /// Reads records [from, to) back, calling out(pid, tid, record) for
    /// each, in the order they were added; `who` carries the thread across
    /// calls (start with {} at 0). Returns false if the file cannot be read.
    template <class F>
    bool replay(std::uint64_t from, std::uint64_t to, spill_position& who, F&& out) noexcept {
        while (from < to) {
            const std::size_t n = read_block(from, to);
            if (n == 0) return false;
            for (std::size_t i = 0; i < n; ++i) {
                const record& r = m_read[i];
                if (r.what == kind::spill_thread) {
                    who.pid = static_cast<std::uint32_t>(r.a);
                    who.tid = static_cast<std::uint32_t>(r.b);
                } else {
                    out(who.pid, who.tid, r);
                }
            }
            from += n;
        }
        return true;
    }

  private:
    std::size_t read_block(std::uint64_t from, std::uint64_t to) noexcept;

    int m_fd = -1;
    std::vector<record> m_read;
};

class spill {
  public:
    spill() = default;
    spill(const spill&) = delete;
    spill& operator=(const spill&) = delete;
    ~spill() { close(); }

    /// Makes an empty, unlinked spill file in the directory of `output`.
    /// Throws std::system_error if none can be made there.
    void open(const std::string& output);

    /// Appends `n` records of thread `tid` of process `pid` (buffered).
    void add(std::uint32_t pid, std::uint32_t tid, const record* r, std::size_t n) noexcept;

    /// Writes what is buffered. After a write error (disk full) the spill
    /// stops writing and counts what it could not keep in lost().
    void flush() noexcept;

    /// Records the spill could not write (they are not in the trace).
    std::uint64_t lost() const noexcept { return m_lost; }

    /// Records written so far (after flush()).
    std::uint64_t size() const noexcept { return m_written; }

    /// Reads records [from, to) back (to <= size()): see spill_reader.
    using reader_state = spill_position;
    template <class F>
    bool replay(std::uint64_t from, std::uint64_t to, reader_state& who, F&& out) noexcept;

    /// The file's descriptor (-1 when closed), for a spill_reader on
    /// another thread: it may read records [0, size()) while this appends.
    int fd() const noexcept { return m_fd; }

    /// Closes (and so frees) the file.
    void close() noexcept;

  private:
    void put(const record& r) noexcept;

    int m_fd = -1;
    bool m_failed = false;
    std::vector<record> m_block;  // records not yet written
    std::size_t m_used = 0;
    std::uint64_t m_written = 0;  // records in the file
    std::uint64_t m_lost = 0;
    std::uint32_t m_pid = 0, m_tid = 0;  // the thread of the last record added
    bool m_has_thread = false;
    spill_reader m_reader;  // the replay() of the consumer that finishes
};

template <class F>
bool spill::replay(std::uint64_t from, std::uint64_t to, reader_state& who, F&& out) noexcept {
    return m_reader.replay(from, to, who, static_cast<F&&>(out));
}

}  // namespace coexec::detail::trace
