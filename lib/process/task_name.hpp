// lib/process/task_name.hpp — what worker_died::task() says about a task.
#pragma once

#include <string>

#include "coexec/detail/process_task.hpp"

namespace coexec::detail {

/// The task's function name, or its callable's type, plus "(a map chunk of N
/// elements)" for a chunk; "a process_pool task" when neither is known.
/// Looked up only when a worker died holding the task (dladdr, or the
/// program's symbol table: not worth doing at every submit). A process
/// pool's supervisor and mpi_pool's rank 0 (for a death on another rank,
/// which knows only its local copy of the task) both name tasks so.
std::string task_name(const process_task& t);

/// What task_name() gives a task it knows nothing about.
inline constexpr const char* unnamed_task = "a process_pool task";

}  // namespace coexec::detail
