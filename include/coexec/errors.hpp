// coexec/errors.hpp — the typed error hierarchy.
//
// Every error coexec raises for misuse or for the fate of a task derives from
// coexec::error (itself std::runtime_error), so one `catch (const coexec::error&)`
// sees them all. OS failures are reported separately, as std::system_error
// carrying the name of the failing call.
#pragma once

#include <stdexcept>
#include <string>

namespace coexec {

/// Base of every coexec error.
class error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// The future was cancelled before it produced a value.
class cancelled_error : public error {
  public:
    cancelled_error();
    using error::error;
};

/// A future (or promise) without a shared state was used: default-constructed
/// or moved-from (std::future_errc::no_state). Check future::valid() first.
class no_state : public error {
  public:
    using error::error;
};

/// A timed wait (`get_for`, `as_completed`, `map` with a timeout) ran out.
class timeout_error : public error {
  public:
    using error::error;
};

/// Work was submitted to an executor after `shutdown()`.
class executor_shutdown : public error {
  public:
    using error::error;
};

/// A process worker died (signal, exit, OOM kill) while running this task.
class worker_died : public error {
  public:
    /// `signal` is 0 when the worker exited with `exit_code`. `cause`, when
    /// the pool knows it (e.g. "it exceeded the pool's cpu_time limit ..."),
    /// ends what() instead of the generic hint about the signal.
    worker_died(int pid, int signal, int exit_code, std::string task_description = {},
                std::string cause = {});
    int pid() const noexcept { return m_pid; }
    int signal() const noexcept { return m_signal; }
    int exit_code() const noexcept { return m_exit_code; }
    /// The task it was running: the function's name (or the callable's
    /// type), e.g. "count_primes"; "a process_pool task" if unknown.
    const std::string& task() const noexcept { return m_task; }
    /// Why the worker died, when the pool knows (a limit); else empty.
    const std::string& cause() const noexcept { return m_cause; }

  private:
    int m_pid;
    int m_signal;
    int m_exit_code;
    std::string m_task;
    std::string m_cause;
};

/// The pool is broken (a worker died under `worker_death::break_pool`):
/// every pending future fails with this.
class broken_pool : public error {
  public:
    using error::error;
};

/// A process task ran past its deadline; its worker was killed.
class deadline_exceeded : public error {
  public:
    using error::error;
};

/// An exception of a type coexec cannot re-create crossed a process boundary.
class remote_error : public error {
  public:
    remote_error(std::string type_name, const std::string& what);
    /// The (demangled) type name of the original exception.
    const std::string& type_name() const noexcept { return m_type_name; }
    /// The original exception's what(), without the prefix this what() adds.
    const std::string& original_what() const noexcept { return m_original_what; }

  private:
    std::string m_type_name;
    std::string m_original_what;
};

/// A value could not be encoded or decoded for a process boundary.
class serialization_error : public error {
  public:
    using error::error;
};

}  // namespace coexec
