// tests/process/adversarial/adversary.hpp — what the adversarial tests share:
// tools a task uses to attack its own worker's channel from the inside (the
// mapping, a second view of the channel to publish forged records), and the
// check every attack ends with (the parent lives, the bad future ends within
// a bound, another task in flight is unaffected, the pool serves, shutdown
// returns).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "coexec/process_pool.hpp"
#include "helpers.hpp"
#include "process/channel.hpp"
#include "process/launch.hpp"

namespace adversary {

using namespace std::chrono_literals;
namespace proc = coexec::detail::proc;

/// This worker's channel mapping (found by the memfd's name in /proc/self/maps).
inline std::span<std::byte> channel_mapping() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find("memfd:coexec-channel") == std::string::npos) continue;
        unsigned long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2) break;
        return {reinterpret_cast<std::byte*>(lo), hi - lo};
    }
    throw std::runtime_error("no channel mapping in this process");
}

/// Fills `bytes` with pseudo-random bytes (never all zero for long).
inline void fill_random(std::span<std::byte> bytes, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < bytes.size(); i += 8) {
        const std::uint64_t v = rng();
        std::memcpy(bytes.data() + i, &v, std::min<std::size_t>(8, bytes.size() - i));
    }
}

/// The worker's own channel descriptors, borrowed (not closed).
struct worker_fds {
    int memfd, wake, socket;
};
inline worker_fds own_fds() {
    proc::channel_fds f = proc::fixed_channel_fds();
    return {f.memfd.release(), f.wake.release(), f.socket.release()};
}

/// A second worker-side view of this worker's channel: what a task that
/// knows the protocol can forge with.
inline proc::channel own_channel() {
    const worker_fds f = own_fds();
    proc::channel_fds d;
    d.memfd.reset(::fcntl(f.memfd, F_DUPFD_CLOEXEC, 10));
    d.wake.reset(::fcntl(f.wake, F_DUPFD_CLOEXEC, 10));
    d.socket.reset(::fcntl(f.socket, F_DUPFD_CLOEXEC, 10));
    return proc::channel::attach(std::move(d));
}

/// The bytes of a result that is one shared_buffer (status 0, present,
/// descriptor 0, `size` bytes), to forge with any descriptor.
inline std::vector<std::byte> shared_buffer_result(std::uint64_t size) {
    std::vector<std::byte> out;
    coexec::detail::byte_writer w(out);
    w.put(0);
    w.put(1);
    w.put_u64(0);
    w.put_u64(size);
    return out;
}

/// A memfd of `size` bytes with `seals` added.
inline int memfd_with(std::size_t size, int seals) {
    const int fd = ::memfd_create("adversary", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) throw std::runtime_error("memfd");
    if (seals != 0 && ::fcntl(fd, F_ADD_SEALS, seals) != 0) throw std::runtime_error("seals");
    return fd;
}

/// Waits for the pool to kill this worker (an attack's last step); longer
/// than end_of's bound, so a pool that does not react fails the test.
[[noreturn]] inline void wait_to_be_killed() {
    std::this_thread::sleep_for(60s);
    std::_Exit(0);
}

inline int square(int x) {
    return x * x;
}
inline int sleep_then(int ms, int value) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return value;
}

/// How the attacked task's future ended.
struct ending {
    bool value = false;
    long long number = 0;  // the value, for an integral T
    std::string what;      // the error's what(), if it failed
    bool worker_died = false;
};

template <class T>
ending end_of(coexec::future<T>& f) {
    INFO("the attacked task's future must end within 30 s");
    REQUIRE(f.wait_for(30s));
    ending e;
    try {
        if constexpr (std::is_integral_v<T>) {
            e.number = static_cast<long long>(f.get());
        } else {
            f.get();
        }
        e.value = true;
    } catch (const coexec::worker_died& x) {
        e.worker_died = true;
        e.what = x.what();
    } catch (const std::exception& x) {
        e.what = x.what();
    }
    return e;
}

/// Runs one attack in a two-worker pool whose other worker is idle or busy
/// with a task that must come back right, then checks that the pool serves
/// and shuts down. `attack(pool)` submits the bad task and returns its future.
template <class Attack>
ending against_pool(bool other_busy, Attack attack,
                    coexec::start_method method = coexec::start_method::fork_server) {
    coexec::process_pool pool{{.max_workers = 2, .start = method}};
    REQUIRE(pool.submit(square, 3).get_for(30s) == 9);
    // The second worker starts in the background: the attack runs beside it.
    REQUIRE(coexec_test::eventually([&] { return pool.stats().workers_alive == 2; }, 30s));
    std::optional<coexec::future<int>> other;
    if (other_busy) other = pool.submit(sleep_then, 400, 77);
    auto bad = attack(pool);
    const ending e = end_of(bad);
    if (other) {
        INFO("the task on the other worker is unaffected");
        REQUIRE(other->get_for(30s) == 77);
    }
    for (int i = 0; i < 6; ++i)
        REQUIRE(pool.submit(square, i).get_for(30s) == i * i);
    pool.shutdown();  // returns (a hang fails the test by its CTest timeout)
    return e;
}

/// The check of an attack that is a protocol violation.
inline void require_violation(const ending& e) {
    INFO("ended with: " << (e.value ? "a value" : e.what));
    REQUIRE(e.worker_died);
    REQUIRE(e.what.find("protocol violation") != std::string::npos);
}

}  // namespace adversary
