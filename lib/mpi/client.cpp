// lib/mpi/client.cpp — mpi_pool on rank 0, the callers' side: opening the
// ranks, submit, cancel, shutdown, stats. See client.hpp for the threads and
// invariants; progress.cpp for the progress thread.
#include "mpi/client.hpp"

#include <algorithm>
#include <bit>
#include <climits>
#include <exception>
#include <string>

#include "mpi/protocol.hpp"

namespace coexec::detail {

using namespace mpi;

void refuse_descriptors_for_mpi(process_task& task) {
    if (task.fds.empty()) return;
    close_fds(task.fds);
    task.fds.clear();
    throw serialization_error(
        "coexec::mpi_pool: a shared_buffer cannot be sent to another MPI rank (it may run on "
        "another host); pass its bytes by value, e.g. as a std::vector<std::byte>");
}

namespace {

// future::cancel() on a task out on a rank lands here. As in process_pool:
// one immortal hook, finding the pool in a registry pools leave before dying.
class cancel_registry final : public cancel_hook {
  public:
    static cancel_registry& instance() {
        static auto* r = new cancel_registry();  // never destroyed
        return *r;
    }
    void add(mpi_pool_core::impl* p) {
        std::lock_guard lock(m_mutex);
        m_pools.push_back(p);
    }
    void remove(mpi_pool_core::impl* p) {
        std::lock_guard lock(m_mutex);
        std::erase(m_pools, p);
    }
    bool cancel_running(shared_state_base& state) noexcept override {
        std::unique_ptr<process_task> victim;
        {
            std::lock_guard lock(m_mutex);
            for (auto* p : m_pools) {
                if ((victim = p->take_running(state))) break;
            }
        }
        return victim && state.set_cancelled();
    }

  private:
    std::mutex m_mutex;
    std::vector<mpi_pool_core::impl*> m_pools;
};

std::vector<std::byte> open_request(const mpi_pool_options& o) {
    std::vector<std::byte> b;
    byte_writer w(b);
    w.put(o.isolation == mpi_isolation::process ? 0 : 1);
    w.put_u64(o.slots_per_rank);
    w.put_u64(o.initializer != nullptr
                  ? encode_code_address_by_build_id(std::bit_cast<const void*>(o.initializer))
                  : 0);
    return b;
}

}  // namespace

mpi_pool_core::impl::impl(mpi_environment& env, const mpi_pool_options& options)
    : m_env(env.internals()),
      m_options(options),
      m_link(m_env.comm),
      m_direct(m_env.thread_level >= MPI_THREAD_MULTIPLE) {}

// On the constructing thread, before the progress thread exists: asks every
// rank used to start its local pool, and waits for every answer.
void mpi_pool_core::impl::open_ranks() {
    if (m_env.rank != 0) {
        throw error("coexec::mpi_pool: only rank 0 makes pools; worker ranks call serve()");
    }
    if (m_env.size < 2) {
        throw error(
            "coexec::mpi_pool: there is no worker rank: start the program with "
            "`mpirun -n N` (N >= 2); rank 0 runs it, ranks 1..N-1 serve");
    }
    const auto workers = static_cast<std::size_t>(m_env.size - 1);
    const std::size_t used =
        m_options.max_workers != 0 ? std::min(m_options.max_workers, workers) : workers;
    m_ranks.resize(used);
    const auto request = open_request(m_options);
    for (std::size_t i = 0; i < used; ++i) {
        m_ranks[i].rank = static_cast<int>(i + 1);
        m_link.send_now(m_ranks[i].rank, tag_open, request);
    }
    std::string failure;
    std::size_t answered = 0;
    std::vector<bool> opened(used, false);
    idle_backoff backoff;
    incoming in;
    while (answered < used) {
        if (!m_link.try_receive(MPI_ANY_SOURCE, in)) {
            const auto pause = backoff.next();
            if (pause.count() == 0) {
                backoff.relax();
            } else {
                std::this_thread::sleep_for(pause);
            }
            continue;
        }
        backoff.reset();
        const std::size_t ri = static_cast<std::size_t>(in.source) - 1;
        if (in.tag != tag_opened || in.source < 1 || ri >= used) continue;
        ++answered;
        try {
            byte_reader r(in.bytes);
            if (r.get() == 0) {
                m_ranks[ri].slots = r.get_u64();
                m_ranks[ri].pid = r.get_u64();
                m_ranks[ri].host = r.get_string();
                if (m_ranks[ri].slots == 0) throw serialization_error("no slots");
                opened[ri] = true;
                m_total_slots += m_ranks[ri].slots;
            } else if (failure.empty()) {
                failure = "rank " + std::to_string(in.source) +
                          " could not start its workers: " + r.get_string();
            }
        } catch (const std::exception& e) {
            if (failure.empty()) {
                failure = "rank " + std::to_string(in.source) + " answered malformed: " + e.what();
            }
        }
    }
    if (failure.empty()) {
        m_slots_alive.store(m_total_slots, std::memory_order_relaxed);
        measure_clocks(opened);
        return;
    }
    // Close the ranks that did open, then report.
    std::size_t waiting = 0;
    for (std::size_t i = 0; i < used; ++i) {
        if (!opened[i]) continue;
        m_link.send_now(m_ranks[i].rank, tag_close, {std::byte{1}});
        ++waiting;
    }
    while (waiting > 0) {
        if (m_link.try_receive(MPI_ANY_SOURCE, in)) {
            if (in.tag == tag_closed) --waiting;
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
    }
    throw error("coexec::mpi_pool: " + failure);
}

// Each rank's clock offset, for the trace (rank_link.hpp): `clock_pings`
// rounds of one ping per rank; Cristian's method keeps the exchange with the
// smallest round trip. Done whether or not a trace records (a trace may
// start later), at a cost of a few round trips per rank when the pool opens.
void mpi_pool_core::impl::measure_clocks(const std::vector<bool>& opened) {
    constexpr std::uint64_t clock_pings = 8;
    constexpr auto patience = std::chrono::seconds(5);  // then the offset stays unknown
    const std::size_t used = m_ranks.size();
    std::vector<std::vector<trace::ranks::clock_sample>> samples(used);
    std::vector<std::int64_t> sent(used, 0);
    incoming in;
    for (std::uint64_t round = 1; round <= clock_pings; ++round) {
        std::vector<std::byte> ping;
        byte_writer(ping).put_u64(round);
        std::size_t waiting = 0;
        for (std::size_t i = 0; i < used; ++i) {
            if (!opened[i]) continue;
            sent[i] = trace::now();
            m_link.send_now(m_ranks[i].rank, tag_clock, ping);
            ++waiting;
        }
        const auto give_up = std::chrono::steady_clock::now() + patience;
        while (waiting > 0 && std::chrono::steady_clock::now() < give_up) {
            if (!m_link.try_receive(MPI_ANY_SOURCE, in)) {
                std::this_thread::yield();
                continue;
            }
            const std::int64_t received = trace::now();
            const std::size_t ri = static_cast<std::size_t>(in.source) - 1;
            // A late answer to an earlier round, or a stray: not a sample.
            if (in.tag != tag_clock_reply || in.source < 1 || ri >= used ||
                in.bytes.size() != 2 * sizeof(std::uint64_t))
                continue;
            byte_reader r(in.bytes);
            if (r.get_u64() != round) continue;
            const auto remote = static_cast<std::int64_t>(r.get_u64());
            samples[ri].push_back({sent[ri], remote, received});
            --waiting;
        }
        if (waiting > 0) break;
    }
    for (std::size_t i = 0; i < used; ++i) {
        m_ranks[i].trace.identify(m_ranks[i].rank, m_ranks[i].pid, m_ranks[i].host,
                                  trace::ranks::estimate_offset(samples[i]));
    }
}

void mpi_pool_core::impl::start() {
    m_trace.emplace(
        "mpi_pool", "",
        [](const void* self) noexcept { return static_cast<const impl*>(self)->stats(); }, this);
    m_thread = std::thread([self = shared_from_this()] { self->run(); });
    cancel_registry::instance().add(this);
}

void mpi_pool_core::impl::join() {
    std::lock_guard lock(m_join_mutex);
    // From a done-callback on the progress thread itself: it cannot wait for
    // itself; it finishes after the callback returns (and keeps `this` alive).
    if (!m_thread.joinable() || std::this_thread::get_id() == m_thread.get_id()) return;
    m_thread.join();
}

// ---------------------------------------------------------------------------
// Caller-facing operations
// ---------------------------------------------------------------------------

void mpi_pool_core::impl::submit(std::unique_ptr<process_task> t) {
    if (t->message.size() > static_cast<std::size_t>(INT_MAX) - sizeof(task_trailer)) {
        throw serialization_error("coexec::mpi_pool: the task's encoded call (" +
                                  std::to_string(t->message.size()) +
                                  " bytes) exceeds what one MPI message carries (2 GiB)");
    }
    t->state->set_cancel_hook(&cancel_registry::instance());
    std::unique_ptr<process_task> dropped;
    std::lock_guard lock(m_mutex);
    if (m_shutdown) throw executor_shutdown("mpi_pool::submit: the pool has been shut down");
    m_submitted.fetch_add(1, std::memory_order_relaxed);
    // With MPI_THREAD_MULTIPLE the task leaves from this thread when a rank
    // has room (and nothing queued is ahead of it).
    if (m_direct && m_pending.empty()) {
        switch (start_locked(t)) {
            case start_result::sent:
                signal_locked();  // the progress thread must poll for the answer
                return;
            case start_result::cancelled:
                m_cancelled.fetch_add(1, std::memory_order_relaxed);
                return;  // ~process_task (the state is done: it only releases)
            case start_result::no_room:
                break;
        }
    }
    m_pending.push_back(std::move(t));
    signal_locked();
}

std::unique_ptr<process_task> mpi_pool_core::impl::take_running(shared_state_base& state) noexcept {
    std::unique_ptr<process_task> victim;
    {
        std::lock_guard lock(m_mutex);
        for (auto& [id, f] : m_flights) {
            if (f.task && f.task->state == &state) {
                victim = std::move(f.task);
                --m_running;
                send_cancel_locked(f.rank_index, id);
                break;
            }
        }
    }
    // Counted before the state completes, as everywhere.
    if (victim) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    return victim;
}

void mpi_pool_core::impl::stop_stoppable() {
    task_list stopped;
    {
        std::lock_guard lock(m_mutex);
        for (auto& [id, f] : m_flights) {
            if (f.task && f.task->stoppable) {
                // The flight stays (its rank still owes an answer), its task goes.
                stopped.push_back(std::move(f.task));
                --m_running;
                send_cancel_locked(f.rank_index, id);
            }
        }
        move_stoppable(m_pending, stopped);
        signal_locked();
    }
    for (auto& t : stopped) {
        if (t->state->set_cancelled()) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    }
}

void mpi_pool_core::impl::shutdown(bool wait, bool cancel_futures) {
    task_list cancelled;
    {
        std::lock_guard lock(m_mutex);
        m_shutdown = true;
        if (cancel_futures) {
            for (auto& t : m_pending)
                cancelled.push_back(std::move(t));
            m_pending.clear();
        }
        signal_locked();
    }
    for (auto& t : cancelled) {
        if (t->state->set_cancelled()) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    }
    cancelled.clear();
    // Running work that takes a stop token is asked to stop, as on a
    // thread_pool: here by killing it, so it cannot keep the shutdown waiting.
    if (cancel_futures) stop_stoppable();
    if (wait) join();
}

void mpi_pool_core::impl::terminate_workers() {
    task_list cancelled;
    {
        std::lock_guard lock(m_mutex);
        m_shutdown = true;
        m_terminate = true;
        for (auto& t : m_pending)
            cancelled.push_back(std::move(t));
        m_pending.clear();
        for (auto& [id, f] : m_flights) {
            if (f.task) cancelled.push_back(std::move(f.task));
        }
        m_running = 0;
        signal_locked();
    }
    for (auto& t : cancelled) {
        if (t->state->set_cancelled()) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    }
    cancelled.clear();
    join();
}

executor_stats mpi_pool_core::impl::stats() const noexcept {
    executor_stats s;
    s.submitted = m_submitted.load(std::memory_order_relaxed);
    s.completed = m_completed.load(std::memory_order_relaxed);
    s.failed = m_failed.load(std::memory_order_relaxed);
    s.cancelled = m_cancelled.load(std::memory_order_relaxed);
    {
        std::lock_guard lock(m_mutex);
        s.queued = m_pending.size();
        s.running = m_running;
    }
    s.workers_alive = m_slots_alive.load(std::memory_order_relaxed);
    s.respawns = m_respawns.load(std::memory_order_relaxed);
    return s;
}

// ---------------------------------------------------------------------------
// mpi_pool_core
// ---------------------------------------------------------------------------

mpi_pool_core::mpi_pool_core(mpi_environment& env, const mpi_pool_options& options) {
    auto& e = env.internals();
    {
        std::lock_guard lock(e.pool_mutex);
        if (e.pool_open) {
            throw error(
                "coexec::mpi_pool: another mpi_pool of this environment is open; the "
                "worker ranks serve one pool at a time (destroy or shut down the other)");
        }
        e.pool_open = true;
    }
    try {
        m_impl = std::make_shared<impl>(env, options);
        m_impl->open_ranks();
        m_impl->start();
    } catch (...) {
        std::lock_guard lock(e.pool_mutex);
        e.pool_open = false;
        throw;
    }
}

mpi_pool_core::~mpi_pool_core() {
    // Closed first (nothing more is accepted), then the tasks taking a stop
    // token are stopped, as a thread_pool's destruction signals them; the
    // rest are waited for.
    m_impl->shutdown(false, false);
    m_impl->stop_stoppable();
    m_impl->shutdown(true, false);
    cancel_registry::instance().remove(m_impl.get());
}

void mpi_pool_core::submit(std::unique_ptr<process_task> task) {
    m_impl->submit(std::move(task));
}
void mpi_pool_core::shutdown(bool wait, bool cancel_futures) {
    m_impl->shutdown(wait, cancel_futures);
}
void mpi_pool_core::terminate_workers() {
    m_impl->terminate_workers();
}
executor_stats mpi_pool_core::stats() const noexcept {
    return m_impl->stats();
}
std::size_t mpi_pool_core::max_workers() const noexcept {
    return m_impl->m_total_slots;
}

}  // namespace coexec::detail
