// lib/util/cpus.hpp — how many CPUs this process may run on.
//
// What "0 = the cores" means for process_pool's workers and for an MPI
// rank's slots: the CPUs of this process's affinity mask (a launcher such as
// mpirun, srun or taskset may have narrowed it), not the machine's count.
#pragma once

#include <sched.h>

#include <cstddef>
#include <thread>

namespace coexec::detail {

inline std::size_t usable_cpus() noexcept {
    cpu_set_t set;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    const unsigned n = std::thread::hardware_concurrency();
    return n != 0 ? n : 1;
}

}  // namespace coexec::detail
