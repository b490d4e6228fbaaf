// Adversarial tests, shared memory: a plain task function attacks the memory
// its worker shares with the parent (its channel's memfd and mapping). Each
// runs with the pool's other worker idle, then busy, and checks that the
// parent lives, the attacked future ends with an error within a bound, the
// other task comes back right, the pool serves new tasks and shuts down.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "adversary.hpp"

using namespace adversary;

namespace {

// Truncates (to nothing, then to 1 GiB) every descriptor 3..10 of its
// worker; returns how many gave way.
int truncate_descriptors() {
    int n = 0;
    for (int fd = 3; fd <= 10; ++fd) {
        n += ::ftruncate(fd, 0) == 0;
        n += ::ftruncate(fd, off_t{1} << 30) == 0;
    }
    return n;
}

// Random bytes over [offset, offset + length) of its channel mapping
// (length 0: to the end), then returns normally.
int scribble(std::uint64_t seed, std::size_t offset, std::size_t length) {
    const auto map = channel_mapping();
    fill_random(map.subspan(offset, length == 0 ? map.size() - offset : length), seed);
    return 1;
}

// As scribble, then dies: the parent finds the garbage when it drains the
// dead worker's ring.
int scribble_and_crash(std::uint64_t seed) {
    fill_random(channel_mapping().first(4096), seed);
    ::raise(SIGSEGV);
    return 1;
}

}  // namespace

TEST_CASE("a task that truncates its worker's descriptors 3..10 cannot fault the parent",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true}) {
        const ending e = against_pool(
            busy, [](coexec::process_pool& p) { return p.submit(truncate_descriptors); });
        // The channel's memfd is sealed at its size: nothing gives way.
        INFO("ended with: " << (e.value ? std::to_string(e.number) : e.what));
        REQUIRE(e.value);
        REQUIRE(e.number == 0);
    }
}

TEST_CASE("random bytes over the first 4 KiB of the channel fail the task as a protocol violation",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true}) {
        for (std::uint64_t seed : {1u, 2u, 3u}) {
            require_violation(against_pool(busy, [seed](coexec::process_pool& p) {
                return p.submit(scribble, seed, std::size_t{0}, std::size_t{4096});
            }));
        }
    }
}

TEST_CASE("random bytes over the whole channel fail the task once, without endless re-runs",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true}) {
        for (std::uint64_t seed : {4u, 5u, 6u}) {
            coexec::executor_stats stats;
            require_violation(against_pool(busy, [seed, &stats](coexec::process_pool& p) {
                auto f = p.submit(scribble, seed, std::size_t{0}, std::size_t{0});
                f.wait_for(30s);
                stats = p.stats();
                return f;
            }));
            // One death, one replacement: the task was not run again.
            REQUIRE(stats.respawns <= 1);
        }
    }
}

TEST_CASE("a task that scribbles over its channel and crashes fails as a protocol violation",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true}) {
        require_violation(against_pool(busy, [](coexec::process_pool& p) {
            return p.submit(scribble_and_crash, std::uint64_t{7});
        }));
    }
}

TEST_CASE("the parent's channel mappings stay out of workers started by fork",
          "[process_pool][adversarial]") {
    // A worker forked from the parent would otherwise inherit the parent's
    // shared mappings of its siblings' channels and could scribble on them.
    coexec::process_pool pool{{.max_workers = 3, .start = coexec::start_method::fork}};
    auto count = [] {
        std::ifstream maps("/proc/self/maps");
        std::string line;
        int n = 0;
        while (std::getline(maps, line))
            n += line.find("memfd:coexec-channel") != std::string::npos;
        return n;
    };
    for (int i = 0; i < 6; ++i)
        REQUIRE(pool.submit(+count).get_for(30s) == 1);
}
