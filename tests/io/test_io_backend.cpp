// The coexec::io backend as a whole: which one runs (and the epoll fallback
// when seccomp refuses io_uring), io awaited where no thread_pool runs it,
// and io in flight when a pool shuts down. Runs on both backends (see
// tests/CMakeLists.txt).
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/errors.hpp"
#include "coexec/inline_executor.hpp"
#include "coexec/io.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"
#include "io_helpers.hpp"

using namespace std::chrono_literals;
using coexec::task;
using coexec::thread_pool;
using namespace coexec_test;
namespace io = coexec::io;

namespace {

std::string expected_backend() {
    const char* env = std::getenv("COEXEC_IO_BACKEND");
    if (env != nullptr && std::string(env) == "epoll") return "epoll";
    return std::string(io::backend_name());  // whatever the probe chose
}

}  // namespace

TEST_CASE("io::backend names the backend in use, epoll when forced by the environment", "[io]") {
    auto name = io::backend_name();
    CHECK((name == "io_uring" || name == "epoll"));
    CHECK(std::string(name) == expected_backend());
    CHECK(io::backend_name(io::backend()) == name);
}

TEST_CASE("awaiting io where no reactor runs the coroutine throws, it does not hang",
          "[io][misuse]") {
    auto says_thread_pool = [](auto&& f) {
        try {
            f();
        } catch (const coexec::error& e) {
            return std::string(e.what()).find("thread_pool") != std::string::npos;
        }
        return false;
    };
    // inline_executor on a plain thread (no sync_wait loop around it).
    coexec::inline_executor inl;
    auto f = inl.submit([]() -> task<void> { co_await io::sleep_for(1ms); });
    CHECK(says_thread_pool([&] { f.get(); }));
    // (sync_wait's loop runs io itself: tests/io/test_io_sync_wait.cpp.)
}

TEST_CASE("destroying a pool with io in flight cancels it, frees every frame and does not hang",
          "[io][shutdown]") {
    using namespace coexec_test;
    int before = lifetime_counter::alive.load();
    std::vector<coexec::future<void>> fs;
    std::atomic<int> waiting{0};
    std::atomic<bool> closed_after_cancel{false};
    listener l;
    int client = tcp_socket();
    sockaddr_in a = loopback(l.port);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    auto t0 = std::chrono::steady_clock::now();
    {
        thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 200; ++i) {
            fs.push_back(pool.submit([&]() -> task<void> {
                lifetime_counter guard(1);
                waiting.fetch_add(1);
                co_await io::sleep_for(1h);
            }));
        }
        fs.push_back(pool.submit([&]() -> task<void> {
            lifetime_counter guard(2);
            char buf[8];
            waiting.fetch_add(1);
            std::exception_ptr failure;
            try {
                co_await io::recv(client, buf);
            } catch (const std::system_error&) {
                failure = std::current_exception();
            }
            co_await io::close(client);  // cleanup io still runs after cancellation
            closed_after_cancel = true;
            if (failure) std::rethrow_exception(failure);
        }));
        REQUIRE(coexec_test::eventually([&] { return waiting.load() == 201; }));
        std::this_thread::sleep_for(20ms);
    }  // ~thread_pool: signals stop, waits
    CHECK(std::chrono::steady_clock::now() - t0 < 30s);
    int cancelled = 0;
    for (auto& f : fs)
        cancelled += error_of([&] { f.get_for(1s); }) == ECANCELED ? 1 : 0;
    CHECK(cancelled == 201);
    CHECK(lifetime_counter::alive.load() == before);
    CHECK(closed_after_cancel.load());
    CHECK(::fcntl(client, F_GETFD) == -1);  // really closed
}

TEST_CASE("shutdown(cancel_futures) cancels io in flight", "[io][shutdown]") {
    thread_pool pool{{.max_workers = 2}};
    std::atomic<bool> started{false};
    auto f = pool.submit([&]() -> task<void> {
        started = true;
        co_await io::sleep_for(1h);
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    pool.shutdown(false, true);
    CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
}

TEST_CASE("shutdown(cancel_futures) cancels many io ops of both kinds in flight on one ring",
          "[io][shutdown]") {
    // The reactor's close walks its in-flight list while cancels complete
    // ops (sleeps at once, receives through the ring or the epoll set).
    thread_pool pool{{.max_workers = 1}};
    constexpr int n = 64;
    std::vector<std::array<int, 2>> pairs(n);
    for (auto& p : pairs)
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, p.data()) == 0);
    std::atomic<int> waiting{0};
    std::vector<coexec::future<void>> fs;
    for (int i = 0; i < n; ++i) {
        const int fd = pairs[static_cast<std::size_t>(i)][0];
        fs.push_back(pool.submit([&waiting, fd, i]() -> task<void> {
            ++waiting;
            if (i % 2 == 0) {
                co_await io::sleep_for(1h);
            } else {
                char buf[8];
                co_await io::recv(fd, buf);  // nobody writes
            }
        }));
    }
    REQUIRE(coexec_test::eventually([&] { return waiting.load() == n; }));
    std::this_thread::sleep_for(20ms);
    pool.shutdown(false, true);
    for (auto& f : fs)
        CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
    for (auto& p : pairs) {
        ::close(p[0]);
        ::close(p[1]);
    }
}

TEST_CASE("plain shutdown cancels io of coroutines that only hopped onto the pool",
          "[io][shutdown]") {
    thread_pool pool{{.max_workers = 1}};
    std::atomic<int> error{-2};
    std::atomic<bool> started{false};
    std::thread t([&] {
        error = error_of([&] {
            coexec::sync_wait([&]() -> task<void> {
                co_await pool.schedule();
                started = true;
                co_await io::sleep_for(1h);
            }());
        });
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    pool.shutdown();  // waits; the sleeper is no job, so its sleep is cancelled
    t.join();
    CHECK(error.load() == ECANCELED);
}

namespace {
constexpr const char* seccomp_child_test = "io fallback child: epoll runs sleeps and reads";
}

TEST_CASE("io fallback child: epoll runs sleeps and reads", "[.io_seccomp_child]") {
    // Runs in a child whose seccomp filter refuses io_uring_setup (below).
    REQUIRE(io::backend() == io::backend_kind::epoll);
    {
        // Scoped: _Exit below runs no destructor, and the directory must go.
        temp_dir dir;
        thread_pool pool{{.max_workers = 2}};
        std::string path = dir.file("f");
        auto f = pool.submit([&]() -> task<std::string> {
            co_await io::sleep_for(10ms);
            int fd = co_await io::open(path, O_RDWR | O_CREAT, 0600);
            co_await io::write(fd, std::string("fallback"), 0);
            char buf[16];
            std::size_t n = co_await io::read(fd, buf, 0);
            co_await io::close(fd);
            co_return std::string(buf, n);
        });
        REQUIRE(f.get_for(30s) == "fallback");
    }
    std::_Exit(42);  // success, distinct from Catch's own exit codes
}

TEST_CASE("when seccomp refuses io_uring_setup the epoll backend is chosen by itself",
          "[io][fallback]") {
#if defined(__x86_64__)
    constexpr std::uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    constexpr std::uint32_t arch = AUDIT_ARCH_AARCH64;
#else
    constexpr std::uint32_t arch = 0;
    WARN("no seccomp architecture constant for this CPU: test skipped");
    return;
#endif
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(10);
        if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) ::_exit(11);
        // The choice is made once per process: a fresh image must make it,
        // on its own (no COEXEC_IO_BACKEND to help it).
        ::unsetenv("COEXEC_IO_BACKEND");
        ::execl("/proc/self/exe", "test_io_backend", seccomp_child_test,
                static_cast<char*>(nullptr));
        ::_exit(12);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("child exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status)));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 42);
}
