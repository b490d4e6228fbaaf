// Bytes-level tests of the process_pool's OS layer: the shared-memory channel
// (rings, spill, descriptor passing, sleep/wake) and the fork server.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/detail/codec/remote_call.hpp"
#include "coexec/detail/codec/values.hpp"
#include "process/channel.hpp"
#include "process/fork_server.hpp"
#include "process/launch.hpp"
#include "util/fd_passing.hpp"

using namespace coexec::detail;
using namespace coexec::detail::proc;

namespace {

std::vector<std::byte> bytes_of(const std::string& s) {
    std::vector<std::byte> v(s.size());
    std::memcpy(v.data(), s.data(), s.size());
    return v;
}

std::string string_of(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Compares without Catch printing megabytes when it fails.
bool same(std::span<const std::byte> b, const std::string& s) {
    return b.size() == s.size() && std::memcmp(b.data(), s.data(), s.size()) == 0;
}

// Receives one message on `ch`, sleeping on its eventfd when the ring is empty.
bool receive_blocking(channel& ch, message& m, int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!ch.try_receive(m)) {
        if (!ch.prepare_sleep()) continue;
        pollfd p{ch.wake_fd(), POLLIN, 0};
        ::poll(&p, 1, 100);
        ch.end_sleep();
        if (std::chrono::steady_clock::now() > deadline) return false;
    }
    return true;
}

// A child that echoes every message back (same kind + 1, same id), appending
// the contents of any memfd it receives, and exits on msg_kind::exit.
[[noreturn]] void echo_child(channel_fds fds) {
    int code = 0;
    try {
        channel ch = channel::attach(std::move(fds));
        message m;
        for (;;) {
            if (!receive_blocking(ch, m, 10000)) ::_exit(2);
            if (m.kind == msg_kind::exit) break;
            std::string body = string_of(m.bytes);
            for (int fd : m.fds) {
                char buf[64] = {};
                ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
                body += "|fd:" + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            }
            auto out = bytes_of(body);
            ch.send(msg_kind::result, m.id, out);
            ch.release(m);
        }
    } catch (...) {
        code = 3;
    }
    ::_exit(code);
}

struct echo_fixture {
    channel ch;
    pid_t pid = -1;
    echo_fixture() {
        channel_fds w;
        ch = channel::create(64 * 1024, w);
        pid = ::fork();
        if (pid == 0) echo_child(std::move(w));
    }  // closes our copy of the worker's end
    int finish() {
        ch.send(msg_kind::exit, 0, {});
        int status = 0;
        ::waitpid(pid, &status, 0);
        return status;
    }
};

}  // namespace

TEST_CASE("a channel carries messages both ways, in order, across ring wrap-around",
          "[process][channel]") {
    echo_fixture f;
    message m;
    // ~3000 messages of varying size through a 64 KiB ring: wraps many times.
    for (std::uint64_t i = 1; i <= 3000; ++i) {
        std::string payload(static_cast<std::size_t>((i * 37) % 5000),
                            static_cast<char>('a' + i % 26));
        f.ch.send(msg_kind::task, i, bytes_of(payload));
        REQUIRE(receive_blocking(f.ch, m));
        REQUIRE(m.kind == msg_kind::result);
        REQUIRE(m.id == i);
        REQUIRE(string_of(m.bytes) == payload);
        f.ch.release(m);
    }
    int status = f.finish();
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("a message larger than the ring is spilled into a memfd and arrives intact",
          "[process][channel]") {
    echo_fixture f;
    std::string big(3 * 1024 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4096)
        big[i] = static_cast<char>('A' + (i / 4096) % 26);
    f.ch.send(msg_kind::task, 7, bytes_of(big));
    message m;
    REQUIRE(receive_blocking(f.ch, m));
    REQUIRE(m.id == 7);
    REQUIRE(m.bytes.size() == big.size());
    REQUIRE(string_of(m.bytes) == big);
    f.ch.release(m);
    REQUIRE(WEXITSTATUS(f.finish()) == 0);
}

TEST_CASE("large messages reuse the direction's arena, and spill while it is busy",
          "[process][channel]") {
    // Both ends in this process: the worker side is attached to the
    // descriptors create() hands out, so the order of events is ours to pick.
    channel_fds w;
    channel parent = channel::create(64 * 1024, w);
    channel worker = channel::attach(std::move(w));
    auto pattern = [](std::size_t size, char seed) {
        std::string s(size, seed);
        for (std::size_t i = 0; i < size; i += 4093)
            s[i] = static_cast<char>(seed + 1 + (i / 4093) % 7);
        return s;
    };
    message a;
    message b;
    // Grow, shrink (an arena 4x larger than needed is replaced), grow again.
    const std::size_t sizes[] = {3u << 20, 5u << 20, 1u << 20, 40u << 20, 300u << 10, 6u << 20};
    char seed = 'a';
    for (std::size_t size : sizes) {
        const std::string body = pattern(size, seed++);
        parent.send(msg_kind::task, size, bytes_of(body));
        REQUIRE(worker.try_receive(a));
        REQUIRE(a.in_arena);
        REQUIRE(a.id == size);
        REQUIRE(same(a.bytes, body));
        worker.release(a);
    }
    // While the worker still holds the arena's message, the next one spills.
    // (A receiver holds one message at a time: the next is read after release.)
    const std::string first = pattern(2u << 20, 'p');
    const std::string second = pattern(3u << 20, 'q');
    parent.send(msg_kind::task, 1, bytes_of(first));
    REQUIRE(worker.try_receive(a));
    parent.send(msg_kind::task, 2, bytes_of(second));
    CHECK(a.in_arena);
    CHECK(same(a.bytes, first));
    worker.release(a);
    REQUIRE(worker.try_receive(b));
    CHECK_FALSE(b.in_arena);
    CHECK(b.id == 2);
    CHECK(same(b.bytes, second));
    worker.release(b);
    // Released: the arena is used again, and the other direction has its own.
    const std::string third = pattern(2u << 20, 'r');
    parent.send(msg_kind::task, 3, bytes_of(third));
    REQUIRE(worker.try_receive(a));
    CHECK(a.in_arena);
    CHECK(same(a.bytes, third));
    worker.send(msg_kind::result, 3, a.bytes);  // straight from one arena into the other
    worker.release(a);
    REQUIRE(parent.try_receive(b));
    CHECK(b.in_arena);
    CHECK(same(b.bytes, third));
    parent.release(b);
}

TEST_CASE("descriptors sent with a message arrive with it", "[process][channel]") {
    echo_fixture f;
    int a = ::memfd_create("a", MFD_CLOEXEC);
    int b = ::memfd_create("b", MFD_CLOEXEC);
    REQUIRE(::write(a, "alpha", 5) == 5);
    REQUIRE(::write(b, "beta", 4) == 4);
    int fds[2] = {a, b};
    f.ch.send(msg_kind::task, 1, bytes_of("hdr"), fds);
    ::close(a);
    ::close(b);
    message m;
    REQUIRE(receive_blocking(f.ch, m));
    REQUIRE(string_of(m.bytes) == "hdr|fd:alpha|fd:beta");
    f.ch.release(m);
    REQUIRE(WEXITSTATUS(f.finish()) == 0);
}

TEST_CASE("a channel's memfd is sealed at its size, and so are its spills and arenas",
          "[process][channel]") {
    channel_fds w;
    channel parent = channel::create(64 * 1024, w);
    const int seals = ::fcntl(w.memfd.get(), F_GET_SEALS);
    CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
          (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    CHECK(::ftruncate(w.memfd.get(), 0) != 0);
    channel worker = channel::attach(std::move(w));
    // A one-off spill (the arena busy) and an arena: the receiver checks the
    // seals; both arrive.
    const std::string big(1u << 20, 's');
    worker.send(msg_kind::result, 1, bytes_of(big));  // into the worker's new arena
    message a;
    REQUIRE(parent.try_receive(a));
    CHECK(a.in_arena);
    worker.send(msg_kind::result, 2, bytes_of(big));  // arena busy: a sealed one-off spill
    parent.release(a);
    REQUIRE(parent.try_receive(a));
    CHECK_FALSE(a.in_arena);
    CHECK(same(a.bytes, big));
    parent.release(a);
}

TEST_CASE("a receiver refuses a record its peer's kind may not send, and stays refused",
          "[process][channel]") {
    channel_fds w;
    channel parent = channel::create(64 * 1024, w);
    channel worker = channel::attach(std::move(w));
    worker.send(msg_kind::task, 1, bytes_of("a worker does not send tasks"));
    message m;
    CHECK_THROWS_AS(parent.try_receive(m), protocol_violation);
    parent.release(m);
    CHECK(parent.poisoned());
    worker.send(msg_kind::result, 2, bytes_of("too late"));
    CHECK_FALSE(parent.readable());
    CHECK_FALSE(parent.try_receive(m));
    CHECK_THROWS_AS(parent.send(msg_kind::task, 3, bytes_of("x")), protocol_violation);
}

namespace {

std::size_t open_fd_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

struct socket_pair {
    unique_fd a, b;
    socket_pair() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        a.reset(sv[0]);
        b.reset(sv[1]);
    }
};

}  // namespace

TEST_CASE("descriptors cross in as many packets as they need, at most 250 a packet",
          "[process][fd_passing]") {
    socket_pair sp;
    const unique_fd file(::memfd_create("many", MFD_CLOEXEC));
    REQUIRE(file);
    std::vector<int> fds(600, file.get());  // the kernel dups each one
    const std::byte one{1};
    CHECK(send_packet(sp.a.get(), {&one, 1}, fds) == -1);
    CHECK(errno == EINVAL);

    send_fds(sp.a.get(), fds);
    std::vector<int> got;
    recv_fds(sp.b.get(), fds.size(), got, MSG_DONTWAIT);
    REQUIRE(got.size() == fds.size());
    struct stat want {};
    REQUIRE(::fstat(file.get(), &want) == 0);
    for (int fd : got) {
        struct stat st {};
        REQUIRE(::fstat(fd, &st) == 0);
        CHECK(st.st_ino == want.st_ino);
        CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        ::close(fd);
    }
}

TEST_CASE("a packet with more descriptors than the receiver has room for is refused and leaks none",
          "[process][fd_passing]") {
    socket_pair sp;
    const std::size_t before = open_fd_count();
    const int three[3] = {sp.a.get(), sp.a.get(), sp.a.get()};
    const std::byte one{1};
    REQUIRE(send_packet(sp.a.get(), {&one, 1}, three) == 1);

    std::byte got_byte{};
    int got[1] = {-1};
    std::size_t n = 99;
    CHECK(recv_packet(sp.b.get(), {&got_byte, 1}, got, n, MSG_DONTWAIT) == -1);
    CHECK(errno == EMSGSIZE);
    CHECK(n == 0);
    CHECK(open_fd_count() == before);
}

TEST_CASE("a message that brings more descriptors than its record announced is a protocol error",
          "[process][fd_passing]") {
    socket_pair sp;
    const std::size_t before = open_fd_count();
    const int three[3] = {sp.a.get(), sp.a.get(), sp.a.get()};
    send_fds(sp.a.get(), three);
    std::vector<int> got;
    try {
        recv_fds(sp.b.get(), 2, got, MSG_DONTWAIT);
        FAIL("recv_fds accepted 3 descriptors for 2");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::message_size);
    }
    CHECK(got.empty());
    CHECK(open_fd_count() == before);
}

TEST_CASE("a sleeping receiver is woken through the wake socket", "[process][channel]") {
    echo_fixture f;
    message m;
    for (int i = 0; i < 20; ++i) {
        // Long enough for the child to give up spinning and sleep.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        f.ch.send(msg_kind::task, static_cast<std::uint64_t>(i), bytes_of("ping"));
        REQUIRE(receive_blocking(f.ch, m, 2000));
        REQUIRE(string_of(m.bytes) == "ping");
        f.ch.release(m);
    }
    REQUIRE(WEXITSTATUS(f.finish()) == 0);
}

namespace {
int triple(int x) {
    return 3 * x;
}
}  // namespace

TEST_CASE("the fork server starts a worker that runs a task and reports its death",
          "[process][fork_server]") {
    fork_server* server = fork_server::ensure(true);
    REQUIRE(server != nullptr);
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    unique_fd report(sv[0]);
    const std::uint32_t pool = server->register_pool(sv[1]);
    ::close(sv[1]);

    channel_fds w;
    channel ch = channel::create(64 * 1024, w);
    launched l = server->fork_worker(pool, w);
    w = {};  // the worker has its end now
    REQUIRE(l.pid > 0);
    REQUIRE(!l.direct_child);

    // config: no initializer → ready
    std::vector<std::byte> cfg;
    byte_writer cw(cfg);
    cw.put_u64(0);
    ch.send(msg_kind::config, 0, cfg);
    message m;
    REQUIRE(receive_blocking(ch, m));
    REQUIRE(m.kind == msg_kind::ready);
    ch.release(m);

    // one task through the codec's trampoline
    std::vector<std::byte> task;
    byte_writer tw(task);
    using Fn = int (*)(int);
    tw.put_u64(encode_code_address(std::bit_cast<const void*>(&remote_invoke<Fn, int>)));
    encode_call(tw, &triple, 14);
    ch.send(msg_kind::task, 5, task);
    REQUIRE(receive_blocking(ch, m));
    REQUIRE(m.kind == msg_kind::result);
    REQUIRE(m.id == 5);
    byte_reader rr(m.bytes);
    REQUIRE(decode_result<int>(rr) == 42);
    ch.release(m);
    REQUIRE(ch.running_id() == 5);

    ch.send(msg_kind::exit, 0, {});
    pollfd p{l.pidfd.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);  // the pidfd says it is gone
    death_report rep{};
    pollfd q{report.get(), POLLIN, 0};
    REQUIRE(::poll(&q, 1, 5000) == 1);
    REQUIRE(::recv(report.get(), &rep, sizeof rep, 0) == sizeof rep);
    REQUIRE(rep.pid == l.pid);
    REQUIRE(WIFEXITED(rep.wait_status));
    REQUIRE(WEXITSTATUS(rep.wait_status) == 0);
    server->unregister_pool(pool);
}

TEST_CASE("a spawned worker (re-executed binary) runs the same trampolines", "[process][spawn]") {
    channel_fds w;
    channel ch = channel::create(64 * 1024, w);
    launched l = launch_direct(launch_method::spawn, w);
    w = {};  // the worker has its end now
    std::vector<std::byte> cfg;
    byte_writer cw(cfg);
    cw.put_u64(0);
    ch.send(msg_kind::config, 0, cfg);
    message m;
    REQUIRE(receive_blocking(ch, m));
    REQUIRE(m.kind == msg_kind::ready);
    ch.release(m);
    std::vector<std::byte> task;
    byte_writer tw(task);
    using Fn = int (*)(int);
    tw.put_u64(encode_code_address(std::bit_cast<const void*>(&remote_invoke<Fn, int>)));
    encode_call(tw, &triple, 5);
    ch.send(msg_kind::task, 9, task);
    REQUIRE(receive_blocking(ch, m));
    byte_reader rr(m.bytes);
    REQUIRE(decode_result<int>(rr) == 15);
    ch.release(m);
    ch = channel();  // closing the channel makes the worker exit
    siginfo_t info{};
    REQUIRE(::waitid(P_PIDFD, static_cast<id_t>(l.pidfd.get()), &info, WEXITED) == 0);
    REQUIRE(info.si_code == CLD_EXITED);
    REQUIRE(info.si_status == 0);
}

namespace {
// The parent of `pid`, from /proc/<pid>/stat (field 4).
int parent_of(int pid) {
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (f == nullptr) return -1;
    char buf[512] = {};
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    const char* close_paren = std::strrchr(buf, ')');  // the name may hold spaces
    if (n == 0 || close_paren == nullptr) return -1;
    char state = 0;
    int ppid = -1;
    return std::sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 ? ppid : -1;
}
}  // namespace

TEST_CASE("notices queued while the fork server does not read wait for room and get no reply",
          "[process][fork_server]") {
    fork_server* server = fork_server::ensure(true);
    REQUIRE(server != nullptr);
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    unique_fd mine(sv[0]), theirs(sv[1]);
    const std::uint32_t pool = server->register_pool(theirs.get());
    channel_fds w;
    channel ch = channel::create(64 * 1024, w);
    launched first = server->fork_worker(pool, w);
    w = {};
    const int fork_server_pid = parent_of(first.pid);
    REQUIRE(fork_server_pid > 0);
    pidfd_send_signal(first.pidfd.get(), SIGKILL);

    // Stopped, it reads nothing: 1500 registrations (each passing a
    // descriptor) fill its socket, and the sender waits for room. Its
    // descriptor limit lowered to 64, most of them arrive with their
    // descriptor cut off: none may be answered (a reply would answer the
    // next fork request in its place).
    rlimit old_limit{};
    REQUIRE(::prlimit(fork_server_pid, RLIMIT_NOFILE, nullptr, &old_limit) == 0);
    const rlimit low{64, old_limit.rlim_max};
    REQUIRE(::prlimit(fork_server_pid, RLIMIT_NOFILE, &low, nullptr) == 0);
    REQUIRE(::kill(fork_server_pid, SIGSTOP) == 0);
    std::vector<std::uint32_t> ids;
    std::thread sender([&] {
        for (int i = 0; i < 1500; ++i)
            ids.push_back(server->register_pool(theirs.get()));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(::kill(fork_server_pid, SIGCONT) == 0);
    sender.join();
    CHECK(ids.size() == 1500);
    CHECK(server->alive());
    for (std::uint32_t id : ids)
        server->unregister_pool(id);
    REQUIRE(::prlimit(fork_server_pid, RLIMIT_NOFILE, &old_limit, nullptr) == 0);

    // The next fork request gets its own reply: a worker of the fork server.
    channel_fds w2;
    channel ch2 = channel::create(64 * 1024, w2);
    launched second = server->fork_worker(pool, w2);
    w2 = {};
    REQUIRE(second.pid > 0);
    CHECK(second.pid != first.pid);
    CHECK(parent_of(second.pid) == fork_server_pid);
    pollfd p{second.pidfd.get(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // its pidfd names a live process: this worker
    pidfd_send_signal(second.pidfd.get(), SIGKILL);
    server->unregister_pool(pool);
}
