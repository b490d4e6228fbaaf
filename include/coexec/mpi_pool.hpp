// coexec/mpi_pool.hpp — the process pool's API over MPI ranks (target coexec::mpi).
//
// For work that outgrows one machine. The program is started with
// `mpirun -n N ./app` (or `srun`); rank 0 runs main's logic, the other ranks
// serve tasks until rank 0 is done:
//
//     int main(int argc, char** argv) {
//         coexec::mpi_environment mpi(argc, argv);
//         if (mpi.is_worker()) return mpi.serve();
//         coexec::mpi_pool pool{mpi};                 // then as a process_pool
//         auto n = pool.submit(count_primes, 0, 1'000'000).get();
//     }
//
// @par What can be sent
// As on process_pool: function pointers, captureless lambdas and serializable
// function objects; serializable arguments and results; exceptions arrive as
// the same standard type with the same what(). A function is named by its
// module's build-id and its offset in that module, never by address, so PIE,
// ASLR and functions in shared libraries work. shared_buffer cannot cross
// hosts: submitting one throws serialization_error.
//
// @par Isolation (mpi_pool_options::isolation)
// - process (default): each worker rank runs its tasks in a local
//   process_pool, forked from a fork server that mpi_environment makes before
//   MPI_Init. A task that crashes fails its future with worker_died, a task
//   past its deadline is killed (deadline_exceeded); the job carries on.
// - thread: tasks run on a thread pool inside the rank (less overhead; a
//   crash takes the rank down, and MPI then ends the whole job; a deadline
//   fails the future but cannot stop the task).
// A rank runs `slots_per_rank` tasks at once and holds one more, queued,
// ready to start (still cancellable). cancel() of a running task kills its
// worker under process isolation; under thread isolation the future is
// cancelled but the task runs to its end on its rank (its result is dropped).
//
// @par Tracing
// While rank 0's coexec::trace records, each worker rank is drawn in rank 0's
// file as a process "rank R (host)" with its tasks, their flows from submit,
// and worker deaths and respawns; the ranks write no file (docs/trace.md).
//
// @par Thread safety
// mpi_pool members may be called from any thread, like process_pool's; one
// progress thread of the pool makes every MPI call. mpi_environment's members
// are for the thread that made it.
//
// @par Shutdown
// As process_pool: shutdown(wait = true) lets accepted tasks finish;
// cancel_futures = true cancels the queued ones; terminate_workers() cancels
// everything and kills running tasks (thread isolation: waits for them).
// shutdown(cancel_futures = true) and the destructor also stop running tasks
// that take a std::stop_token, as cancel() does (process isolation: killed;
// thread isolation: the token is signalled); their futures end cancelled.
// Worker ranks keep serving until rank 0's mpi_environment is destroyed, so
// pools can be made one after another (one at a time per environment).
//
// @par Errors
// If a rank runs a different program or library, or its MPI does not grant
// MPI_THREAD_SERIALIZED, mpi_environment's constructor throws coexec::error
// on rank 0 (the message names the first difference) after finalising MPI,
// and serve() returns 1 at once on the other ranks: the job ends. A rank
// that dies (the rank itself, not a task under process isolation) ends the
// MPI job: MPI offers no way to carry on without it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "coexec/detail/mpi_pool_core.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/results.hpp"

namespace coexec {

/// Where a worker rank runs its tasks.
enum class mpi_isolation {
    process,  ///< in a local process_pool: a crash fails only its task
    thread,   ///< on a thread pool in the rank: faster; a crash ends the job
};

/// Options of an mpi_pool. The documented fields first (docs/api.md), then extras.
struct mpi_pool_options {
    /// Worker ranks used (ranks 1..max_workers); 0 = all of them.
    std::size_t max_workers = 0;
    /// Tasks a rank runs at once; 0 = the cores that rank may run on.
    std::size_t slots_per_rank = 0;
    mpi_isolation isolation = mpi_isolation::process;
    /// A task running longer fails with deadline_exceeded (process isolation:
    /// its worker is killed); 0 = no limit. submit_with overrides it per task.
    std::chrono::nanoseconds task_timeout{0};
    /// Runs once in every worker process (process isolation) or worker thread
    /// (thread isolation) before its first task. A plain function.
    void (*initializer)() = nullptr;
};

/// MPI for the program's lifetime: MPI_Init_thread when made, MPI_Finalize
/// when destroyed, and the start-up check that all ranks run the same code.
class mpi_environment {
  public:
    /// Makes the process pool's fork server (while the program is still
    /// single-threaded), initialises MPI (requesting MPI_THREAD_MULTIPLE) and
    /// checks every rank. Collective: every rank must make one. On rank 0,
    /// throws coexec::error if the ranks differ or MPI refuses the thread
    /// level (see Errors above). An MPI already initialised is adopted (and
    /// then not finalised).
    mpi_environment(int& argc, char**& argv);
    mpi_environment();
    /// Rank 0: releases the worker ranks (their serve() returns). Then
    /// MPI_Finalize. Destroy every mpi_pool first.
    ~mpi_environment();
    mpi_environment(const mpi_environment&) = delete;
    mpi_environment& operator=(const mpi_environment&) = delete;

    int rank() const noexcept;
    int size() const noexcept;
    /// True on ranks other than 0: they call serve() and return its result.
    bool is_worker() const noexcept { return rank() != 0; }
    /// On a worker rank: runs the tasks rank 0's pools send until rank 0's
    /// environment is destroyed. Returns the exit status for main: 0, or 1
    /// if the start-up check refused the job. Throws coexec::error on rank 0.
    int serve();

    struct impl;  ///< lib/mpi/environment.cpp
    impl& internals() noexcept { return *m_impl; }

  private:
    void start(int* argc, char*** argv);
    std::unique_ptr<impl> m_impl;
};

/// process_pool's API over the worker ranks. See the header comment.
class mpi_pool {
  public:
    /// Opens the pool on the worker ranks (they start their local pools).
    /// Throws coexec::error if there is no worker rank or another pool of
    /// `env` is open, std::system_error if a rank cannot start its workers.
    explicit mpi_pool(mpi_environment& env, mpi_pool_options options = {}) : m_core(env, options) {}
    /// shutdown(wait = true).
    ~mpi_pool() = default;
    mpi_pool(const mpi_pool&) = delete;
    mpi_pool& operator=(const mpi_pool&) = delete;

    /// Runs `f(args...)` on a worker rank. Encodes the call on this thread
    /// (throws serialization_error, also for a shared_buffer argument), then
    /// queues it. Throws executor_shutdown after shutdown().
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
        detail::name_task(*task, f);  // for worker_died::task(), if its worker dies
        if constexpr (detail::is_remote_callable_v<F, detail::wire_arg_t<Args>...>) {
            detail::encode_mpi_task<
                &detail::remote_invoke<std::decay_t<F>, detail::wire_arg_t<Args>...>>(
                *task, [&](detail::byte_writer& w) {
                    detail::encode_call(w, f, detail::to_wire_arg(args)...);
                });
        }
        m_core.submit(std::move(task));
        return result;
    }

    /// Python's map / imap / imap_unordered over the ranks: lazy, one message
    /// per chunk of inputs. See results<R>. The pool must outlive the results.
    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    /// Stops accepting work; see the header comment.
    void shutdown(bool wait = true, bool cancel_futures = false) {
        m_core.shutdown(wait, cancel_futures);
    }
    /// Cancels queued and running futures and kills running tasks; implies shutdown.
    void terminate_workers() { m_core.terminate_workers(); }

    /// Tasks that run at once: worker ranks used × slots per rank.
    std::size_t max_workers() const noexcept { return m_core.max_workers(); }
    /// A snapshot of the counters; `running` counts tasks sent to a rank (the
    /// one a rank holds ready too), `workers_alive` the slots on the ranks,
    /// `respawns` the ranks' process workers started to replace dead ones.
    executor_stats stats() const noexcept { return m_core.stats(); }

  private:
    friend struct detail::map_chunk_hook<mpi_pool>;

    /// map's machinery (through detail::map_chunk_hook): one chunk of inputs
    /// as one task, one message, as on process_pool (elements in the form the
    /// codec sends: detail::wire_element_t).
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
            detail::encode_mpi_task<&detail::remote_invoke_chunk<std::decay_t<F>, Arg>>(
                *task, [&](detail::byte_writer& w) { detail::encode_chunk(w, f, chunk); });
        }
        m_core.submit(std::move(task));
        return result;
    }

    detail::mpi_pool_core m_core;
};

namespace detail {

/// map's hook into mpi_pool: chunks travel as one message each.
template <>
struct map_chunk_hook<mpi_pool> {
    template <class F, class Arg>
    static auto submit(mpi_pool& pool, const F& f, std::vector<Arg> chunk) {
        return pool.submit_chunk(f, std::move(chunk));
    }
};

}  // namespace detail

}  // namespace coexec
