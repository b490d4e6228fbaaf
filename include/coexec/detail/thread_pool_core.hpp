// detail/thread_pool_core.hpp — the compiled part of thread_pool.
//
// Workers, queues and sleeping live in lib/thread_pool/thread_pool.cpp; the templates in
// thread_pool.hpp only build jobs (work items) and hand them to this core.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "coexec/detail/shared_state.hpp"
#include "coexec/detail/work_item.hpp"
#include "coexec/executor.hpp"

namespace coexec {

/// Options of thread_pool; documented field by field in docs/api.md.
struct thread_pool_options {
    /// Worker threads; 0 = min(32, cores + 4), as Python's ThreadPoolExecutor.
    std::size_t max_workers = 0;
    /// Worker threads are named "<prefix>-<index>" (truncated to 15 bytes).
    std::string thread_name_prefix = "coexec";
    /// Runs once on every worker thread before it takes work. If it throws,
    /// the pool is broken: queued and later work fails with broken_pool.
    std::function<void()> initializer = {};
};

namespace detail {

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

    /// Bookkeeping called by jobs: a job left the queue / finished.
    void on_job_dequeued() noexcept { m_dequeued.fetch_add(1, std::memory_order_relaxed); }
    void on_job_finished(status final) noexcept;
    /// A coroutine job is in flight (suspended or running) until finished.
    void on_coroutine_started() noexcept { m_coroutines.fetch_add(1, std::memory_order_acq_rel); }
    void on_coroutine_finished() noexcept;

    /// Signalled by shutdown(cancel_futures = true) and by destruction.
    std::stop_token stop_token() const noexcept { return m_stop.get_token(); }

    void shutdown(bool wait, bool cancel_futures);
    std::size_t max_workers() const noexcept { return m_worker_count; }
    executor_stats stats() const noexcept;
    /// True if the calling thread is one of this pool's workers.
    bool on_worker_thread() const noexcept;

    struct worker;

  private:
    struct shared;
    void worker_main(std::size_t index) noexcept;
    work_item* find_work(worker& self) noexcept;
    void wake_one() noexcept;
    void wake_all() noexcept;
    bool may_exit() const noexcept;

    std::size_t m_worker_count;
    thread_pool_options m_options;
    std::unique_ptr<shared> m_shared;
    std::stop_source m_stop;

    alignas(64) std::atomic<std::uint64_t> m_submitted{0};
    alignas(64) std::atomic<std::uint64_t> m_dequeued{0};
    std::atomic<std::uint64_t> m_completed{0};
    std::atomic<std::uint64_t> m_failed{0};
    std::atomic<std::uint64_t> m_cancelled{0};
    alignas(64) std::atomic<std::int64_t> m_coroutines{0};
    std::atomic<bool> m_shutdown{false};
    std::atomic<bool> m_broken{false};
    std::atomic<bool> m_workers_gone{false};
    std::atomic<std::size_t> m_alive{0};
};

}  // namespace detail
}  // namespace coexec
