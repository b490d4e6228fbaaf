// Adversarial tests, descriptors and sockets: a plain task function sends
// its parent descriptors of the wrong type, size or seals, floods it with
// descriptors, stops reading its socket or closes its wake-up socket. Each
// checks that the parent lives, the attacked future ends with an error
// within a bound, a task on the other worker comes back right, the pool
// serves new tasks and shuts down.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "adversary.hpp"
#include "coexec/shared_buffer.hpp"
#include "helpers.hpp"
#include "process_tree.hpp"
#include "util/fd_passing.hpp"

using namespace adversary;

namespace {

// A "shared_buffer" result whose descriptor is a pipe (0), a socket (1), a
// regular file (2), a memfd without seals (3) or one sealed only against
// shrinking (4).
int send_as_shared_buffer(int what) {
    proc::channel ch = own_channel();
    int fd = -1;
    int pair[2];
    switch (what) {
        case 0:
            if (::pipe2(pair, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
            fd = pair[0];
            break;
        case 1:
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
                throw std::runtime_error("socketpair");
            fd = pair[0];
            break;
        case 2:
            fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
            break;
        case 3:
            fd = memfd_with(4096, 0);
            break;
        default:
            fd = memfd_with(4096, F_SEAL_SHRINK);
            break;
    }
    struct stat st {};
    ::fstat(fd, &st);
    ch.send(proc::msg_kind::result, ch.running_id(),
            shared_buffer_result(static_cast<std::uint64_t>(st.st_size)), {&fd, 1});
    wait_to_be_killed();
}

// A spilled result whose memfd (sealed, 4 KiB) is smaller than its record says (1 MiB).
int send_short_spill() {
    proc::channel ch = own_channel();
    const int fd = memfd_with(4096, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    ch.publish_raw(static_cast<std::uint16_t>(proc::msg_kind::result), proc::record_flag::spilled,
                   1u << 20, 1, ch.running_id(), {}, {&fd, 1});
    wait_to_be_killed();
}

// A spilled result in a memfd that is not sealed against writes.
int send_unsealed_spill() {
    proc::channel ch = own_channel();
    const int fd = memfd_with(4096, F_SEAL_SHRINK | F_SEAL_GROW);
    ch.publish_raw(static_cast<std::uint16_t>(proc::msg_kind::result), proc::record_flag::spilled,
                   4096, 1, ch.running_id(), {}, {&fd, 1});
    wait_to_be_killed();
}

// Sends its parent 20 packets of 250 pipe ends each (5000 descriptors), then
// returns a shared_buffer, whose descriptor the parent finds behind that flood.
coexec::shared_buffer flood_descriptors() {
    const worker_fds own = own_fds();
    int pair[2];
    if (::pipe2(pair, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    const std::vector<int> fds(coexec::detail::max_fds_per_packet, pair[0]);
    const std::byte tag{'F'};
    for (int i = 0; i < 20; ++i) {
        if (coexec::detail::send_packet(own.socket, {&tag, 1}, fds, MSG_DONTWAIT) < 0) break;
    }
    return coexec::shared_buffer(64);
}

// Moves its descriptor socket aside (kept open, never read again) and feeds
// the worker loop a socket of its own, so later tasks run while the parent's
// descriptor packets pile up unread. Returns its pid.
int stop_reading_socket() {
    const worker_fds own = own_fds();
    const int kept = ::fcntl(own.socket, F_DUPFD_CLOEXEC, 100);
    int pair[2];
    if (kept < 0 || ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        throw std::runtime_error("socketpair");
    if (::dup2(pair[0], own.socket) < 0) throw std::runtime_error("dup2");
    const int feed = pair[1];
    std::thread([feed] {
        const int fake = memfd_with(16, F_SEAL_SHRINK | F_SEAL_GROW);
        for (;;)
            coexec::detail::send_fds(feed, {&fake, 1});
    }).detach();
    return static_cast<int>(::getpid());
}

std::size_t buffer_size(coexec::shared_buffer b) {
    return b.size();
}

// Closes its end of the wake-up socket, then works for a while.
int close_wake_socket() {
    ::close(own_fds().wake);
    std::this_thread::sleep_for(5s);
    return 1;
}

std::size_t count_buffers(std::vector<coexec::shared_buffer> v) {
    return v.size();
}
std::vector<coexec::shared_buffer> make_buffers(int n) {
    return std::vector<coexec::shared_buffer>(static_cast<std::size_t>(n),
                                              coexec::shared_buffer(8));
}

}  // namespace

TEST_CASE("a descriptor that is not a memfd, passed as a shared_buffer, is a protocol violation",
          "[process_pool][adversarial]") {
    for (int what : {0, 1, 2}) {
        INFO("descriptor kind " << what);
        require_violation(against_pool(true, [what](coexec::process_pool& p) {
            return p.submit(send_as_shared_buffer, what);
        }));
    }
}

TEST_CASE("an unsealed memfd passed off as a shared_buffer is a protocol violation",
          "[process_pool][adversarial]") {
    for (int what : {3, 4}) {
        INFO("seals case " << what);
        require_violation(against_pool(true, [what](coexec::process_pool& p) {
            return p.submit(send_as_shared_buffer, what);
        }));
    }
}

TEST_CASE("a spill memfd smaller than its record says is a protocol violation",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true})
        require_violation(
            against_pool(busy, [](coexec::process_pool& p) { return p.submit(send_short_spill); }));
}

TEST_CASE("a spill memfd that is not sealed against writes is a protocol violation",
          "[process_pool][adversarial]") {
    require_violation(
        against_pool(true, [](coexec::process_pool& p) { return p.submit(send_unsealed_spill); }));
}

TEST_CASE("a flood of descriptors neither blocks nor fills the parent",
          "[process_pool][adversarial]") {
    REQUIRE(coexec::process_pool::prepare());  // the fork server's socket is open from here on
    const std::size_t before = coexec_test::fd_count(::getpid());
    for (bool busy : {false, true})
        require_violation(against_pool(
            busy, [](coexec::process_pool& p) { return p.submit(flood_descriptors); }));
    // The flood never reached the parent's descriptor table.
    REQUIRE(coexec_test::fd_count(::getpid()) == before);
}

TEST_CASE("a worker that stops reading its socket is killed instead of blocking the parent",
          "[process_pool][adversarial]") {
    coexec::process_pool pool{{.max_workers = 2}};
    REQUIRE(pool.submit(square, 3).get_for(30s) == 9);
    auto other = pool.submit(sleep_then, 1500, 77);  // keeps the other worker busy
    auto attacker = pool.submit(stop_reading_socket);
    const int pid = attacker.get_for(30s);
    // Each of these sends the attacked worker a descriptor it never reads;
    // its socket fills, and the parent must not wait on it.
    coexec::shared_buffer b(4096);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (coexec_test::pid_alive(pid) && std::chrono::steady_clock::now() < deadline) {
        std::vector<coexec::future<std::size_t>> fs;
        for (int i = 0; i < 20; ++i)
            fs.push_back(pool.submit(buffer_size, b));
        for (auto& f : fs)
            REQUIRE(f.wait_for(30s));  // a value, or an error from the sabotaged worker
    }
    REQUIRE(coexec_test::eventually([&] { return !coexec_test::pid_alive(pid); }, 5s));
    REQUIRE(other.get_for(30s) == 77);
    REQUIRE(pool.submit(buffer_size, b).get_for(30s) == 4096);
    REQUIRE(pool.submit(square, 4).get_for(30s) == 16);
    pool.shutdown();
}

TEST_CASE("a worker that closes its wake-up socket is killed as a protocol violation",
          "[process_pool][adversarial]") {
    require_violation(
        against_pool(true, [](coexec::process_pool& p) { return p.submit(close_wake_socket); }));
}

TEST_CASE("at most 256 shared_buffers cross in one message, and more fail cleanly",
          "[process_pool][adversarial]") {
    coexec::process_pool pool{{.max_workers = 1}};
    std::vector<coexec::shared_buffer> many(256, coexec::shared_buffer(8));
    REQUIRE(pool.submit(count_buffers, many).get_for(30s) == 256);
    many.emplace_back(8);
    REQUIRE_THROWS_AS(pool.submit(count_buffers, many), coexec::serialization_error);
    REQUIRE(pool.submit(make_buffers, 256).get_for(30s).size() == 256);
    auto too_many = pool.submit(make_buffers, 257);
    REQUIRE(too_many.wait_for(30s));
    REQUIRE_THROWS_AS(too_many.get(), coexec::serialization_error);
    REQUIRE(pool.stats().respawns == 0);  // no worker died for it
}
