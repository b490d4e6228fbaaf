// lib/mpi/server.cpp — a worker rank: receives tasks from rank 0, runs them
// locally, sends the results back.
//
// Threads: the serve loop (the thread that called serve()) receives every
// message and owns the table of running tasks. Tasks run on a local
// process_pool (process isolation: its supervisor thread completes them) or
// thread_pool (thread isolation: its workers do). With MPI_THREAD_MULTIPLE
// the completing thread sends the result itself (a hand-off to the loop
// costs one of its polls, ~5 us here) and only tells the loop to forget the
// task; otherwise completions reach the loop through `m_finished`, under
// `m_mutex`, with a wake-up if it sleeps, and the loop sends them. The loop
// backs off when idle (lib/util/backoff.hpp).
//
// Tracing: a task rank 0 marks traced is timed here (arrival, the outcome)
// and where it runs (process isolation: timed_run in the worker process;
// thread isolation: the pool thread), and the times go back in its result
// message (span_trailer). The rank records nothing itself: rank 0 draws the
// spans (lib/trace/rank_link.hpp).
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/detail/codec/remote_call.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/thread_pool.hpp"
#include "mpi/environment.hpp"
#include "mpi/link.hpp"
#include "mpi/protocol.hpp"
#include "util/backoff.hpp"
#include "util/cpus.hpp"

namespace coexec::detail::mpi {
namespace {

using clock = std::chrono::steady_clock;
using bytes = std::vector<std::byte>;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
        .count();
}

// Process isolation, traced: runs in the local worker process around the
// task's own trampoline and puts the worker's times (and pid) in front of
// its outcome. If the task's trampoline throws, the worker replaces the
// whole output with the failure, whose first byte is the codec's status,
// never timed_tag: the server then has no worker times.
constexpr std::byte timed_tag{0x54};
struct worker_times {
    std::int64_t begin;
    std::int64_t end;
    std::uint32_t pid;
    std::uint32_t reserved;
};

void timed_run(byte_reader& in, byte_writer& out) {
    const std::size_t at = out.size();
    worker_times t{0, 0, static_cast<std::uint32_t>(::getpid()), 0};
    out.put(static_cast<std::uint8_t>(timed_tag));
    out.write(&t, sizeof t);
    t.begin = now_ns();
    decode_trampoline(in)(in, out);
    t.end = now_ns();
    std::memcpy(out.bytes().data() + at + 1, &t, sizeof t);
}

/// The local process pool's form of timed_run's address (this image: the
/// workers are forked from it).
std::uint64_t timed_run_address() {
    static const std::uint64_t address =
        encode_code_address(std::bit_cast<const void*>(&timed_run));
    return address;
}

/// Takes timed_run's header off `payload` into `span`, if it is there.
void take_worker_times(bytes& payload, span_trailer& span) {
    constexpr std::size_t header = 1 + sizeof(worker_times);
    if (payload.size() < header || payload[0] != timed_tag) return;
    worker_times t;
    std::memcpy(&t, payload.data() + 1, sizeof t);
    payload.erase(payload.begin(), payload.begin() + header);
    span.started = t.begin;
    span.finished = t.end;
    span.worker = t.pid;
}

bytes encode_error(std::exception_ptr e) {
    bytes out;
    byte_writer w(out);
    encode_exception(w, std::move(e));
    return out;
}

// Thread isolation: the process worker's dispatch, on a thread of this rank.
// Returns what remote_invoke writes (a status byte, then value or exception).
bytes run_message(const bytes& message) {
    bytes out;
    byte_writer w(out);  // no descriptors: a shared_buffer result fails to encode
    try {
        byte_reader in(message);
        decode_trampoline(in)(in, w);  // the process worker's dispatch, in this rank
    } catch (...) {
        out.clear();
        w.put(status_exception);
        encode_exception(w, std::current_exception());
    }
    return out;
}

// Process isolation: process_task::complete for the local pool. Keeps the
// worker's result message as it is, to be forwarded to rank 0.
void keep_result(shared_state_base* base, byte_reader& in, std::size_t) noexcept {
    auto* s = static_cast<shared_state<bytes>*>(base);
    try {
        if (in.fd_count() != 0) {
            throw serialization_error(
                "coexec::mpi_pool: the task returned a shared_buffer, which cannot be sent to "
                "another MPI rank (it may run on another host); return the bytes by value");
        }
        bytes out(in.remaining());
        in.read(out.data(), out.size());
        s->set_value(std::move(out));
    } catch (...) {
        s->set_exception(std::current_exception());
    }
}

struct running_task {
    std::uint64_t id = 0;
    std::int64_t timeout_ns = 0;
    bool traced = false;                       // rank 0 wants its times (span_trailer)
    std::int64_t received_ns = 0;              // traced: when it arrived here
    std::atomic<std::int64_t> started_ns{0};   // thread isolation: when a thread took it
    std::atomic<std::int64_t> finished_ns{0};  // thread isolation, traced: when it returned
    std::atomic<std::uint32_t> thread_id{0};   // thread isolation, traced: the thread running it
    std::atomic<bool> reported{false};         // rank 0 has its outcome (result or deadline)
    process_pool_core* pool = nullptr;         // process isolation: for its respawn count
    shared_state<bytes>* state = nullptr;      // process isolation: the result, kept by `local`
    bytes result;                              // thread isolation: the result, once `local` is done
    future<bytes> local;                       // to cancel, and to learn the outcome
};

struct finished {
    std::shared_ptr<running_task> task;
    result_kind kind;
    bytes payload;
    span_trailer span{};  // the task's times, if traced
    bool sent = false;    // the completing thread sent it: the loop only forgets the task
};

class server {
  public:
    server(MPI_Comm comm, bool any_thread_sends) : m_link(comm), m_direct(any_thread_sends) {}
    ~server() { close_local(true); }

    int run();

  private:
    bool handle(incoming& in);
    void open(const bytes& body);
    void start(bytes message);
    void cancel(const bytes& body);
    void close_local(bool now) noexcept;
    void on_done(const std::shared_ptr<running_task>& task, const future<bytes>& f) noexcept;
    bool send_finished();
    bool check_deadlines();
    void send_result(const running_task& task, result_kind kind, bytes payload,
                     const span_trailer& span = {});
    span_trailer thread_span(const running_task& task) const;

    link m_link;
    bool m_direct;
    mpi_isolation m_isolation = mpi_isolation::process;
    std::unique_ptr<process_pool_core> m_processes;
    std::unique_ptr<thread_pool> m_threads;
    std::unordered_map<std::uint64_t, std::shared_ptr<running_task>> m_running;  // loop only
    std::size_t m_timed = 0;  // entries of m_running with a deadline (thread isolation)

    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::vector<finished> m_finished;  // guarded by m_mutex
    bool m_sleeping = false;           // guarded by m_mutex
};

int server::run() {
    idle_backoff backoff(spin::mpi_poll);
    incoming in;
    std::vector<finished> none;
    for (;;) {
        bool any = false;
        while (m_link.try_receive(0, in)) {
            any = true;
            if (!handle(in)) {
                close_local(true);
                m_link.flush();
                return 0;
            }
        }
        any |= send_finished();
        if (m_timed != 0) any |= check_deadlines();
        any |= m_link.progress();
        if (any) {
            backoff.reset();
            continue;
        }
        const auto pause = backoff.next();
        if (pause.count() == 0) {
            backoff.relax();
            continue;
        }
        std::unique_lock lock(m_mutex);
        if (!m_finished.empty()) continue;
        m_sleeping = true;
        m_cv.wait_for(lock, pause, [&] { return !m_finished.empty(); });
        m_sleeping = false;
    }
}

bool server::handle(incoming& in) {
    switch (in.tag) {
        case tag_open:
            open(in.bytes);
            return true;
        case tag_task:
            start(std::move(in.bytes));
            return true;
        case tag_cancel:
            cancel(in.bytes);
            return true;
        case tag_clock: {  // rank 0 estimates our clock's offset (Cristian's method)
            bytes reply;
            byte_writer w(reply);
            try {
                w.put_u64(byte_reader(in.bytes).get_u64());  // the round, echoed
            } catch (...) {
                return true;
            }
            w.put_u64(static_cast<std::uint64_t>(now_ns()));
            m_link.send(0, tag_clock_reply, std::move(reply));
            return true;
        }
        case tag_close: {
            const bool now = !in.bytes.empty() && in.bytes[0] != std::byte{0};
            close_local(now);
            m_link.send(0, tag_closed, {});
            return true;
        }
        case tag_exit:
            return false;
        default:
            return true;  // unknown: rank 0 is trusted, so only a newer protocol; ignore
    }
}

void server::open(const bytes& body) {
    bytes reply;
    byte_writer w(reply);
    try {
        if (m_processes || m_threads) throw error("a pool is already open on this rank");
        byte_reader r(body);
        m_isolation = r.get() == 0 ? mpi_isolation::process : mpi_isolation::thread;
        std::size_t slots = r.get_u64();
        const std::uint64_t init = r.get_u64();
        if (slots == 0) slots = usable_cpus();
        void (*initializer)() =
            init != 0 ? std::bit_cast<void (*)()>(decode_code_address(init)) : nullptr;
        if (m_isolation == mpi_isolation::process) {
            m_processes = std::make_unique<process_pool_core>(
                process_pool_options{.max_workers = slots, .initializer = initializer});
        } else {
            thread_pool_options o{.max_workers = slots, .thread_name_prefix = "coexec-mpi"};
            if (initializer != nullptr) o.initializer = initializer;
            m_threads = std::make_unique<thread_pool>(std::move(o));
        }
        char host[256] = {};
        (void)::gethostname(host, sizeof host - 1);
        w.put(0);
        w.put_u64(slots);
        w.put_u64(static_cast<std::uint64_t>(::getpid()));
        w.put_string(host);
    } catch (const std::exception& e) {
        m_processes.reset();
        m_threads.reset();
        reply.clear();
        w.put(1);
        w.put_string(e.what());
    }
    m_link.send(0, tag_opened, std::move(reply));
}

void server::start(bytes message) {
    task_trailer t{};
    if (!take_trailer(message, t)) return;  // rank 0 never sends these
    auto task = std::make_shared<running_task>();
    task->id = t.id;
    task->timeout_ns = t.timeout_ns;
    if ((t.flags & task_traced) != 0) {
        task->traced = true;
        task->received_ns = now_ns();
    }
    m_running[t.id] = task;
    try {
        if (m_processes) {
            auto* state = new shared_state<bytes>();
            task->local = future<bytes>(state);
            task->state = state;
            task->pool = m_processes.get();
            auto pt = std::make_unique<process_task>();
            pt->state = state;  // the creation reference
            pt->complete = &keep_result;
            if (task->traced) {
                // Behind timed_run, which calls the task's own trampoline.
                pt->message.reserve(sizeof(std::uint64_t) + message.size());
                byte_writer(pt->message).put_u64(timed_run_address());
                pt->message.insert(pt->message.end(), message.begin(), message.end());
            } else {
                pt->message = std::move(message);
            }
            pt->timeout = std::chrono::nanoseconds(t.timeout_ns);
            m_processes->submit(std::move(pt));
        } else if (m_threads) {
            if (t.timeout_ns > 0) ++m_timed;
            // The result goes into `task` (the future's copy would be a second one).
            // The job takes a token so that a cancel from rank 0 (the pool's
            // destruction, shutdown(cancel_futures)) signals it, and hands it
            // to the task if the task takes one.
            task->local =
                m_threads->submit([task, message = std::move(message)](std::stop_token stop) {
                    remote_stop_scope stop_scope(std::move(stop));
                    if (task->traced) {
                        task->thread_id.store(static_cast<std::uint32_t>(::syscall(SYS_gettid)),
                                              std::memory_order_relaxed);
                    }
                    task->started_ns.store(now_ns(), std::memory_order_release);
                    task->result = run_message(message);
                    if (task->traced) task->finished_ns.store(now_ns(), std::memory_order_release);
                    return bytes{};
                });
        } else {
            throw error("coexec::mpi_pool: a task arrived while no pool is open on this rank");
        }
    } catch (...) {
        // Refused locally (a broken local pool): the reason goes back as the failure.
        span_trailer span{};
        span.received = task->received_ns;
        span.finished = now_ns();
        send_result(*task, result_kind::failure, encode_error(std::current_exception()), span);
        task->reported.store(true);
        if (task->timeout_ns > 0 && m_threads) --m_timed;
        m_running.erase(t.id);
        return;
    }
    // After submit: a completion that already happened calls back at once.
    // on_done is library code that only sends or queues the result, so it may
    // run on the local process pool's supervisor thread: a user done-callback
    // would be handed to the pool's completion thread, one more wake-up per
    // task (63-92 us round trips instead of 23 us in bench/mpi).
    detail::add_signal_callback(
        task->local, [this, task](const future<bytes>& f) noexcept { on_done(task, f); });
}

void server::cancel(const bytes& body) {
    byte_reader r(body);
    std::uint64_t id = 0;
    try {
        id = r.get_u64();
    } catch (...) {
        return;
    }
    auto it = m_running.find(id);
    // Process isolation kills the worker if the task runs; either way the
    // completion (cancelled, or the result if it won the race) reports it.
    if (it != m_running.end() && it->second->local.valid()) it->second->local.cancel();
}

void server::on_done(const std::shared_ptr<running_task>& task, const future<bytes>& f) noexcept {
    finished done{task, result_kind::value, {}};
    try {
        if (f.has_value()) {
            // Ours alone (nobody else reads the value): moved, not copied.
            done.payload =
                task->state != nullptr ? std::move(task->state->value()) : std::move(task->result);
        } else if (f.cancelled()) {
            done.kind = result_kind::cancelled;
        } else {
            done.kind = result_kind::failure;
            done.payload = encode_error(f.exception());
        }
    } catch (...) {
        done.kind = result_kind::failure;
        done.payload.clear();
    }
    if (task->traced) {
        if (m_processes) {
            done.span.received = task->received_ns;
            done.span.finished = now_ns();
            if (done.kind == result_kind::value) {
                take_worker_times(done.payload, done.span);
            } else if (done.kind == result_kind::failure) {
                // A worker that died holding it: its track on rank 0.
                try {
                    std::rethrow_exception(f.exception());
                } catch (const worker_died& e) {
                    done.span.worker = static_cast<std::uint32_t>(e.pid());
                } catch (...) {
                }
            }
        } else {
            done.span = thread_span(*task);
        }
    }
    if (m_direct) {
        // From this thread (MPI_THREAD_MULTIPLE); the loop only forgets the task.
        try {
            if (!task->reported.exchange(true))
                send_result(*task, done.kind, std::move(done.payload), done.span);
        } catch (...) {
            // An MPI failure: the loop's own calls will report it.
        }
        done.payload.clear();
        done.sent = true;
        std::lock_guard lock(m_mutex);
        m_finished.push_back(std::move(done));
        return;
    }
    std::lock_guard lock(m_mutex);
    m_finished.push_back(std::move(done));
    if (m_sleeping) m_cv.notify_one();
}

bool server::send_finished() {
    std::vector<finished> batch;
    {
        std::lock_guard lock(m_mutex);
        if (m_finished.empty()) return false;
        batch.swap(m_finished);
    }
    for (auto& f : batch) {
        running_task& t = *f.task;
        if (m_running.erase(t.id) != 0 && t.timeout_ns > 0 && m_threads) --m_timed;
        // Sent already by the completing thread, or its deadline was reported.
        if (f.sent || t.reported.exchange(true)) continue;
        send_result(t, f.kind, std::move(f.payload), f.span);
    }
    return true;
}

bool server::check_deadlines() {
    const std::int64_t now = now_ns();
    bool any = false;
    for (auto& [id, t] : m_running) {
        const std::int64_t started = t->started_ns.load(std::memory_order_acquire);
        if (t->reported.load() || t->timeout_ns <= 0 || started == 0 ||
            now - started < t->timeout_ns)
            continue;
        // A thread cannot be killed: the task runs on, its result is dropped.
        if (t->reported.exchange(true)) continue;
        send_result(*t, result_kind::failure,
                    encode_error(std::make_exception_ptr(deadline_exceeded(
                        "mpi_pool: the task ran past its deadline (thread isolation: it could not "
                        "be stopped and keeps running on its rank)"))),
                    t->traced ? thread_span(*t) : span_trailer{});
        any = true;
    }
    return any;
}

// Thread isolation: the times a traced task's thread took (finished: now if
// it has not returned, as when its deadline is reported).
span_trailer server::thread_span(const running_task& task) const {
    span_trailer span{};
    span.received = task.received_ns;
    span.started = task.started_ns.load(std::memory_order_acquire);
    span.finished = task.finished_ns.load(std::memory_order_acquire);
    if (span.finished == 0) span.finished = now_ns();
    span.worker = task.thread_id.load(std::memory_order_relaxed);
    span.flags = span_worker_thread;
    return span;
}

void server::send_result(const running_task& task, result_kind kind, bytes payload,
                         const span_trailer& span) {
    result_trailer t{};
    t.id = task.id;
    t.respawns = task.pool != nullptr ? task.pool->stats().respawns : 0;
    t.kind = static_cast<std::uint8_t>(kind);
    t.flags = task.traced ? result_has_span : 0;
    if (task.traced) append_trailer(payload, span);
    append_trailer(payload, t);
    try {
        m_link.send(0, tag_result, std::move(payload));
    } catch (const serialization_error&) {
        // Too large for one MPI message: report that instead of the result.
        bytes failure = encode_error(std::current_exception());
        t.kind = static_cast<std::uint8_t>(result_kind::failure);
        if (task.traced) append_trailer(failure, span);
        append_trailer(failure, t);
        m_link.send(0, tag_result, std::move(failure));
    }
}

void server::close_local(bool now) noexcept {
    try {
        if (m_processes) {
            if (now) m_processes->terminate_workers();
            m_processes.reset();  // waits for its workers to exit
        }
        if (m_threads) {
            if (now) m_threads->shutdown(false, true);
            m_threads.reset();  // waits for running tasks: threads cannot be killed
        }
    } catch (...) {
    }
    // Rank 0 has given up on whatever was still running: drop it silently.
    std::lock_guard lock(m_mutex);
    m_finished.clear();
    m_running.clear();
    m_timed = 0;
}

}  // namespace

int serve(MPI_Comm comm, bool any_thread_sends) {
    server s(comm, any_thread_sends);
    return s.run();
}

}  // namespace coexec::detail::mpi
