// Attacks on the shared primitives: users killed at any point, and processes
// that write anything over the shared memory they were given. Each scenario
// runs in a child process standing for "the parent", which must end normally.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

#include "coexec/process_mutex.hpp"
#include "coexec/shared_queue.hpp"
#include "coexec/shared_value.hpp"
#include "shm_attack.hpp"

using namespace std::chrono_literals;
using coexec_test::run_isolated;

namespace {

// Offsets of the queue's shared header fields (the layout before this change).
constexpr std::size_t off_capacity = 192;
constexpr std::size_t off_slot_bytes = 200;
constexpr std::size_t off_head = 208;
constexpr std::size_t off_count = 216;

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
        raw.put<std::uint64_t>(off_count, 1);
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
        {off_count, std::uint64_t{1} << 40},
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
