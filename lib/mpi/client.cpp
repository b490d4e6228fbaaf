// lib/mpi/client.cpp — mpi_pool on rank 0: queue, dispatch to ranks, results.
//
// Threads: callers (submit, cancel, shutdown) and one progress thread per
// pool, the only thread that makes MPI calls while the pool is open (the
// constructor's opening exchange happens before it starts). `m_mutex` guards
// the queue, the table of tasks out on ranks and the cancel requests; MPI
// calls are made outside it.
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
#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coexec/mpi_pool.hpp"
#include "mpi/environment.hpp"
#include "mpi/link.hpp"
#include "mpi/protocol.hpp"
#include "util/backoff.hpp"

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

using task_list = std::vector<std::unique_ptr<process_task>>;

struct rank_state {
    int rank = 0;
    std::size_t slots = 0;
    std::size_t in_flight = 0;   // tasks sent and not yet answered (cancelled ones too)
    std::uint64_t respawns = 0;  // progress thread only: the rank's last report
    bool closed = false;         // closed, or no longer trusted
    std::string host;
};

struct flight {
    std::unique_ptr<process_task> task;  // null: cancelled or abandoned, answer dropped
    std::size_t rank_index = 0;
    std::chrono::steady_clock::time_point sent;
};

// After its last event the progress thread keeps polling this long before it
// sleeps: a caller that submits again right after a result, or a result that
// follows its task within a few hops, is then caught without a wake-up.
constexpr std::chrono::microseconds spin_window{200};
// While tasks are out and they take less than this on average (send to
// answer), the progress thread keeps polling (yielding the CPU between polls)
// instead of sleeping: a sleep would cost more than the task. Longer tasks
// are waited for with the growing sleeps of idle_backoff.
constexpr std::int64_t short_task_ns = 1'000'000;

class cancel_registry;

}  // namespace

struct mpi_pool_core::impl : std::enable_shared_from_this<mpi_pool_core::impl> {
    impl(mpi_environment& env, const mpi_pool_options& options);

    void open_ranks();
    void start();
    void submit(std::unique_ptr<process_task> t);
    void shutdown(bool wait, bool cancel_futures);
    void terminate_workers();
    executor_stats stats() const noexcept;
    std::unique_ptr<process_task> take_running(shared_state_base& state) noexcept;
    void join();

    // ---- progress thread ----
    void run() noexcept;
    bool dispatch();
    bool receive();
    void handle_result(std::size_t ri, std::vector<std::byte>& bytes);
    void fail_rank(std::size_t ri, const std::string& why);
    bool close_when_done();
    void idle(idle_backoff& backoff);

    void signal_locked() {
        m_signalled = true;
        if (m_sleeping) m_cv.notify_one();
    }

    mpi_environment::impl& m_env;
    mpi_pool_options m_options;
    link m_link;
    std::vector<rank_state> m_ranks;
    std::size_t m_total_slots = 0;

    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_sleeping = false;   // the progress thread waits on m_cv
    bool m_signalled = false;  // something new for the progress thread
    std::deque<std::unique_ptr<process_task>> m_pending;
    std::unordered_map<std::uint64_t, flight> m_flights;
    std::vector<std::pair<std::size_t, std::uint64_t>> m_cancels;  // (rank index, id) to send
    bool m_shutdown = false;
    bool m_terminate = false;
    std::size_t m_running = 0;  // flights that still have a task

    // ---- progress thread only ----
    bool m_close_sent = false;
    std::size_t m_closed = 0;
    std::size_t m_next_rank = 0;  // where the search for a free rank starts (round robin)

    std::thread m_thread;
    std::thread::id m_thread_id;
    std::mutex m_join_mutex;

    std::atomic<std::uint64_t> m_submitted{0}, m_completed{0}, m_failed{0}, m_cancelled{0},
        m_respawns{0};
    std::atomic<std::size_t> m_slots_alive{0};
    // Mean time from sending a task to its answer, an exponential moving
    // average over the last ~8 tasks; decides whether idle() sleeps.
    std::atomic<std::int64_t> m_service_ns{0};
};

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
    : m_env(env.internals()), m_options(options), m_link(m_env.comm) {}

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
                (void)r.get_u64();  // pid
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

void mpi_pool_core::impl::start() {
    m_thread = std::thread([self = shared_from_this()] { self->run(); });
    m_thread_id = m_thread.get_id();
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
    t->state->set_cancel_hook(&cancel_registry::instance());
    std::lock_guard lock(m_mutex);
    if (m_shutdown) throw executor_shutdown("mpi_pool::submit: the pool has been shut down");
    m_submitted.fetch_add(1, std::memory_order_relaxed);
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
                m_cancels.emplace_back(f.rank_index, id);
                signal_locked();
                break;
            }
        }
    }
    // Counted before the state completes, as everywhere.
    if (victim) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    return victim;
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
// The progress thread
// ---------------------------------------------------------------------------

void mpi_pool_core::impl::run() noexcept {
    idle_backoff backoff(spin_window);
    try {
        for (;;) {
            bool any = dispatch();
            any |= receive();
            any |= m_link.progress();
            if (close_when_done()) break;
            if (any) {
                backoff.reset();
                continue;
            }
            idle(backoff);
        }
        m_link.flush();
    } catch (const std::exception& e) {
        // An MPI call failed: nothing more can be sent or received. Fail what is left.
        task_list failed;
        {
            std::lock_guard lock(m_mutex);
            m_shutdown = true;
            for (auto& t : m_pending)
                failed.push_back(std::move(t));
            m_pending.clear();
            for (auto& [id, f] : m_flights) {
                if (f.task) failed.push_back(std::move(f.task));
            }
            m_running = 0;
        }
        const std::string what = e.what();
        for (auto& t : failed) {
            m_failed.fetch_add(1, std::memory_order_relaxed);
            t->state->set_exception(std::make_exception_ptr(
                broken_pool("mpi_pool: the pool is broken: an MPI call failed: " + what)));
        }
    }
    m_slots_alive.store(0, std::memory_order_relaxed);
    std::lock_guard lock(m_env.pool_mutex);
    m_env.pool_open = false;
}

void mpi_pool_core::impl::idle(idle_backoff& backoff) {
    std::unique_lock lock(m_mutex);
    if (std::exchange(m_signalled, false)) return;
    // Nothing out on the ranks and no close awaiting answers: nothing can
    // arrive, so sleep until a caller has something (submit, cancel, shutdown).
    if (m_flights.empty() && !m_link.sending() && !m_close_sent) {
        m_sleeping = true;
        m_cv.wait(lock, [&] { return m_signalled; });
        m_sleeping = false;
        backoff.reset();
        return;
    }
    const bool short_tasks =
        !m_flights.empty() && m_service_ns.load(std::memory_order_relaxed) < short_task_ns;
    const auto pause = backoff.next();
    if (pause.count() == 0 || short_tasks) {
        lock.unlock();
        backoff.relax();
        return;
    }
    m_sleeping = true;
    m_cv.wait_for(lock, pause, [&] { return m_signalled; });
    m_sleeping = false;
}

bool mpi_pool_core::impl::dispatch() {
    struct outgoing {
        std::size_t rank_index;
        std::uint64_t id;
        std::vector<std::byte> message;
        std::int64_t timeout_ns;
    };
    std::vector<outgoing> sends;
    std::vector<std::pair<std::size_t, std::uint64_t>> cancels;
    task_list dropped;
    task_list orphaned;
    {
        std::lock_guard lock(m_mutex);
        m_signalled = false;
        cancels.swap(m_cancels);
        while (!m_pending.empty() && !m_close_sent) {
            // The least loaded rank with room, searching from the round-robin point.
            std::size_t best = m_ranks.size();
            for (std::size_t k = 0; k < m_ranks.size(); ++k) {
                const std::size_t i = (m_next_rank + k) % m_ranks.size();
                const rank_state& r = m_ranks[i];
                if (r.closed || r.in_flight > r.slots) continue;
                if (best == m_ranks.size() || r.in_flight < m_ranks[best].in_flight) best = i;
            }
            if (best == m_ranks.size()) {
                // Every rank failed (none is merely full): nothing can run the rest.
                if (std::all_of(m_ranks.begin(), m_ranks.end(),
                                [](const rank_state& r) { return r.closed; })) {
                    m_shutdown = true;
                    for (auto& t : m_pending)
                        orphaned.push_back(std::move(t));
                    m_pending.clear();
                }
                break;
            }
            std::unique_ptr<process_task>& front = m_pending.front();
            if (!front->state->try_start()) {  // cancelled while queued
                m_cancelled.fetch_add(1, std::memory_order_relaxed);
                dropped.push_back(std::move(front));
                m_pending.pop_front();
                continue;
            }
            m_next_rank = (best + 1) % m_ranks.size();
            const std::uint64_t id = ++m_env.next_task_id;
            const auto timeout =
                front->timeout.count() != 0 ? front->timeout : m_options.task_timeout;
            sends.push_back({best, id, std::move(front->message), timeout.count()});
            ++m_ranks[best].in_flight;
            ++m_running;
            m_flights.emplace(id, flight{std::move(front), best, std::chrono::steady_clock::now()});
            m_pending.pop_front();
        }
    }
    dropped.clear();  // outside the lock: a dropped task completes nothing, but may run callbacks
    for (auto& t : orphaned) {
        m_failed.fetch_add(1, std::memory_order_relaxed);
        t->state->set_exception(std::make_exception_ptr(
            broken_pool("mpi_pool: the pool is broken: no worker rank is left to run the task")));
    }
    // A cancel is for a task sent in an earlier round, so it follows its task.
    for (auto [ri, id] : cancels) {
        std::vector<std::byte> body;
        byte_writer(body).put_u64(id);
        m_link.send(m_ranks[ri].rank, tag_cancel, std::move(body));
    }
    for (auto& s : sends) {
        append_trailer(s.message, task_trailer{s.id, s.timeout_ns});
        try {
            m_link.send(m_ranks[s.rank_index].rank, tag_task, std::move(s.message));
        } catch (const serialization_error&) {
            // Too large for one MPI message: fail that task, not the pool.
            const auto e = std::current_exception();
            std::unique_ptr<process_task> t;
            {
                std::lock_guard lock(m_mutex);
                auto it = m_flights.find(s.id);
                if (it != m_flights.end()) {
                    t = std::move(it->second.task);
                    if (t) --m_running;
                    --m_ranks[s.rank_index].in_flight;
                    m_flights.erase(it);
                }
            }
            if (t) {
                m_failed.fetch_add(1, std::memory_order_relaxed);
                t->state->set_exception(e);
            }
        }
    }
    return !sends.empty() || !cancels.empty();
}

bool mpi_pool_core::impl::receive() {
    bool any = false;
    incoming in;
    while (m_link.try_receive(MPI_ANY_SOURCE, in)) {
        any = true;
        const std::size_t ri = static_cast<std::size_t>(in.source) - 1;
        if (in.source < 1 || ri >= m_ranks.size()) continue;  // not one of ours
        switch (in.tag) {
            case tag_result:
                handle_result(ri, in.bytes);
                break;
            case tag_closed:
                if (!m_ranks[ri].closed) {
                    m_ranks[ri].closed = true;
                    ++m_closed;
                }
                break;
            default:
                fail_rank(ri, "an unexpected message (tag " + std::to_string(in.tag) + ")");
                break;
        }
    }
    return any;
}

void mpi_pool_core::impl::handle_result(std::size_t ri, std::vector<std::byte>& bytes) {
    result_trailer tr{};
    if (!take_trailer(bytes, tr) || tr.kind > static_cast<std::uint8_t>(result_kind::cancelled)) {
        fail_rank(ri, "a malformed result");
        return;
    }
    std::unique_ptr<process_task> t;
    bool matched = false;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_flights.find(tr.id);
        if (it != m_flights.end() && it->second.rank_index == ri) {
            matched = true;
            t = std::move(it->second.task);
            if (t) --m_running;
            --m_ranks[ri].in_flight;
            const std::int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now() - it->second.sent)
                                          .count();
            const std::int64_t mean = m_service_ns.load(std::memory_order_relaxed);
            m_service_ns.store(mean + (took - mean) / 8, std::memory_order_relaxed);
            m_flights.erase(it);
        }
    }
    if (!matched) {
        fail_rank(ri, "a result for a task it does not hold");
        return;
    }
    // A rank reports its running total; the pool's is the sum over ranks.
    if (tr.respawns > m_ranks[ri].respawns) {
        m_respawns.fetch_add(tr.respawns - m_ranks[ri].respawns, std::memory_order_relaxed);
        m_ranks[ri].respawns = tr.respawns;
    }
    if (!t) return;  // cancelled or abandoned: the answer is dropped
    const auto kind = static_cast<result_kind>(tr.kind);
    if (kind == result_kind::cancelled) {
        if (t->state->set_cancelled()) m_cancelled.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (kind == result_kind::failure) {
        std::exception_ptr e;
        try {
            byte_reader r(bytes);
            e = decode_exception(r);
        } catch (...) {
            e = std::current_exception();
        }
        m_failed.fetch_add(1, std::memory_order_relaxed);
        t->state->set_exception(std::move(e));
        return;
    }
    // Counted before completing, so that whoever sees the future done sees the
    // counters too. The first byte is the codec's status (0: value).
    const bool value = !bytes.empty() && bytes[0] == std::byte{status_value};
    (value ? m_completed : m_failed).fetch_add(1, std::memory_order_relaxed);
    byte_reader r(bytes);
    t->complete(t->state, r, t->count);
}

// A rank that broke the protocol: fail what it holds, give it nothing more.
void mpi_pool_core::impl::fail_rank(std::size_t ri, const std::string& why) {
    task_list failed;
    {
        std::lock_guard lock(m_mutex);
        if (m_ranks[ri].closed) return;
        m_ranks[ri].closed = true;
        ++m_closed;
        for (auto it = m_flights.begin(); it != m_flights.end();) {
            if (it->second.rank_index != ri) {
                ++it;
                continue;
            }
            if (it->second.task) {
                failed.push_back(std::move(it->second.task));
                --m_running;
            }
            it = m_flights.erase(it);
        }
        m_ranks[ri].in_flight = 0;
        m_slots_alive.fetch_sub(m_ranks[ri].slots, std::memory_order_relaxed);
    }
    const std::string what = "mpi_pool: rank " + std::to_string(m_ranks[ri].rank) + " (host " +
                             m_ranks[ri].host + ") sent " + why + "; it is no longer used";
    for (auto& t : failed) {
        m_failed.fetch_add(1, std::memory_order_relaxed);
        t->state->set_exception(std::make_exception_ptr(broken_pool(what)));
    }
}

// After shutdown: once nothing is queued or out on a rank (or at once after
// terminate_workers), tells every rank to close its local pool, then waits
// for all of them. True when the progress thread may end.
bool mpi_pool_core::impl::close_when_done() {
    if (!m_close_sent) {
        bool now = false;
        {
            std::lock_guard lock(m_mutex);
            if (!m_shutdown) return false;
            now = m_terminate;
            if (!now && (!m_pending.empty() || !m_flights.empty())) return false;
            m_close_sent = true;
        }
        for (auto& r : m_ranks) {
            if (!r.closed) m_link.send(r.rank, tag_close, {now ? std::byte{1} : std::byte{0}});
        }
    }
    return m_closed == m_ranks.size();
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
