// lib/process/pool_impl.hpp — the state a process_pool shares between its
// two halves: pool.cpp (the callers' side: queue, submit, dispatch, shutdown,
// cancellation) and supervisor.cpp (the supervisor thread: results, worker
// starts and deaths, timers).
//
// Threads: callers (submit/cancel/shutdown) and one supervisor thread per
// pool. `m_mutex` guards the queue, the slots' task bookkeeping and the
// producer side of every channel (so each parent→worker ring has one
// producer at a time). The worker→parent rings are read by whoever holds
// m_receiving (the supervisor, or while it sleeps a caller waiting in get());
// only the supervisor starts or reaps workers.
//
// Invariants:
// - A worker holds at most one task (`slot::current`), so a death or a
//   deadline is pinned to exactly that task, and a task handed out is running
//   (try_start succeeded at hand-off). Everything else waits, cancellable, in
//   `m_pending`. (CPython allows workers + 1 ahead; one per worker keeps
//   deadlines and crash attribution exact, at the cost of one hand-off of a
//   few µs between tasks — map sends whole chunks, so that cost is per chunk.)
// - Everything a worker writes is untrusted (docs/threat_model.md): a
//   protocol violation (channel.hpp) kills that worker and fails its task
//   once, with worker_died naming the violation; no send to a worker blocks.
// - Futures are completed, and tasks destroyed, outside `m_mutex`: completing
//   runs callbacks and resumes coroutines, which may call back into the pool.
// - No user code runs on the supervisor thread: completing there hands
//   done-callbacks and inline resumptions to m_completions.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coexec/process_pool.hpp"
#include "process/channel.hpp"
#include "process/completions.hpp"
#include "process/fork_server.hpp"
#include "process/launch.hpp"
#include "process/worker_stops.hpp"
#include "trace/process_link.hpp"
#include "trace/registry.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail {
namespace proc {

using clock = std::chrono::steady_clock;

inline constexpr std::size_t ring_capacity = 256 * 1024;
// The supervisor spins (spin::process_supervisor) after its last event before
// sleeping in epoll, unless tasks take this long on average (from hand-off to
// result): then a wake-up is small next to the task, and on a machine with as
// many workers as cores the spinning would take that time from the workers
// (measured: primes on 2 workers, 64 tasks of ~3.5 ms, lost ~4% to the
// parent's spins).
inline constexpr std::int64_t long_task_ns = 1'000'000;
// SIGTERM → SIGKILL grace for deadlines and terminate_workers.
inline constexpr std::chrono::milliseconds term_grace{200};
// How long workers get to exit after a clean shutdown before SIGKILL.
inline constexpr std::chrono::milliseconds exit_grace{2000};
// How long a fork-server pool's starter waits for worker 0 to be ready
// before it forks the others anyway (a worker starts in ~0.3 ms here).
inline constexpr std::chrono::milliseconds first_worker_grace{2};
// How often the supervisor looks for a stopped worker among its own
// children while one holds a task or is starting (the fork server sees its
// children's stops as they happen).
inline constexpr std::chrono::milliseconds stop_check_period{200};
// If the fork server's report of a death does not come, give up waiting.
inline constexpr std::chrono::milliseconds status_wait{1000};
// Workers dying before they are ready this many times in a row break the pool
// (a crashing initializer would otherwise restart forever).
inline constexpr int max_start_failures = 5;
// A task whose worker dies before starting it runs again elsewhere at most
// this many times; then it fails with worker_died. (The running id that
// tells "started" from "not started" is written by the worker, so a task can
// forge it: without a cap it could have itself re-run forever.)
inline constexpr std::uint8_t max_restarts_per_task = 2;
// A worker whose wake-up socket hangs up is normally dying; if its pidfd has
// not fired after this long, it closed the socket itself and is killed (the
// parent could no longer be woken by its results).
inline constexpr std::chrono::milliseconds hup_grace{1000};

inline constexpr auto never = clock::time_point::max();

// Messages take_messages reads from one worker before it returns (its
// caller comes back for the rest after looking at everything else).
inline constexpr int max_messages_per_take = 64;

// How often a busy or spinning supervisor looks at its timers (task
// deadlines and the graces above): a timer fires up to this late while the
// supervisor is awake (and up to 1 ms late when it sleeps, epoll's unit).
// Each look takes the pool's mutex, which every submit takes too: on each
// spin it made callers wait on the supervisor.
inline constexpr std::chrono::microseconds timer_check_interval{100};

/// What an epoll event of the supervisor is about (the top byte of its data).
enum class ev : std::uint64_t { wake = 1, report = 2, result = 3, pidfd = 4 };

inline std::uint64_t ev_data(ev kind, std::size_t slot, std::uint32_t gen) {
    return (static_cast<std::uint64_t>(kind) << 56) | (static_cast<std::uint64_t>(slot) << 32) |
           gen;
}

struct worker_status {
    int signal = 0;
    int exit_code = -1;         // -1: unknown (the report was lost)
    double cpu_seconds = -1.0;  // its CPU time (user + system); negative: unknown
    int stopped_by = 0;         // nonzero: found stopped by this signal, and killed for it
};

/// One worker place of the pool; its process changes when a worker dies.
struct slot {
    std::uint32_t gen = 0;
    bool live = false;           // a process exists (or existed and is not yet accounted for)
    bool dead = false;           // its pidfd fired
    bool accepting = false;      // may be given tasks
    bool ready = false;          // its initializer finished
    bool expected_exit = false;  // we asked it to exit or killed it
    pid_t pid = -1;
    unique_fd pidfd;
    bool direct_child = false;
    proc::stop_record stops;  // a direct child's recent stops (process/worker_stops.hpp)
    channel ch;
    std::unique_ptr<process_task> current;
    std::uint64_t current_id = 0;
    std::uint64_t last_id = 0;  // its last finished task: the other running id it may show
    std::size_t tasks_done = 0;
    bool violated = false;                   // killed for a protocol violation...
    std::string violation;                   // ... and why
    clock::time_point deadline = never;      // of the current task
    clock::time_point kill_at = never;       // SIGKILL escalation
    clock::time_point status_until = never;  // dead, waiting for the fork server's report
    clock::time_point hup_at = never;        // its wake socket hung up: killed then if alive
    clock::time_point dispatched_at{};       // of the current task
    trace::link::worker_state trace;         // what its worker knows of coexec::trace
};

}  // namespace proc

struct process_pool_core::impl : std::enable_shared_from_this<process_pool_core::impl> {
    using clock = proc::clock;
    using slot = proc::slot;
    using worker_status = proc::worker_status;
    using message = proc::message;

    using task_list = std::vector<std::unique_ptr<process_task>>;
    /// Tasks to fail (outside m_mutex) with their error.
    using failure_list = std::vector<std::pair<std::unique_ptr<process_task>, std::exception_ptr>>;

    // ---- callers (pool.cpp) ----
    explicit impl(const process_pool_options& o);
    ~impl();
    void start();
    void submit(std::unique_ptr<process_task> t);
    void shutdown(bool wait, bool cancel_futures);
    /// Stops the tasks whose callable takes a std::stop_token (the pool's
    /// destruction, shutdown with cancel_futures): a running one by killing
    /// its worker, as cancel() does; queued ones too. Their futures end
    /// cancelled.
    void stop_stoppable();
    void terminate_workers();
    executor_stats stats() const noexcept;
    /// Takes `state`'s task away from its worker (killing the worker) and
    /// counts it cancelled; null if this pool does not run it.
    std::unique_ptr<process_task> take_running(shared_state_base& state) noexcept;
    /// Makes the supervisor leave epoll_wait (and recompute its timeout).
    void wake() noexcept;
    void join();

    // ---- under m_mutex, from either side (pool.cpp) ----
    void dispatch_locked(task_list& dropped, failure_list& failed);
    /// Starts the clock of `s`'s task if it has a timeout: at dispatch. (Not
    /// at the worker's `ready`: a task runs right after it and can rewrite
    /// that record in the shared ring before the supervisor reads it, and
    /// then would never get a deadline. A pool with an initializer dispatches
    /// only to workers seen ready instead: see install.) True if a deadline
    /// was set.
    bool arm_deadline_locked(slot& s, clock::time_point now) noexcept;
    void retire_locked(std::size_t i) noexcept;
    void signal_locked(slot& s, int sig) noexcept;
    void break_locked(const std::string& reason, task_list& failed);
    /// Worker `i` broke the channel protocol: poison its channel, kill it;
    /// its task fails (once) when its death is accounted for.
    void violate_locked(std::size_t i, const std::string& reason) noexcept;

    /// Outside m_mutex: fails each task with its error (counted first).
    void complete_failures(failure_list& failed) noexcept;

    // ---- a blocked caller reads results itself (waiter_help.cpp) ----
    /// True if one of this pool's workers runs `state`'s task now. Without
    /// `may_wait`, false too when the pool's mutex is taken.
    bool runs(const shared_state_base& state, bool may_wait) const noexcept;
    /// Spins as `policy` says until `state` is done; whenever the supervisor
    /// sleeps, this thread takes the receiving side and reads the workers'
    /// results itself. True if done.
    bool help_wait(const shared_state_base& state, spin_policy policy, bool eager) noexcept;
    /// Supervisor, after a sleep: takes the receiving side back.
    void reclaim_receiving() noexcept;

    // ---- the supervisor thread (supervisor.cpp) ----
    /// Under m_mutex: starts a worker in slot `i` (start_process, then install_locked).
    void launch_locked(std::size_t i);
    /// Forks (or spawns) a worker process for the channel end `w`; the lock
    /// is not needed (supervisor-only state), so submits do not wait for it.
    proc::launched start_process(const proc::channel_fds& w);
    /// Under m_mutex: makes the started process slot `i`'s worker. Takes `ch`
    /// and `l.pidfd` once the supervisor watches both; if watching fails,
    /// throws std::system_error with the slot and both arguments unchanged.
    /// Later failures (sending the worker its configuration) throw with the
    /// worker installed and watched: breaking the pool then kills it.
    void install_locked(std::size_t i, proc::channel& ch, proc::launched& l);
    /// Kills and reaps a worker that was started but not installed.
    static void discard_unstarted(proc::launched& l) noexcept;
    /// After the constructor returned: starts slots 1.. without holding the
    /// lock while each forks; a failure breaks the pool. With the fork
    /// server, on m_starter (worker_start.cpp): the supervisor goes on
    /// taking results meanwhile and installs each worker as it is handed over.
    void start_remaining_workers();
    /// Supervisor, from start_remaining_workers: makes m_starter (fork
    /// server only), which starts slots 1.. once worker 0 is ready.
    void prepare_starter() noexcept;
    /// On m_starter: asks the fork server for slots 1.. one by one and hands
    /// each (or the failure) to the supervisor.
    void run_starter() noexcept;
    /// Supervisor: installs what the starter handed over; true if anything was.
    bool install_started();
    /// Supervisor, before it exits: stops and joins the starter, discarding
    /// whatever it started that was not installed.
    void stop_starter() noexcept;
    /// Supervisor: starts slots `first`.. one after the other.
    void start_workers_from(std::size_t first);
    /// Supervisor: installs a started worker into slot `i` and dispatches to
    /// it, or breaks the pool with `failure`; false if the starts should stop.
    bool finish_start(std::size_t i, proc::channel& ch, proc::launched& l, std::string failure);
    /// Outside m_mutex: fails `tasks` with broken_pool (the pool broke).
    void fail_broken(task_list& tasks) noexcept;
    /// The supervisor thread. With `started`, it starts the first workers
    /// and reports to the waiting constructor; without, start() did.
    void run(std::promise<void>* started);
    /// Constructor, fork server only: forks and installs worker 0; false if
    /// the fork server is gone (the supervisor then starts it). Throws, with
    /// nothing left running, if the worker could not be started.
    bool start_first_worker_here();
    /// Kills (and reaps, if ours) every live worker: a start that failed.
    void kill_live_workers_locked() noexcept;
    bool poll_results();
    /// Handles every message worker `i` has written. A malformed one: the
    /// worker is not trusted any more (violate_locked). True if there was any.
    bool take_messages(std::size_t i);
    void handle_message(std::size_t i, message& m);
    bool check_timers(clock::time_point now);
    void handle_event(std::uint64_t data, std::uint32_t events);
    void finish_death(std::size_t i, worker_status st);
    bool try_finish_deaths();

    process_pool_options m_options;
    std::size_t m_workers;
    proc::launch_method m_method = proc::launch_method::spawn;
    proc::fork_server* m_fork_server = nullptr;
    std::uint32_t m_pool_id = 0;
    unique_fd m_report;  // the fork server's death reports (supervisor only)
    std::atomic<bool> m_fork_server_gone{false};  // also read by m_starter

    // Slots 1.. of a fork-server pool, started by m_starter while the
    // supervisor already serves the first worker: each fork is ~0.2 ms, and
    // a supervisor blocked on it left the first task's result unread (a
    // later pool's start -> first result waited for the second worker's fork).
    // Not for spawn or fork: PR_SET_PDEATHSIG follows the thread that forks,
    // and the starter ends before the workers (the fork server's children
    // follow the fork server).
    struct started_worker {
        std::size_t slot = 0;
        proc::channel ch;
        proc::channel_fds worker_end;  // kept only with no pidfd, for the supervisor to start
        proc::launched l;              // no pidfd: start it there (fork server gone)
        std::string failure;
    };
    std::thread m_starter;
    std::atomic<bool> m_starter_go{false};
    std::atomic<bool> m_stop_starting{false};
    std::atomic<bool> m_started_waiting{false};  // m_started is not empty
    std::vector<started_worker> m_started;       // under m_mutex
    // Under m_mutex: a worker has sent `ready`; a first result has come;
    // the starter waits on m_first_ready_cv. The starter forks the others
    // once the first one is up and has work beside it (its first result is
    // back, or a task waits for a worker), so that their forks and page
    // faults do not take the CPU from the first worker's start and first task.
    bool m_first_ready = false;
    bool m_first_result = false;
    bool m_starter_waiting = false;
    std::condition_variable m_first_ready_cv;
    unique_fd m_epoll;
    unique_fd m_wake;

    mutable std::mutex m_mutex;
    std::deque<std::unique_ptr<process_task>> m_pending;
    std::vector<slot> m_slots;
    std::vector<std::size_t> m_idle;  // LIFO: the most recently active worker is still spinning
    std::uint64_t m_next_id = 0;
    bool m_shutdown = false;
    bool m_broken = false;
    std::string m_broken_reason;
    int m_start_failures = 0;
    clock::time_point m_stop_deadline = proc::never;  // set when the final stop begins
    clock::time_point m_next_stop_check{};  // of direct children (the fork server watches its own)
    bool m_sleep_watches_stops = false;     // the supervisor's sleep includes m_next_stop_check

    std::map<pid_t, proc::death_report> m_reports;  // supervisor only: not yet matched

    // Encoding buffers of finished large tasks, kept for the next submits:
    // a 64 MiB argument then lands in pages that already exist instead of
    // faulting in fresh ones (this VM: ~5x slower than a warm copy).
    std::mutex m_buffers_mutex;
    std::vector<std::vector<std::byte>> m_buffers;  // reserved: pushing never allocates
    std::size_t m_buffer_bytes = 0;
    std::atomic<std::size_t> m_buffer_count{0};

    static constexpr std::size_t recycle_min_bytes = std::size_t{1} << 20;
    static constexpr std::size_t recycle_max_total = std::size_t{512} << 20;

    void recycle_message(std::vector<std::byte>& b) noexcept {
        if (b.capacity() < recycle_min_bytes) return;
        std::lock_guard lock(m_buffers_mutex);
        if (m_buffers.size() == m_buffers.capacity() ||
            m_buffer_bytes + b.capacity() > recycle_max_total) {
            return;
        }
        b.clear();
        m_buffer_bytes += b.capacity();
        m_buffers.push_back(std::move(b));
        m_buffer_count.store(m_buffers.size(), std::memory_order_relaxed);
    }

    std::vector<std::byte> take_message_buffer() noexcept {
        if (m_buffer_count.load(std::memory_order_relaxed) == 0) return {};
        std::lock_guard lock(m_buffers_mutex);
        if (m_buffers.empty()) return {};
        std::vector<std::byte> b = std::move(m_buffers.back());
        m_buffers.pop_back();
        m_buffer_bytes -= b.capacity();
        m_buffer_count.store(m_buffers.size(), std::memory_order_relaxed);
        return b;
    }

    std::thread m_thread;
    std::thread::id m_thread_id;
    std::mutex m_join_mutex;
    // Runs the user code the supervisor must not (see completions.hpp).
    proc::completion_thread m_completions;

    std::atomic<std::uint64_t> m_submitted{0}, m_completed{0}, m_failed{0}, m_cancelled{0},
        m_respawns{0};
    // Bumped at every hand-off to a worker. The supervisor treats a change as
    // activity and keeps spinning for the result; otherwise a caller that
    // submits one task at a time from its own thread would find the
    // supervisor asleep (its spin measured from the previous result) and pay
    // an eventfd wake-up per task, which then keeps it in that slow regime.
    std::atomic<std::uint64_t> m_dispatches{0};
    // Mean task service time (hand-off to result), an exponential moving
    // average over the last ~8 tasks; decides whether the supervisor spins.
    std::atomic<std::int64_t> m_service_ns{0};
    // The receiving side (every worker→parent ring, each slot's `ch` object,
    // `live`) belongs to whoever holds m_receiving: the supervisor whenever
    // it is awake, and while it sleeps in epoll, one caller blocked in get()
    // (help_wait), which then reads the results itself. A round trip is then
    // two parties (caller and worker) instead of three, which on 2 cores is
    // the difference between a core each and a shared core. Whenever nobody
    // holds it, every live channel has its sleep announced, so a result
    // wakes the supervisor. m_helped counts eager helping waits (of callers
    // whose recent waits were short): while it moves, the supervisor sleeps
    // rather than spins. Other callers take the side only if they find the
    // supervisor asleep: one waiting for a long task, counted, would send it
    // to sleep for nothing, and that result would then need it woken (map
    // of ~0.1 ms chunks on 2 workers lost a quarter of its rate that way).
    alignas(64) std::atomic<bool> m_receiving{true};
    std::atomic<bool> m_supervisor_wants{false};
    std::atomic<std::uint64_t> m_helped{0};
    // Mirrors m_shutdown so the spinning supervisor need not take the mutex.
    std::atomic<bool> m_shutdown_flag{false};
    // Its counters in a trace; reset by ~process_pool_core after the shutdown.
    std::optional<trace::executor_track> m_trace;
};

}  // namespace coexec::detail
