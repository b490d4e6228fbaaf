// lib/mpi/client.hpp — mpi_pool on rank 0 (client.cpp: the callers' side;
// progress.cpp: the progress thread).
//
// Threads: callers (submit, cancel, shutdown) and one progress thread per
// pool, which receives every answer from the ranks and completes the
// futures. Tasks and cancels are sent by whoever has them: the progress
// thread, or — when MPI granted MPI_THREAD_MULTIPLE — the submitting or
// cancelling thread itself, which saves a hand-off per task (two polls of a
// loop, ~5 us here). The constructor's opening exchange happens before the
// progress thread starts.
//
// `m_mutex` guards the queue, the table of tasks out on ranks, the ranks'
// load and the cancel requests. Tasks are sent under it, at the moment they
// enter `m_flights`, so a cancel (which needs the flight) always follows its
// task on the wire (MPI keeps one sender's messages to one rank in order).
//
// Invariants:
// - A rank holds at most slots + 1 of our tasks: `slots` running and one
//   queued to start the moment a slot frees (so rank 0 noticing a result a
//   little late, while it backs off, costs the rank nothing).
// - A task out on a rank is in `m_flights` until that rank answers for it;
//   a cancelled or abandoned one stays there with a null task (the rank still
//   holds its slot), so answers are matched to the rank that owes them.
// - Futures are completed, and tasks destroyed, outside `m_mutex`: completing
//   runs callbacks and resumes coroutines, which may call back into the pool.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coexec/mpi_pool.hpp"
#include "mpi/environment.hpp"
#include "mpi/link.hpp"
#include "mpi/protocol.hpp"
#include "trace/rank_link.hpp"
#include "trace/registry.hpp"
#include "util/backoff.hpp"

namespace coexec::detail::mpi {

using task_list = std::vector<std::unique_ptr<process_task>>;

struct rank_state {
    int rank = 0;
    std::size_t slots = 0;
    std::size_t in_flight = 0;   // tasks sent and not yet answered (cancelled ones too)
    std::uint64_t respawns = 0;  // progress thread only: the rank's last report
    bool closed = false;         // closed, or no longer trusted
    std::string host;
    std::uint64_t pid = 0;
    // The rank in the trace: its tracks and clock offset (the constructor,
    // then the progress thread only).
    trace::ranks::rank_track trace;
};

struct flight {
    std::unique_ptr<process_task> task;  // null: cancelled or abandoned, answer dropped
    std::size_t rank_index = 0;
    std::chrono::steady_clock::time_point sent;
};

// While tasks are out and they take less than this on average (send to
// answer), the progress thread keeps polling (yielding the CPU now and then)
// instead of sleeping: a sleep would cost more than the task. Longer tasks
// are waited for with the growing sleeps of idle_backoff.
inline constexpr std::int64_t short_task_ns = 1'000'000;

}  // namespace coexec::detail::mpi

namespace coexec::detail {

struct mpi_pool_core::impl : std::enable_shared_from_this<mpi_pool_core::impl> {
    impl(mpi_environment& env, const mpi_pool_options& options);

    // ---- client.cpp: the callers' side ----
    void open_ranks();
    void measure_clocks(const std::vector<bool>& opened);
    void start();
    void submit(std::unique_ptr<process_task> t);
    void shutdown(bool wait, bool cancel_futures);
    void terminate_workers();
    executor_stats stats() const noexcept;
    std::unique_ptr<process_task> take_running(shared_state_base& state) noexcept;
    /// Cancels the queued and running tasks that take a stop token (a running
    /// one's slot is told to kill it): shutdown(cancel_futures) and the
    /// destructor signal the tokens, and on another rank that is how.
    void stop_stoppable();
    void join();

    // ---- progress.cpp ----
    enum class start_result { sent, no_room, cancelled };
    /// Under m_mutex: hands `t` to the least loaded rank with room and sends
    /// it. On `no_room` and `cancelled`, `t` is left where it was.
    start_result start_locked(std::unique_ptr<process_task>& t);
    void send_cancel_locked(std::size_t rank_index, std::uint64_t id);
    void run() noexcept;
    bool dispatch();
    bool receive();
    void handle_result(std::size_t ri, std::vector<std::byte>& bytes);
    void trace_result(std::size_t ri, const process_task& t,
                      std::chrono::steady_clock::time_point sent, const mpi::span_trailer& span,
                      const std::exception_ptr& failure) noexcept;
    void fail_rank(std::size_t ri, const std::string& why);
    bool close_when_done();
    void idle(idle_backoff& backoff);

    void signal_locked() {
        m_signalled = true;
        if (m_sleeping) m_cv.notify_one();
    }

    mpi_environment::impl& m_env;
    mpi_pool_options m_options;
    mpi::link m_link;
    bool m_direct = false;  // MPI_THREAD_MULTIPLE: any thread may send
    std::vector<mpi::rank_state> m_ranks;
    std::size_t m_total_slots = 0;

    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_sleeping = false;   // the progress thread waits on m_cv
    bool m_signalled = false;  // something new for the progress thread
    std::deque<std::unique_ptr<process_task>> m_pending;
    std::unordered_map<std::uint64_t, mpi::flight> m_flights;
    std::vector<std::pair<std::size_t, std::uint64_t>> m_cancels;  // (rank index, id) to send
    bool m_shutdown = false;
    bool m_terminate = false;
    bool m_close_sent = false;
    std::size_t m_running = 0;    // flights that still have a task
    std::size_t m_next_rank = 0;  // where the search for a free rank starts (round robin)

    // ---- progress thread only ----
    std::size_t m_closed = 0;

    std::thread m_thread;
    std::mutex m_join_mutex;

    std::atomic<std::uint64_t> m_submitted{0}, m_completed{0}, m_failed{0}, m_cancelled{0},
        m_respawns{0};
    std::atomic<std::size_t> m_slots_alive{0};
    // Mean time from sending a task to its answer, an exponential moving
    // average over the last ~8 tasks; decides whether idle() sleeps.
    std::atomic<std::int64_t> m_service_ns{0};

    // Last: its counters are sampled until it goes, so it goes first.
    std::optional<trace::executor_track> m_trace;
};

}  // namespace coexec::detail
