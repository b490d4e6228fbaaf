// sandbox::compute: what a sandboxed task is refused (each with EPERM, seen by
// the task's own error handling), on the fork-server and spawn start methods.
// Each task returns the errno of its attempt (0: it succeeded), so a missing
// sandbox fails the test instead of harming the machine; the operations are
// chosen to be harmless where they do succeed (kill with signal 0, a mount
// on a path that does not exist, an exec of /bin/true). What a sandboxed task
// may still do is test_sandbox_allowed.cpp; escaping is test_sandbox_escape.cpp.
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "coexec/process_pool.hpp"

extern char** environ;

using namespace std::chrono_literals;
using coexec::process_pool;
using coexec::start_method;

namespace {

coexec::process_pool_options sandboxed(start_method how) {
    return {.max_workers = 1, .start = how, .sandbox = coexec::sandbox::compute};
}

// errno of a -1/-errno style result, 0 on success (then `cleanup` runs).
template <class Cleanup>
int outcome(long r, Cleanup cleanup) {
    if (r < 0) return errno;
    cleanup(r);
    return 0;
}
int outcome(long r) {
    return outcome(r, [](long) {});
}
void close_it(long fd) {
    ::close(static_cast<int>(fd));
}

int open_hostname() {
    return outcome(::open("/etc/hostname", O_RDONLY), close_it);
}
int openat_hostname() {
    return outcome(::openat(AT_FDCWD, "/etc/hostname", O_RDONLY), close_it);
}
int create_file() {
    return outcome(::creat("/tmp/coexec-sandbox-test-must-not-exist", 0600), [](long fd) {
        ::close(static_cast<int>(fd));
        ::unlink("/tmp/coexec-sandbox-test-must-not-exist");
    });
}
int stat_hostname() {
    // The sandbox answers stat in a signal handler: a stale errno must not leak into it.
    errno = EADDRINUSE;
    struct stat st {};
    return outcome(::stat("/etc/hostname", &st));
}

int make_socket(int domain, int type) {
    return outcome(::socket(domain, type, 0), close_it);
}
int make_socketpair() {
    int sv[2];
    return outcome(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), [&](long) {
        ::close(sv[0]);
        ::close(sv[1]);
    });
}

int do_fork() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    return outcome(pid, [](long p) { ::waitpid(static_cast<pid_t>(p), nullptr, 0); });
}
int do_vfork_like_spawn() {
    pid_t pid = -1;
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    const int rc = ::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ);
    if (rc != 0) return rc;
    ::waitpid(pid, nullptr, 0);
    return 0;
}
int do_execve() {
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    ::execve("/bin/true", argv, environ);  // returns only if refused
    return errno;
}
int do_raw_clone_without_thread_flags() {
    const long pid = ::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0);
    if (pid == 0) ::_exit(0);
    return outcome(pid, [](long p) { ::waitpid(static_cast<pid_t>(p), nullptr, 0); });
}
int do_clone3() {
    // clone3 cannot be filtered by flags: it answers ENOSYS (glibc falls back to clone).
    return outcome(::syscall(SYS_clone3, nullptr, 0));
}

int ptrace_parent() {
    const pid_t parent = ::getppid();
    return outcome(::ptrace(PTRACE_ATTACH, parent, nullptr, nullptr),
                   [&](long) { ::ptrace(PTRACE_DETACH, parent, nullptr, nullptr); });
}
int ptrace_traceme() {
    return outcome(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
}
int read_parent_memory(std::uint64_t address) {
    char buf[8];
    iovec local{buf, sizeof buf};
    iovec remote{reinterpret_cast<void*>(address), sizeof buf};
    return outcome(::process_vm_readv(::getppid(), &local, 1, &remote, 1, 0));
}

int signal_parent() {
    return outcome(::kill(::getppid(), 0));  // signal 0: a permission check, nothing sent
}
int signal_everyone() {
    return outcome(::kill(-1, 0));
}
int signal_group() {
    return outcome(::kill(0, 0));
}
int tgkill_parent() {
    return outcome(::syscall(SYS_tgkill, ::getppid(), ::getppid(), 0));
}

int pin_parent() {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    const pid_t parent = ::getppid();
    if (::sched_getaffinity(parent, sizeof cpus, &cpus) != 0) return -1;  // reading: allowed
    errno = EADDRINUSE;  // answered in a signal handler: see stat_hostname
    return outcome(::sched_setaffinity(parent, sizeof cpus, &cpus));
}

int mount_tmpfs() {
    return outcome(::mount("none", "/coexec-sandbox-test-no-such-dir", "tmpfs", 0, nullptr));
}
int load_module() {
    return outcome(::syscall(SYS_init_module, nullptr, 0, ""));
}
int load_module_fd() {
    return outcome(::syscall(SYS_finit_module, -1, "", 0));
}
int make_bpf_map() {
    bpf_attr attr{};
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return outcome(::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr), close_it);
}
int open_perf_event() {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    return outcome(::syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0), close_it);
}
int setup_io_uring() {
    // io_uring would run open/connect without system calls the filter sees.
    char params[120] = {};
    return outcome(::syscall(SYS_io_uring_setup, 4, params), close_it);
}

int map_executable() {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return errno;
    ::munmap(p, 4096);
    return 0;
}
int make_executable() {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    const int r = outcome(::mprotect(p, 4096, PROT_READ | PROT_EXEC));
    ::munmap(p, 4096);
    return r;
}

int parent_marker = 42;  // an address the process_vm_readv test aims at

}  // namespace

TEST_CASE("a sandboxed task cannot open, create or stat a file: EPERM", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
    CHECK(pool.submit(openat_hostname).get_for(30s) == EPERM);
    CHECK(pool.submit(create_file).get_for(30s) == EPERM);
    CHECK(pool.submit(stat_hostname).get_for(30s) == EPERM);
}

TEST_CASE("without the sandbox the same task opens /etc/hostname", "[sandbox]") {
    // The control of the case above: its EPERM comes from the sandbox.
    if (::access("/etc/hostname", R_OK) != 0) {
        WARN("skipped: no readable /etc/hostname here");
        return;
    }
    process_pool pool{{.max_workers = 1}};
    CHECK(pool.submit(open_hostname).get_for(30s) == 0);
    CHECK(pool.submit(stat_hostname).get_for(30s) == 0);
}

TEST_CASE("a sandboxed task cannot create a socket: EPERM", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(make_socket, AF_INET, int{SOCK_STREAM}).get_for(30s) == EPERM);
    CHECK(pool.submit(make_socket, AF_INET6, int{SOCK_DGRAM}).get_for(30s) == EPERM);
    CHECK(pool.submit(make_socket, AF_UNIX, int{SOCK_STREAM}).get_for(30s) == EPERM);
    CHECK(pool.submit(make_socket, AF_NETLINK, int{SOCK_RAW}).get_for(30s) == EPERM);
    CHECK(pool.submit(make_socketpair).get_for(30s) == EPERM);
}

TEST_CASE("a sandboxed task cannot fork, spawn or execute a program: EPERM", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(do_fork).get_for(30s) == EPERM);
    CHECK(pool.submit(do_vfork_like_spawn).get_for(30s) == EPERM);
    CHECK(pool.submit(do_execve).get_for(30s) == EPERM);
    CHECK(pool.submit(do_raw_clone_without_thread_flags).get_for(30s) == EPERM);
    CHECK(pool.submit(do_clone3).get_for(30s) == ENOSYS);
    // The worker is still the same, sandboxed, process.
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
}

TEST_CASE("a sandboxed task cannot trace or read another process: EPERM", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(ptrace_parent).get_for(30s) == EPERM);
    CHECK(pool.submit(ptrace_traceme).get_for(30s) == EPERM);
    const auto address = reinterpret_cast<std::uint64_t>(&parent_marker);
    CHECK(pool.submit(read_parent_memory, address).get_for(30s) == EPERM);
}

TEST_CASE("a sandboxed task cannot signal another process or change its affinity: EPERM",
          "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(signal_parent).get_for(30s) == EPERM);
    CHECK(pool.submit(signal_everyone).get_for(30s) == EPERM);
    CHECK(pool.submit(signal_group).get_for(30s) == EPERM);
    CHECK(pool.submit(tgkill_parent).get_for(30s) == EPERM);
    CHECK(pool.submit(pin_parent).get_for(30s) == EPERM);
}

TEST_CASE("a sandboxed task cannot mount, load modules, use bpf, perf or io_uring: EPERM",
          "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(mount_tmpfs).get_for(30s) == EPERM);
    CHECK(pool.submit(load_module).get_for(30s) == EPERM);
    CHECK(pool.submit(load_module_fd).get_for(30s) == EPERM);
    CHECK(pool.submit(make_bpf_map).get_for(30s) == EPERM);
    CHECK(pool.submit(open_perf_event).get_for(30s) == EPERM);
    CHECK(pool.submit(setup_io_uring).get_for(30s) == EPERM);
}

TEST_CASE("a sandboxed task cannot map or make memory executable: EPERM", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(map_executable).get_for(30s) == EPERM);
    CHECK(pool.submit(make_executable).get_for(30s) == EPERM);
}

TEST_CASE("the sandbox applies to the fork start method too", "[sandbox]") {
    process_pool pool{sandboxed(start_method::fork)};
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
    CHECK(pool.submit(make_socket, AF_INET, int{SOCK_STREAM}).get_for(30s) == EPERM);
    CHECK(pool.submit(do_fork).get_for(30s) == EPERM);
}
