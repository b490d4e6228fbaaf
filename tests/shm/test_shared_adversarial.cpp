// Attacks on the shared primitives: users killed at any point, and processes
// that write anything over the shared memory they were given. Each scenario
// runs in a child process standing for "the parent", which must end normally.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <thread>

#include "coexec/process_mutex.hpp"
#include "coexec/shared_queue.hpp"
#include "coexec/shared_value.hpp"
#include "helpers.hpp"
#include "shm_attack.hpp"

using namespace std::chrono_literals;
using coexec_test::run_isolated;

namespace {

using header = coexec::detail::shm_queue_header;
constexpr std::size_t off_capacity = offsetof(header, capacity);
constexpr std::size_t off_slot_bytes = offsetof(header, slot_bytes);
constexpr std::size_t off_head = offsetof(header, head);
constexpr std::size_t off_tail = offsetof(header, tail);

}  // namespace

TEST_CASE("a consumer SIGKILLed while blocked in pop does not stop pushes from waking live ones",
          "[shared_memory][adversarial]") {
    auto r = run_isolated([] {
        coexec::shared_queue<int> q(4);
        for (int round = 0; round < 3; ++round) {
            const pid_t doomed = ::fork();
            if (doomed == 0) {
                (void)q.pop();
                ::_exit(0);
            }
            if (!coexec_test::wait_until_sleeping(doomed)) return 2;
            ::kill(doomed, SIGKILL);
            ::waitpid(doomed, nullptr, 0);
            const pid_t live = ::fork();
            if (live == 0) ::_exit(q.pop() == 100 + round ? 0 : 1);
            if (!coexec_test::wait_until_sleeping(live)) return 3;
            q.push(100 + round);  // must wake `live`
            int status = 0;
            ::waitpid(live, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 4;
        }
        return 0;
    });
    INFO(r.describe());
    CHECK(r.ok());
}

TEST_CASE("a zero capacity written into a queue's header does not make the parent divide by zero",
          "[shared_memory][adversarial]") {
    auto r = run_isolated([] {
        coexec::shared_queue<int> q(4);
        q.push(1);
        auto raw = coexec_test::raw_blocks_of(q).at(0);
        raw.put<std::uint64_t>(off_capacity, 0);
        raw.put<std::uint64_t>(off_tail, 2);
        for (int i = 0; i < 4; ++i) {
            try {
                (void)q.try_push(2);
                (void)q.pop_for(1ms);
                (void)q.size();
            } catch (const coexec::serialization_error&) {
            }
        }
        return 0;
    });
    INFO(r.describe());
    CHECK(r.ok());
}

TEST_CASE("indices and sizes written into a queue's header do not make the parent write elsewhere",
          "[shared_memory][adversarial]") {
    struct attack {
        std::size_t offset;
        std::uint64_t value;
    };
    const attack attacks[] = {
        {off_capacity, std::uint64_t{1} << 40},
        {off_slot_bytes, std::uint64_t{1} << 40},
        {off_head, ~std::uint64_t{0}},
        {off_tail, std::uint64_t{1} << 40},
        {off_tail, 3},  // three items claimed, one real: two slots of zero bytes
    };
    for (const attack& a : attacks) {
        auto r = run_isolated([&] {
            coexec::shared_queue<std::string> q(4, 64);
            auto raw = coexec_test::raw_blocks_of(q).at(0);
            raw.put<std::uint64_t>(a.offset, a.value);
            for (int i = 0; i < 4; ++i) {
                try {
                    (void)q.try_push(std::string(40, 'x'));
                    (void)q.pop_for(1ms);
                } catch (const coexec::serialization_error&) {
                }
            }
            return 0;
        });
        INFO("field at " << a.offset << " = " << a.value << ": " << r.describe());
        CHECK(r.ok());
    }
}

TEST_CASE("random bytes over a queue's memory never crash or hang its bounded operations",
          "[shared_memory][adversarial]") {
    for (std::uint64_t seed = 1; seed <= 64; ++seed) {
        auto r = run_isolated(
            [&] {
                coexec::shared_queue<std::string> q(8, 128);
                for (int i = 0; i < 5; ++i)
                    q.push("item " + std::to_string(i));
                std::mt19937_64 rng(seed);
                auto raw = coexec_test::raw_blocks_of(q).at(0);
                coexec_test::scribble(raw.bytes(), rng);
                for (int i = 0; i < 20; ++i) {
                    try {
                        (void)q.try_push("again");
                        (void)q.pop_for(1ms);
                        (void)q.try_pop();
                        (void)q.size();
                    } catch (const coexec::serialization_error&) {
                    }
                }
                return 0;
            },
            std::chrono::seconds(20));
        INFO("seed " << seed << ": " << r.describe());
        CHECK(r.ok());
    }
}

TEST_CASE("a process_mutex overwritten by another process while held cannot crash its unlock",
          "[shared_memory][adversarial]") {
    for (int pattern = 0; pattern < 3; ++pattern) {
        auto r = run_isolated([&] {
            coexec::process_mutex m;
            auto raw = coexec_test::raw_blocks_of(m).at(0);
            m.lock();
            coexec_test::in_other_process([&] {
                std::mt19937_64 rng(42);
                switch (pattern) {
                    case 0:  // everything
                        coexec_test::scribble(raw.bytes(), rng);
                        break;
                    case 1:  // all but the first 16 bytes (keeps a pthread mutex's owner)
                        coexec_test::scribble(raw.bytes().subspan(16), rng);
                        break;
                    default:
                        std::memset(raw.data + 16, 0x41, raw.size - 16);
                        break;
                }
            });
            m.unlock();
            m.lock();
            m.unlock();
            return 0;
        });
        INFO("pattern " << pattern << ": " << r.describe());
        CHECK(r.ok());
    }
}

TEST_CASE("a shared_value received over a block smaller than its type is refused",
          "[shared_memory][adversarial]") {
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    coexec::detail::byte_writer w(bytes, &fds);
    coexec::shared_buffer small(8), lock(64);
    coexec::detail::encode(w, small, lock);
    coexec::detail::byte_reader r(bytes, fds);
    using big = std::array<std::byte, 8192>;
    CHECK_THROWS_AS(coexec::detail::decode<coexec::shared_value<big>>(r),
                    coexec::serialization_error);
    coexec::detail::close_fds(fds);
}

TEST_CASE("a queue the parent made keeps its own capacity whatever the header says",
          "[shared_memory][adversarial]") {
    coexec::shared_queue<int> q(4);
    auto raw = coexec_test::raw_blocks_of(q).at(0);
    raw.put<std::uint64_t>(off_capacity, 1'000'000);
    raw.put<std::uint64_t>(off_slot_bytes, 0);
    CHECK(q.capacity() == 4);
    for (int i = 0; i < 4; ++i)
        CHECK(q.try_push(i));
    CHECK_FALSE(q.try_push(4));
    for (int i = 0; i < 4; ++i)
        CHECK(q.pop() == i);
}

TEST_CASE("an item length beyond the slot size is dropped with serialization_error",
          "[shared_memory][adversarial]") {
    coexec::shared_queue<std::string> q(4, 64);
    q.push("first");
    q.push("second");
    auto raw = coexec_test::raw_blocks_of(q).at(0);
    raw.put<std::uint32_t>(sizeof(header), 1u << 30);  // the first slot's length
    CHECK_THROWS_AS(q.pop(), coexec::serialization_error);
    CHECK(q.pop() == "second");  // the queue goes on
    CHECK(q.size() == 0);
}

TEST_CASE("head and tail that cannot both be true make operations throw serialization_error",
          "[shared_memory][adversarial]") {
    coexec::shared_queue<int> q(4);
    auto raw = coexec_test::raw_blocks_of(q).at(0);
    raw.put<std::uint64_t>(off_tail, 100);
    CHECK_THROWS_AS(q.try_push(1), coexec::serialization_error);
    CHECK_THROWS_AS(q.try_pop(), coexec::serialization_error);
    CHECK(q.size() == 4);  // clamped: never more than can exist
}

TEST_CASE("a queue lock held forever by a live process bounds the timed operations",
          "[shared_memory][adversarial]") {
    coexec::shared_queue<int> q(4);
    q.push(1);
    auto raw = coexec_test::raw_blocks_of(q).at(0);
    const pid_t holder = ::fork();
    if (holder == 0) {
        coexec::detail::process_lock(reinterpret_cast<std::uint32_t*>(raw.data));
        ::pause();
        ::_exit(0);
    }
    // The lock word names the holder once it has it.
    CHECK(coexec_test::eventually([&] {
        return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(raw.data)).load() !=
               0;
    }));
    CHECK_FALSE(q.try_pop());
    CHECK_FALSE(q.pop_for(30ms));
    CHECK_FALSE(q.push_for(2, 30ms));
    CHECK(q.size() == 1);  // needs no lock
    ::kill(holder, SIGKILL);
    ::waitpid(holder, nullptr, 0);
    CHECK(q.pop_for(10s) == 1);  // the dead holder's lock is taken over
}

TEST_CASE("a queue whose lock holder was killed is taken over by a process already asleep on it",
          "[shared_memory][adversarial]") {
    auto r = run_isolated([] {
        coexec::shared_queue<int> q(2);
        auto raw = coexec_test::raw_blocks_of(q).at(0);
        auto* lock = reinterpret_cast<std::uint32_t*>(raw.data);
        const pid_t holder = ::fork();
        if (holder == 0) {
            coexec::detail::process_lock(lock);
            ::pause();
            ::_exit(0);
        }
        while (std::atomic_ref<std::uint32_t>(*lock).load() == 0)
            std::this_thread::sleep_for(1ms);
        const pid_t waiter = ::fork();
        if (waiter == 0) {
            q.push(7);  // sleeps on the lock
            ::_exit(0);
        }
        if (!coexec_test::wait_until_sleeping(waiter)) return 2;
        ::kill(holder, SIGKILL);
        ::waitpid(holder, nullptr, 0);
        int status = 0;
        ::waitpid(waiter, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 3;
        return q.pop_for(10s) == 7 ? 0 : 4;
    });
    INFO(r.describe());
    CHECK(r.ok());
}

TEST_CASE("a process_mutex whose owner was killed is taken over by a thread asleep in lock()",
          "[shared_memory][adversarial]") {
    coexec::process_mutex m;
    coexec::shared_value<int> locked(0);
    const pid_t owner = ::fork();
    if (owner == 0) {
        m.lock();
        locked.store(1);
        ::pause();
        ::_exit(0);
    }
    REQUIRE(coexec_test::eventually([&] { return locked.load() == 1; }));
    std::atomic<bool> got{false};
    std::thread sleeper([&] {
        m.lock();
        got = true;
    });
    std::this_thread::sleep_for(50ms);  // let it sleep in lock() (not needed for correctness)
    CHECK_FALSE(got.load());
    ::kill(owner, SIGKILL);
    ::waitpid(owner, nullptr, 0);
    sleeper.join();
    CHECK(got.load());
    CHECK(m.owner_died());
    m.unlock();
    CHECK(m.try_lock());
    CHECK_FALSE(m.owner_died());
    m.unlock();
}

TEST_CASE("a received queue whose header does not match its memory is refused",
          "[shared_memory][adversarial]") {
    coexec::shared_queue<int> q(4);
    auto raw = coexec_test::raw_blocks_of(q).at(0);
    raw.put<std::uint64_t>(off_capacity, 5);  // 5 slots would need more memory
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    coexec::detail::byte_writer w(bytes, &fds);
    coexec::detail::encode(w, q);
    coexec::detail::byte_reader r(bytes, fds);
    CHECK_THROWS_AS(coexec::detail::decode<coexec::shared_queue<int>>(r),
                    coexec::serialization_error);
    coexec::detail::close_fds(fds);
}

TEST_CASE("a received shared block that its sender could shrink is refused",
          "[shared_memory][adversarial]") {
    // A memfd made without seals, as a hostile worker could send.
    const int fd = ::memfd_create("unsealed", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 4096) == 0);
    // Our encoder refuses to send it, so the message is forged: a sealed
    // block's encoding with the unsealed descriptor in its place.
    coexec::shared_buffer sealed(4096);
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    coexec::detail::byte_writer w(bytes, &fds);
    coexec::detail::encode(w, sealed);
    REQUIRE(fds.size() == 1);
    ::close(fds[0]);
    fds[0] = fd;
    coexec::detail::byte_reader r(bytes, fds);
    CHECK_THROWS_AS(coexec::detail::decode<coexec::process_mutex>(r), coexec::serialization_error);
    coexec::detail::close_fds(fds);
}

TEST_CASE("shared_value<bool>::load reads any byte a worker stored as a bool",
          "[shared_memory][adversarial]") {
    coexec::shared_value<bool> flag(false);
    auto raw = coexec_test::raw_blocks_of(flag).at(0);
    raw.put<std::uint8_t>(0, 0x5a);
    const bool b = flag.load();
    CHECK(b);
    CHECK(static_cast<int>(b) == 1);
    raw.put<std::uint8_t>(0, 0);
    CHECK_FALSE(flag.load());
}
