// lib/process/task_name.cpp — see task_name.hpp.
#include "process/task_name.hpp"

#include "trace/names.hpp"
#include "util/demangle.hpp"

namespace coexec::detail {

std::string task_name(const process_task& t) {
    std::string name;
    try {
        if (t.function != nullptr) {
            name = trace::function_name(t.function);
        } else if (t.callable_type != nullptr) {
            name = demangle(t.callable_type);
        }
    } catch (...) {
        name.clear();  // no memory for a name: the generic one below
    }
    if (name.empty()) return unnamed_task;
    if (t.count != 0) return name + " (a map chunk of " + std::to_string(t.count) + " elements)";
    return name;
}

}  // namespace coexec::detail
