// lib/mpi/progress.cpp — mpi_pool on rank 0, the progress thread: sends
// what callers could not, receives every answer, completes the futures,
// closes the ranks at shutdown. See client.hpp for the threads and invariants.
#include <algorithm>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/errors.hpp"
#include "mpi/client.hpp"
#include "mpi/protocol.hpp"
#include "process/task_name.hpp"
#include "trace/recorder.hpp"

namespace coexec::detail {

using namespace mpi;

namespace {

// A worker that died on another rank was running that rank's local copy of
// the task, which has no name: rank 0 knows the function and the chunk.
std::exception_ptr name_died_task(std::exception_ptr e, const process_task& t) noexcept {
    if (!e) return e;
    try {
        std::rethrow_exception(e);
    } catch (const worker_died& died) {
        // The rank's name is the generic one, maybe with why (its workers
        // died before starting it): the task's own name replaces that prefix.
        const std::string_view generic = unnamed_task;
        if (!died.task().starts_with(generic)) return e;
        try {
            return std::make_exception_ptr(
                worker_died(died.pid(), died.signal(), died.exit_code(),
                            task_name(t) + died.task().substr(generic.size()), died.cause()));
        } catch (...) {
            return e;  // no memory for a name: the rank's exception as it came
        }
    } catch (...) {
        return e;
    }
}

}  // namespace

mpi_pool_core::impl::start_result mpi_pool_core::impl::start_locked(
    std::unique_ptr<process_task>& t) {
    if (m_close_sent) return start_result::no_room;
    // The least loaded rank with room, searching from the round-robin point.
    std::size_t best = m_ranks.size();
    for (std::size_t k = 0; k < m_ranks.size(); ++k) {
        const std::size_t i = (m_next_rank + k) % m_ranks.size();
        const rank_state& r = m_ranks[i];
        if (r.closed || r.in_flight > r.slots) continue;
        if (best == m_ranks.size() || r.in_flight < m_ranks[best].in_flight) best = i;
    }
    if (best == m_ranks.size()) return start_result::no_room;
    if (!t->state->try_start()) return start_result::cancelled;
    m_next_rank = (best + 1) % m_ranks.size();
    const std::uint64_t id = ++m_env.next_task_id;
    const auto timeout = t->timeout.count() != 0 ? t->timeout : m_options.task_timeout;
    std::vector<std::byte> message = std::move(t->message);
    // Timed on its rank if it was submitted while a trace recorded (its
    // ticket is stamped): no trace check of its own here.
    const std::uint8_t flags = t->state->trace_ticket().name != 0 ? task_traced : 0;
    append_trailer(message, task_trailer{id, timeout.count(), flags, {}});
    m_link.send(m_ranks[best].rank, tag_task, std::move(message));  // size checked at submit
    ++m_ranks[best].in_flight;
    ++m_running;
    m_flights.emplace(id, flight{std::move(t), best, std::chrono::steady_clock::now()});
    return start_result::sent;
}

void mpi_pool_core::impl::send_cancel_locked(std::size_t rank_index, std::uint64_t id) {
    if (m_direct) {
        try {
            std::vector<std::byte> body;
            byte_writer(body).put_u64(id);
            m_link.send(m_ranks[rank_index].rank, tag_cancel, std::move(body));
            return;
        } catch (...) {
            // Leave it to the progress thread, which reports MPI failures.
        }
    }
    m_cancels.emplace_back(rank_index, id);
    signal_locked();
}

void mpi_pool_core::impl::run() noexcept {
    idle_backoff backoff(spin::mpi_poll);
    trace::ranks::name_progress_thread(m_trace->text());
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
        for (auto& r : m_ranks)
            r.trace.fault("MPI failure", what);
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
    task_list dropped;
    task_list orphaned;
    bool any = false;
    {
        std::lock_guard lock(m_mutex);
        m_signalled = false;
        // Queued cancels are for tasks sent earlier, so they follow their task.
        for (auto [ri, id] : std::exchange(m_cancels, {})) {
            std::vector<std::byte> body;
            byte_writer(body).put_u64(id);
            m_link.send(m_ranks[ri].rank, tag_cancel, std::move(body));
            any = true;
        }
        while (!m_pending.empty()) {
            const auto r = start_locked(m_pending.front());
            if (r == start_result::no_room) {
                // Every rank failed (none is merely full): nothing can run the rest.
                if (!m_close_sent && std::all_of(m_ranks.begin(), m_ranks.end(),
                                                 [](const rank_state& s) { return s.closed; })) {
                    m_shutdown = true;
                    for (auto& t : m_pending)
                        orphaned.push_back(std::move(t));
                    m_pending.clear();
                }
                break;
            }
            if (r == start_result::cancelled) {  // cancelled while queued
                m_cancelled.fetch_add(1, std::memory_order_relaxed);
                dropped.push_back(std::move(m_pending.front()));
            }
            m_pending.pop_front();
            any = true;
        }
    }
    dropped.clear();  // outside the lock: destroying a task may run callbacks
    for (auto& t : orphaned) {
        m_failed.fetch_add(1, std::memory_order_relaxed);
        t->state->set_exception(std::make_exception_ptr(
            broken_pool("mpi_pool: the pool is broken: no worker rank is left to run the task")));
    }
    return any;
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
            case tag_closed: {
                std::lock_guard lock(m_mutex);
                if (!m_ranks[ri].closed) {
                    m_ranks[ri].closed = true;
                    ++m_closed;
                }
                break;
            }
            default:
                fail_rank(ri, "an unexpected message (tag " + std::to_string(in.tag) + ")");
                break;
        }
    }
    return any;
}

void mpi_pool_core::impl::handle_result(std::size_t ri, std::vector<std::byte>& bytes) {
    result_trailer tr{};
    span_trailer span{};
    if (!take_trailer(bytes, tr) || tr.kind > static_cast<std::uint8_t>(result_kind::cancelled) ||
        ((tr.flags & result_has_span) != 0 && !take_trailer(bytes, span))) {
        fail_rank(ri, "a malformed result");
        return;
    }
    std::unique_ptr<process_task> t;
    bool matched = false;
    std::chrono::steady_clock::time_point sent;
    {
        std::lock_guard lock(m_mutex);
        auto it = m_flights.find(tr.id);
        if (it != m_flights.end() && it->second.rank_index == ri) {
            matched = true;
            sent = it->second.sent;
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
        const std::uint64_t more = tr.respawns - m_ranks[ri].respawns;
        m_respawns.fetch_add(more, std::memory_order_relaxed);
        m_ranks[ri].respawns = tr.respawns;
        if (trace::on()) {
            m_ranks[ri].trace.fault("worker respawned",
                                    "the rank started " + std::to_string(more) +
                                        " worker process(es) in place of dead ones (" +
                                        std::to_string(tr.respawns) + " so far)");
        }
    }
    if (!t) return;  // cancelled or abandoned: the answer is dropped
    const auto kind = static_cast<result_kind>(tr.kind);
    // Drawn before the future completes: a thread it wakes may stop the trace.
    if ((tr.flags & result_has_span) != 0 && kind != result_kind::cancelled && trace::on()) {
        std::exception_ptr failure;
        if (kind == result_kind::failure) {
            try {
                byte_reader r(bytes);
                failure = decode_exception(r);
            } catch (...) {
                failure = std::current_exception();
            }
        }
        trace_result(ri, *t, sent, span, failure);
    }
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
        e = name_died_task(std::move(e), *t);
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

// A traced task's span on its rank's track, and the fault that ended it if
// any (the worker's death, a deadline). `failure`: the task's exception.
void mpi_pool_core::impl::trace_result(std::size_t ri, const process_task& t,
                                       std::chrono::steady_clock::time_point sent,
                                       const span_trailer& span,
                                       const std::exception_ptr& failure) noexcept {
    trace::ranks::remote_span s;
    s.received = span.received;
    s.started = span.started;
    s.finished = span.finished;
    s.worker = span.worker;
    s.thread = (span.flags & span_worker_thread) != 0;
    std::uint8_t flags = 0;
    const char* fault = nullptr;
    std::string reason;
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const worker_died& e) {
            flags = trace::task_flag::died;
            fault = "worker died";
            reason = e.what();
        } catch (const deadline_exceeded& e) {
            flags = trace::task_flag::killed;
            fault = "deadline kill";
            reason = e.what();
        } catch (...) {
        }
    }
    const trace::task_ticket& ticket = t.state->trace_ticket();
    auto& track = m_ranks[ri].trace;
    const std::int64_t end = track.task(ticket, sent, s, flags);
    // Where the task's span ends: when its rank learnt of the fault.
    if (fault != nullptr) track.fault(fault, reason, ticket.name, s.worker, s.thread, end);
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
    m_ranks[ri].trace.fault("rank failed", what);
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

}  // namespace coexec::detail
