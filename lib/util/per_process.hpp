// lib/util/per_process.hpp — one object of a type per process, for the
// library's own service threads (the timer thread, the deadline threads).
//
// A forked child has none of its parent's threads, so an object that owns
// one is no use there: the child makes its own on first use. Never
// destroyed: its thread may still run (detached, or a callback) while the
// program exits, and a destructor joining it could hang the exit.
#pragma once

#include <unistd.h>

#include <mutex>

namespace coexec::detail {

/// This process's T, made (default-constructed) on first use. Thread-safe;
/// throws what T's constructor or `new` throws.
template <class T>
T& per_process() {
    static std::mutex mutex;
    static T* current = nullptr;
    static pid_t owner = 0;
    std::lock_guard lock(mutex);
    const pid_t pid = ::getpid();
    if (current == nullptr || owner != pid) {
        current = new T();  // the parent's, in a child, is left as it is
        owner = pid;
    }
    return *current;
}

}  // namespace coexec::detail
