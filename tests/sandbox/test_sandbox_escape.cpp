// A sandboxed task cannot undo its sandbox or its limits: a second seccomp
// filter, prctl changes that would loosen it, raising rlimits (which root
// could otherwise do) all fail with EPERM, and afterwards the sandbox is still
// there. On the fork-server and spawn start methods.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <vector>

#include "coexec/process_pool.hpp"

using namespace std::chrono_literals;
using coexec::process_pool;
using coexec::start_method;

namespace {

constexpr std::size_t open_files = 16;

coexec::process_pool_options sandboxed(start_method how) {
    return {.max_workers = 1,
            .start = how,
            .limits = {.open_files = open_files},
            .sandbox = coexec::sandbox::compute};
}

int result_of(long r) {
    return r < 0 ? errno : 0;
}

int open_hostname() {
    const int fd = ::open("/etc/hostname", O_RDONLY);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
}

// An allow-everything filter: installing it would not loosen the first one
// (filters stack, the strictest answer wins), but the call must not be
// available at all.
int install_allow_all_filter(int how) {
    sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog prog{1, allow_all};
    if (how == 0) return result_of(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
    return result_of(::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0));
}

int enter_strict_mode() {
    return result_of(::syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, nullptr));
}

int make_dumpable() {
    return result_of(::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
}

int drop_parent_death_signal() {
    return result_of(::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0));
}

int clear_no_new_privs_then_check() {
    // No such operation exists; the flag must still read 1.
    (void)::prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0);
    return ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
}

int seccomp_mode() {
    return ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
}

int raise_nofile(int how) {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;  // reading is allowed
    rlimit more{r.rlim_max * 4, r.rlim_max * 4};
    if (how == 0) return result_of(::setrlimit(RLIMIT_NOFILE, &more));
    return result_of(::prlimit(0, RLIMIT_NOFILE, &more, nullptr));
}

int lower_cpu_limit() {
    // Even tightening is refused: no rlimit call changes anything.
    rlimit r{1, 1};
    return result_of(::setrlimit(RLIMIT_CPU, &r));
}

long current_nofile() {
    rlimit r{};
    return ::getrlimit(RLIMIT_NOFILE, &r) == 0 ? static_cast<long>(r.rlim_cur) : -1;
}

int ignore_sigsys() {
    // SIGSYS's handler turns fstat into a safe call; replacing it is refused.
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    return result_of(::sigaction(SIGSYS, &sa, nullptr));
}

int foreign_abi_call() {
#if defined(__x86_64__)
    // An x32-ABI openat (bit 30 set): another architecture's numbers are refused.
    return result_of(::syscall(0x40000000 | SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY));
#else
    return EPERM;
#endif
}

}  // namespace

TEST_CASE("a sandboxed task cannot install another seccomp filter", "[sandbox][escape]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(install_allow_all_filter, 0).get_for(30s) == EPERM);
    CHECK(pool.submit(install_allow_all_filter, 1).get_for(30s) == EPERM);
    CHECK(pool.submit(enter_strict_mode).get_for(30s) == EPERM);
    CHECK(pool.submit(seccomp_mode).get_for(30s) == SECCOMP_MODE_FILTER);
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
}

TEST_CASE("a sandboxed task cannot loosen its process with prctl", "[sandbox][escape]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(make_dumpable).get_for(30s) == EPERM);
    CHECK(pool.submit(drop_parent_death_signal).get_for(30s) == EPERM);
    CHECK(pool.submit(clear_no_new_privs_then_check).get_for(30s) == 1);
    CHECK(pool.submit(ignore_sigsys).get_for(30s) == EPERM);
    CHECK(pool.submit(foreign_abi_call).get_for(30s) == EPERM);
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
}

TEST_CASE("a sandboxed task cannot raise or change its rlimits", "[sandbox][escape][limits]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    const long before = pool.submit(current_nofile).get_for(30s);
    CHECK(before > static_cast<long>(open_files));  // its own descriptors + open_files
    CHECK(pool.submit(raise_nofile, 0).get_for(30s) == EPERM);
    CHECK(pool.submit(raise_nofile, 1).get_for(30s) == EPERM);
    CHECK(pool.submit(lower_cpu_limit).get_for(30s) == EPERM);
    CHECK(pool.submit(current_nofile).get_for(30s) == before);
}

TEST_CASE("without the sandbox a task may change its own rlimits", "[sandbox][escape][limits]") {
    // The control of the case above (as root, even raising the hard limit
    // works: limits alone do not confine a hostile task, the sandbox does).
    process_pool pool{{.max_workers = 1, .limits = {.open_files = open_files}}};
    CHECK(pool.submit(lower_cpu_limit).get_for(30s) == 0);
}
