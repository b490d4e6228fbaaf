#include "sandbox/sandbox.hpp"

#include <string>
#include <system_error>
#include <vector>

#include "coexec/errors.hpp"
#include "sandbox/limits.hpp"
#include "sandbox/seccomp_filter.hpp"

namespace coexec::detail::sandboxing {

void check_options(const process_pool_options& options) {
    if (options.sandbox == coexec::sandbox::compute) check_compute_supported();
    (void)resolve_syscalls(options.sandbox_allow);
}

void encode_worker_config(byte_writer& w, const process_pool_options& options) {
    w.put_u64(options.limits.memory);
    w.put_u64(options.limits.cpu_time.count() > 0
                  ? static_cast<std::uint64_t>(options.limits.cpu_time.count())
                  : 0);
    w.put_u64(options.limits.open_files);
    w.put(options.sandbox == coexec::sandbox::compute ? 1 : 0);
    const std::vector<int> extra = resolve_syscalls(options.sandbox_allow);
    w.put_u64(extra.size());
    for (int nr : extra)
        w.put_u64(static_cast<std::uint64_t>(static_cast<std::int64_t>(nr)));
}

void enter(byte_reader& config) {
    // A config without this part (a test driving the channel by hand) asks
    // for neither limits nor sandbox.
    if (config.at_end()) return;
    limit_values limits;
    limits.memory = config.get_u64();
    limits.cpu_seconds = config.get_u64();
    limits.open_files = config.get_u64();
    const bool compute = config.get() == 1;
    const std::uint64_t n = config.get_u64();
    if (n > 4096) throw serialization_error("coexec: malformed worker configuration");
    std::vector<int> extra;
    extra.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i)
        extra.push_back(static_cast<int>(static_cast<std::int64_t>(config.get_u64())));
    try {
        // Limits first: the filter refuses setrlimit.
        apply_limits(limits);
        if (compute) install_compute_filter(extra);
    } catch (const std::system_error& e) {
        // Reported as the worker's failed start: say it was not the initializer.
        throw std::system_error(e.code(), std::string("process_pool worker set-up (limits and "
                                                      "sandbox, after the initializer): ") +
                                              e.what());
    }
}

bool should_retire() noexcept {
    return cpu_budget_spent();
}

}  // namespace coexec::detail::sandboxing
