// lib/core/spin.cpp — the machine-dependent part of detail/spin.hpp.
#include "coexec/detail/spin.hpp"

#include "util/cpus.hpp"

namespace coexec::detail {

bool crowded() noexcept {
    static const bool value = usable_cpus() < 4;
    return value;
}

}  // namespace coexec::detail
