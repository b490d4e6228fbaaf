#include "coexec/errors.hpp"

#include <csignal>
#include <cstring>
#include <string>

#include "util/signal_name.hpp"

namespace coexec {
namespace {

using detail::signal_name;

std::string describe_death(int pid, int sig, int exit_code, const std::string& task,
                           const std::string& cause) {
    std::string msg = "process worker " + std::to_string(pid);
    if (sig != 0) {
        msg += " was killed by " + signal_name(sig) + " (" + ::strsignal(sig) + ")";
    } else {
        msg += " exited with status " + std::to_string(exit_code);
    }
    if (!task.empty()) msg += " while running " + task;
    if (!cause.empty()) {
        msg += "; " + cause;
    } else if (sig == SIGKILL) {
        msg +=
            "; SIGKILL from outside the pool is often the kernel's out-of-memory killer "
            "(check dmesg, or lower the task's memory use)";
    } else if (sig == SIGSEGV || sig == SIGBUS) {
        msg += "; the task accessed invalid memory";
    } else if (sig == SIGABRT) {
        msg += "; the task called abort() (a failed assert or std::terminate)";
    }
    return msg;
}

}  // namespace

cancelled_error::cancelled_error() : error("the future was cancelled before it produced a value") {}

worker_died::worker_died(int pid, int sig, int exit_code, std::string task_description,
                         std::string cause)
    : error(describe_death(pid, sig, exit_code, task_description, cause)),
      m_pid(pid),
      m_signal(sig),
      m_exit_code(exit_code),
      m_task(std::move(task_description)),
      m_cause(std::move(cause)) {}

namespace detail {
void throw_no_state(const char* member) {
    throw no_state(std::string("coexec::") + member +
                   ": no shared state (the object was default-constructed or moved from); "
                   "check valid() first");
}
}  // namespace detail

remote_error::remote_error(std::string type_name, const std::string& what)
    : error("a task in a worker process threw " + type_name + ": " + what),
      m_type_name(std::move(type_name)),
      m_original_what(what) {}

}  // namespace coexec
