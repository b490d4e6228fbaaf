// coexec/process_pool.hpp — CPU-bound work in crash-isolated worker processes.
//
// Python's ProcessPoolExecutor with the same future API as thread_pool: a
// task runs in a worker process, so a crash, abort or runaway allocation
// fails that one task (worker_died) and the pool carries on.
//
// @par What can be sent
// The callable must be a function pointer, a captureless lambda or a
// serializable function object; arguments and results must satisfy
// coexec::serializable. Anything else is rejected at compile time by
// submit/map with a message that says why. Exceptions thrown by a task arrive
// as the same standard type with the same what(); others as remote_error.
// shared_buffer arguments and results cross by descriptor, never copied.
//
// @par How workers start (start_method)
// - fork_server (default): workers are forked from a single-threaded helper
//   process, the fork server, made while the program is still single-threaded
//   — at the first pool's construction if the program has one thread then,
//   or at an early call of process_pool::prepare(). If the program is already
//   multithreaded and no fork server exists, the pool never forks from it: it
//   falls back to `spawn`, and says so once per process on stderr (with the
//   fix; COEXEC_NO_SPAWN_WARNING=1 silences it, as does asking for spawn).
// - fork: forked straight from this process (only for programs that have no
//   other threads: a lock held by another thread at fork stays locked in the
//   worker forever). All workers are forked before the constructor returns,
//   but replacements (after a death, or max_tasks_per_child) are forked by
//   the pool's supervisor thread while the program runs: prefer fork_server
//   where workers are replaced and the program has threads of its own.
// - spawn: re-executes /proc/self/exe; libcoexec catches the worker before
//   main runs (a static initializer), so static objects of other translation
//   units may not be constructed yet in the worker. Safe from any state.
// The worker image is the program as it was when the fork server or
// the worker (fork) was forked, or a fresh start (spawn): an `initializer`
// sets up per-worker state. Workers die with the program, even on SIGKILL.
//
// @par Scheduling
// A worker is handed one task at a time; the others wait in the pool's queue,
// where cancel() still removes them (so a death or a deadline concerns exactly
// one task). map() sends a whole chunk of inputs as one task. One supervisor
// thread per pool collects results, completes futures, enforces deadlines and
// replaces dead workers.
//
// @par Where completion runs user code
// Never on the supervisor: it stores the result, wakes threads blocked in
// get()/wait() and posts an awaiting coroutine back to its executor (a
// thread_pool, sync_wait, Asio); done-callbacks and coroutines that have no
// executor run, in completion order, on the pool's completion thread
// ("coexec-callback", started at the first one). A callback may therefore
// block — even on another future of this pool — delaying only the callbacks
// behind it, never results, deaths or deadlines; a callback may also shut
// the pool down or destroy it.
//
// @par Thread safety
// All members may be called from any thread concurrently, except that the
// destructor must not race with other calls.
//
// @par Shutdown
// shutdown(wait = true) lets queued and running tasks finish, then stops the
// workers; cancel_futures = true cancels the queued ones first, and stops the
// running ones whose callable takes a std::stop_token (a process task is
// stopped by killing its worker; its future ends cancelled). Submitting
// afterwards throws executor_shutdown. The destructor stops such tasks, queued
// or running, as a thread_pool's signals their tokens, then is
// shutdown(wait = true).
// terminate_workers() stops everything now: queued and running futures are
// cancelled and the workers are sent SIGTERM, then SIGKILL after a grace period.
//
// @par Errors
// A task whose worker dies fails with worker_died; past its deadline, with
// deadline_exceeded; with on_worker_death = break_pool, a death fails every
// pending future with broken_pool and later submits throw it. OS failures
// while starting the pool throw std::system_error naming the call.
//
// @par Limits and sandbox (docs/sandbox.md)
// `limits` bounds every worker's memory, CPU time per task and descriptors;
// `sandbox = sandbox::compute` confines the worker with a seccomp allow-list
// (no files, sockets, processes or tracing: those calls fail with EPERM in
// the task) after its initializer ran. A task over its memory limit sees
// std::bad_alloc; one over its CPU time is killed and fails with worker_died
// naming the limit.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/remote_call.hpp"
#include "coexec/detail/invoke.hpp"
#include "coexec/detail/process_task.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/register_exception.hpp"
#include "coexec/results.hpp"
#include "coexec/serializable.hpp"
#include "coexec/submit_options.hpp"

namespace coexec {

/// What the pool does when a worker dies while running a task.
enum class worker_death {
    respawn,     ///< fail that task with worker_died, start a new worker
    break_pool,  ///< fail every pending future with broken_pool (Python's behaviour)
};

/// How worker processes are started; see the header comment.
enum class start_method { fork_server, fork, spawn };

/// A whole number of seconds, written either way: `2s` (any std::chrono
/// duration that converts to seconds without loss) or a plain count, `2`.
class whole_seconds {
  public:
    constexpr whole_seconds() noexcept = default;
    template <class Rep, class Period>
        requires std::is_convertible_v<std::chrono::duration<Rep, Period>, std::chrono::seconds>
    constexpr whole_seconds(std::chrono::duration<Rep, Period> d) noexcept : m_value(d) {}
    template <std::integral N>
    constexpr whole_seconds(N n) noexcept : m_value(static_cast<std::chrono::seconds::rep>(n)) {}
    constexpr std::chrono::seconds::rep count() const noexcept { return m_value.count(); }
    constexpr operator std::chrono::seconds() const noexcept { return m_value; }

  private:
    std::chrono::seconds m_value{0};
};

/// Resource limits of every worker process (rlimits set in the worker before
/// its first task); 0 = unlimited. See docs/sandbox.md.
struct process_limits {
    /// The worker's address space in bytes (RLIMIT_AS): the program's own
    /// mappings count too. An allocation past it throws std::bad_alloc in
    /// the task, and the worker stays usable.
    std::size_t memory = 0;
    /// CPU time one task may use. Past it the worker is killed (SIGXCPU, or
    /// SIGKILL one second later) and the task fails with worker_died whose
    /// what() names the cpu_time limit. Workers are replaced before their
    /// accumulated time could cut a task short, so a task gets at least this
    /// much, and at most a quarter more rounded up to whole seconds.
    whole_seconds cpu_time{};  // `2s` or `2`
    /// Descriptors a task may open besides the worker's own (RLIMIT_NOFILE):
    /// past them, open/memfd_create/... fail with EMFILE.
    std::size_t open_files = 0;
};

/// The confinement of worker processes (docs/sandbox.md).
enum class sandbox {
    none,     ///< no confinement beyond the limits
    compute,  ///< no new privileges + a seccomp allow-list for computing (x86_64, aarch64)
};

/// Options of a process_pool; documented field by field in docs/api.md.
struct process_pool_options {
    /// Worker processes; 0 = the number of cores this process may run on.
    std::size_t max_workers = 0;
    /// Tasks a worker runs before it is replaced; 0 = unlimited.
    std::size_t max_tasks_per_child = 0;
    /// Runs once in every worker before its first task. A plain function
    /// (it must exist in the worker image). If it throws, the pool breaks.
    void (*initializer)() = nullptr;
    /// A task running longer has its worker killed and fails with
    /// deadline_exceeded; 0 = no limit. The clock starts when the task is
    /// sent to a worker; with an initializer, tasks go only to workers
    /// whose initializer has finished, so its time never counts.
    std::chrono::nanoseconds task_timeout{0};
    worker_death on_worker_death = worker_death::respawn;
    start_method start = start_method::fork_server;
    /// Limits of every worker (0 = unlimited).
    process_limits limits{};
    /// sandbox::compute: installed in every worker after its initializer.
    /// Constructing the pool throws std::system_error (ENOTSUP) on an
    /// architecture the allow-list does not cover, or without seccomp.
    coexec::sandbox sandbox = coexec::sandbox::none;
    /// System call names added to sandbox::compute's allow-list, without
    /// argument checks (e.g. "mbind"). An unknown name throws
    /// std::invalid_argument at construction.
    std::vector<std::string> sandbox_allow{};
};

namespace detail {

/// The codec sends a map chunk as a vector of elements and applies a
/// std::tuple element as the argument list, anything else as one argument.
/// wire_element_t<F, Arg> is the element type that makes it follow map's rule
/// (detail/invoke.hpp) for inputs of type Arg: a spread pair or array becomes
/// a tuple; a tuple passed whole is wrapped in a tuple of one.
template <class F, class Arg>
struct wire_element {
    using type = Arg;
};
template <class F, class Arg>
    requires spreads_element_v<std::decay_t<F>&, Arg>
struct wire_element<F, Arg> {
    using type =
        decltype(std::apply([](auto&&... e) { return std::tuple<std::decay_t<decltype(e)>...>(); },
                            std::declval<Arg&>()));
};
template <class F, class... Ts>
    requires(!spreads_element_v<std::decay_t<F>&, std::tuple<Ts...>>)
struct wire_element<F, std::tuple<Ts...>> {
    using type = std::tuple<std::tuple<Ts...>>;
};
template <class F, class Arg>
using wire_element_t = typename wire_element<F, Arg>::type;

/// A map chunk in the form the codec sends (wire_element_t), for every pool
/// that sends chunks (process_pool, mpi_pool); passed through when unchanged.
template <class F, class Arg>
std::vector<wire_element_t<F, Arg>> to_wire_chunk(std::vector<Arg> chunk) {
    using Wire = wire_element_t<F, Arg>;
    if constexpr (std::is_same_v<Wire, Arg>) {
        return chunk;
    } else {
        std::vector<Wire> elements;
        elements.reserve(chunk.size());
        for (auto& e : chunk) {
            if constexpr (std::is_constructible_v<Wire, Arg&&>) {
                elements.emplace_back(std::move(e));  // tuple<Arg> from Arg, tuple from pair
            } else {
                elements.push_back(
                    std::apply([](auto&&... x) { return Wire(std::move(x)...); }, std::move(e)));
            }
        }
        return elements;
    }
}

/// The non-template part of process_pool (lib/process/pool.cpp, supervisor.cpp).
class process_pool_core {
  public:
    explicit process_pool_core(const process_pool_options& options);
    ~process_pool_core();
    process_pool_core(const process_pool_core&) = delete;
    process_pool_core& operator=(const process_pool_core&) = delete;

    /// Queues `task` (the future is already made). Throws executor_shutdown
    /// or broken_pool; the task's future is then left untouched by the pool
    /// and completed by ~process_task.
    void submit(std::unique_ptr<process_task> task);
    /// An empty encoding buffer, with the capacity of a finished large task's
    /// if one is kept (else no capacity). Never throws.
    std::vector<std::byte> take_message_buffer() noexcept;
    void shutdown(bool wait, bool cancel_futures);
    void terminate_workers();
    executor_stats stats() const noexcept;
    std::size_t max_workers() const noexcept;
    static bool prepare();

    struct impl;  ///< lib/process/pool_impl.hpp (named here only so lib/ can define it)

  private:
    std::shared_ptr<impl> m_impl;
};

}  // namespace detail

/// A pool of worker processes. See the header comment for the contract.
class process_pool {
  public:
    /// Starts the pool with default options. Throws std::system_error.
    process_pool() : process_pool(process_pool_options{}) {}
    /// Starts the pool and its first worker; the others start right after
    /// it returns (a first task waits for one fork, not all; with
    /// start_method::fork all are forked before it returns). Throws
    /// std::system_error if the OS refuses the first (memfd, fork, ...); a
    /// later worker that cannot be started breaks the pool (broken_pool).
    explicit process_pool(process_pool_options options) : m_core(options) {}
    /// shutdown(wait = true).
    ~process_pool() = default;
    process_pool(const process_pool&) = delete;
    process_pool& operator=(const process_pool&) = delete;

    /// Makes the fork server now, while the program is single-threaded; call
    /// it early in main (before starting threads) if the first pool is made
    /// later. Returns true if a fork server is running (false if the program
    /// is already multithreaded: pools then use start_method::spawn).
    static bool prepare() { return detail::process_pool_core::prepare(); }

    /// Runs `f(args...)` in a worker. Encodes the call on this thread (throws
    /// serialization_error or what a user serialize() throws), then queues it.
    /// Throws executor_shutdown after shutdown(), broken_pool if broken.
    template <class F, class... Args>
    auto submit(F&& f, Args&&... args)
        -> future<detail::remote_result_t<F, detail::wire_arg_t<Args>...>> {
        return submit_with(submit_options{}, std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// As submit, with per-task options (a deadline).
    template <class F, class... Args>
    auto submit_with(submit_options options, F&& f, Args&&... args)
        -> future<detail::remote_result_t<F, detail::wire_arg_t<Args>...>> {
        detail::check_remote_callable<F, detail::wire_arg_t<Args>...>();
        using R = detail::remote_result_t<F, detail::wire_arg_t<Args>...>;
        auto* state = new detail::shared_state<R>();
        future<R> result(state);
        detail::trace::on_submit(*state, f);
        auto task = std::make_unique<detail::process_task>();
        task->state = state;  // takes the creation reference
        task->complete = &detail::complete_single<R>;
        task->timeout = options.timeout;
        task->stoppable = detail::takes_stop_token_v<std::decay_t<F>&, detail::wire_arg_t<Args>...>;
        detail::name_task(*task, f);
        if constexpr (detail::is_remote_callable_v<F, detail::wire_arg_t<Args>...>) {
            task->message = m_core.take_message_buffer();
            detail::byte_writer w(task->message, &task->fds);
            w.put_u64(detail::trampoline_address<
                      &detail::remote_invoke<std::decay_t<F>, detail::wire_arg_t<Args>...>>());
            detail::encode_call(w, f, detail::to_wire_arg(args)...);
        }
        m_core.submit(std::move(task));
        return result;
    }

    /// Python's map / imap / imap_unordered: lazily applies `f` to each input,
    /// one message per chunk of inputs (map_options::chunksize, automatic
    /// by default). See results<R>. The pool must outlive the results.
    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    /// Stops accepting work; see the header comment. Thread-safe; a waiting
    /// call blocks until every accepted task has finished and workers exited.
    void shutdown(bool wait = true, bool cancel_futures = false) {
        m_core.shutdown(wait, cancel_futures);
    }

    /// Stops now: cancels queued and running futures, sends the workers
    /// SIGTERM, then SIGKILL after a short grace period; implies shutdown.
    void terminate_workers() { m_core.terminate_workers(); }

    std::size_t max_workers() const noexcept { return m_core.max_workers(); }
    /// A snapshot of the counters (executor_stats); `respawns` counts workers
    /// started to replace dead or recycled ones.
    executor_stats stats() const noexcept { return m_core.stats(); }

  private:
    friend struct detail::map_chunk_hook<process_pool>;

    /// map's machinery (through detail::map_chunk_hook): one chunk of inputs
    /// as one task, one message. Elements follow map's rule (detail/invoke.hpp),
    /// so they are first put in the form the codec sends (detail::wire_element_t).
    template <class F, class Arg>
    auto submit_chunk(const F& f, std::vector<Arg> chunk) {
        return send_chunk(f, detail::to_wire_chunk<F>(std::move(chunk)));
    }

    template <class F, class Arg>
    auto send_chunk(const F& f, std::vector<Arg> chunk)
        -> future<std::vector<detail::outcome<detail::chunk_result_t<F, Arg>>>> {
        detail::check_remote_chunk_callable<F, Arg>();
        using R = detail::chunk_result_t<F, Arg>;
        using V = std::vector<detail::outcome<R>>;
        auto* state = new detail::shared_state<V>();
        future<V> result(state);
        detail::trace::on_submit(*state, f);
        auto task = std::make_unique<detail::process_task>();
        task->state = state;
        task->complete = &detail::complete_chunk<R>;
        task->count = chunk.size();
        task->stoppable = detail::element_takes_stop_token_v<std::decay_t<F>&, Arg>;
        detail::name_task(*task, f);
        if constexpr (detail::is_remote_chunk_callable_v<std::decay_t<F>, Arg>) {
            detail::byte_writer w(task->message, &task->fds);
            w.put_u64(
                detail::trampoline_address<&detail::remote_invoke_chunk<std::decay_t<F>, Arg>>());
            detail::encode_chunk(w, f, chunk);
        }
        m_core.submit(std::move(task));
        return result;
    }

    detail::process_pool_core m_core;
};

namespace detail {

/// map's hook into process_pool: chunks travel as one message each.
template <>
struct map_chunk_hook<process_pool> {
    template <class F, class Arg>
    static auto submit(process_pool& pool, const F& f, std::vector<Arg> chunk) {
        return pool.submit_chunk(f, std::move(chunk));
    }
};

}  // namespace detail

}  // namespace coexec
