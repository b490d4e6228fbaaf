// detail/thread_pool_core.hpp — the compiled part of thread_pool.
//
// Workers, queues and sleeping live in lib/thread_pool/; the templates in
// thread_pool.hpp only build jobs (work items) and hand them to this core.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <utility>

#include "coexec/detail/job.hpp"
#include "coexec/detail/work_item.hpp"
#include "coexec/executor.hpp"

namespace coexec {

struct thread_pool_options;  // coexec/thread_pool.hpp

namespace detail {

/// Points of the wake-up and shutdown protocol where tests may step in
/// (tests/thread_pool), to force an interleaving that timing rarely gives.
enum class pool_event {
    spin_begin,         ///< an idle worker starts spinning (counted as a spinner)
    spin_found_work,    ///< a spinner has an item, still counted as a spinner
    spin_ended_empty,   ///< a spinner gave up, still counted as a spinner
    sleep_announced,    ///< a worker counts as sleeping, before its last look for work
    last_look_empty,    ///< that look found nothing; next: may it exit, or sleep
    about_to_sleep,     ///< that look found nothing: it sleeps now
    notified,           ///< wake_one chose this sleeping worker
    gave_completions,   ///< a saturated worker put half of its finished I/O in
                        ///< this sleeping worker's queue (it wakes it next)
    before_inbox_push,  ///< a thread that is not a worker is about to queue an item
    after_inbox_push,   ///< it has; next it decides whether to wake a worker
    stole_half,         ///< a thief took part of a worker's queue, and still holds its lock
};
/// Called at each pool_event with the worker's index (npos if not a worker).
using pool_hook = void (*)(pool_event, std::size_t worker) noexcept;
/// Installs `hook` for every thread_pool (null: none, the default). Tests only:
/// a production build pays one relaxed load per call site, all off the fast path
/// except a submission from outside the pool.
void set_pool_test_hook(pool_hook hook) noexcept;

class thread_pool_core final : public resumer {
  public:
    explicit thread_pool_core(thread_pool_options options);
    ~thread_pool_core();
    thread_pool_core(const thread_pool_core&) = delete;
    thread_pool_core& operator=(const thread_pool_core&) = delete;

    /// Queues a submitted job. Throws executor_shutdown after shutdown, or
    /// broken_pool if the initializer failed.
    void submit_job(work_item* job);
    /// Queues any work item (a coroutine resumption): on the current
    /// worker's own queue when called from one, else the shared queue.
    /// After the workers are gone it runs the item inline.
    void post(work_item* item) noexcept override;

    // ---- the job runner's host (detail/job.hpp) ----
    /// The calling worker's own counters (a worker's share of the pool's
    /// figures, so two workers never write one line per task), else the
    /// pool's.
    job_counters& counters() noexcept;
    /// Signalled by shutdown(cancel_futures = true) and by destruction.
    std::stop_token stop_token() const noexcept { return m_stop.get_token(); }
    /// A coroutine job suspended in its first run and is in flight until it
    /// ends: workers do not exit at shutdown before it ends. The end may be
    /// counted first (detail/job.hpp); see coroutines_in_flight.
    void coroutine_started() noexcept;
    void coroutine_ended() noexcept;
    void job_ended() noexcept {}

    void shutdown(bool wait, bool cancel_futures);
    std::size_t max_workers() const noexcept { return m_worker_count; }
    executor_stats stats() const noexcept;
    /// True if the calling thread is one of this pool's workers.
    bool on_worker_thread() const noexcept;

    struct worker;

  private:
    struct shared;
    void worker_main(std::size_t index) noexcept;
    /// find_local_work, else steal_work.
    work_item* find_work(worker& self) noexcept;
    /// The worker's own queue, else a batch from the inbox.
    work_item* find_local_work(worker& self) noexcept;
    /// Half of another worker's queue.
    work_item* steal_work(worker& self) noexcept;
    void wake_one() noexcept;
    void wake_all() noexcept;
    void pass_on_wake() noexcept;
    bool work_visible() const noexcept;
    bool may_exit() const noexcept;
    bool coroutines_in_flight() const noexcept;
    void wake_if_drained() noexcept;
    void run_leftovers() noexcept;

    std::size_t m_worker_count;
    std::unique_ptr<shared> m_shared;  // also holds the options
    std::stop_source m_stop;

    job_counters m_counters;
    // Coroutine starts and ends counted by threads that are not workers (a
    // worker counts its own: see coroutines_in_flight).
    alignas(64) std::atomic<std::uint64_t> m_outside_started{0};
    std::atomic<std::uint64_t> m_outside_ended{0};
    std::atomic<bool> m_shutdown{false};
    std::atomic<bool> m_broken{false};
    std::atomic<std::size_t> m_alive{0};
};

}  // namespace detail
}  // namespace coexec
