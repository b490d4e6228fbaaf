// detail/job_memory: the per-thread caches of job-sized blocks and their
// shared list. Blocks move between threads (allocated on one, freed on
// another, in bursts larger than a cache), survive the threads that cached
// them, and a child forked while other threads churn the shared list can
// still allocate (its lock is held across fork). Run under TSan for the
// hand-offs; under ASan the cache is bypassed (every block is malloc's).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "coexec/detail/job_memory.hpp"
#include "coexec/thread_pool.hpp"

namespace jm = coexec::detail::job_memory;

namespace {

/// Fills a block with a pattern naming it (a unique 32-bit tag first, its
/// low byte after), so a block handed out twice, or written after being
/// freed, shows up as a wrong pattern.
void stamp(void* p, std::size_t n, std::uint32_t tag) {
    std::memset(p, static_cast<int>(tag & 0xff), n);
    if (n >= sizeof tag) std::memcpy(p, &tag, sizeof tag);
}
bool stamped(const void* p, std::size_t n, std::uint32_t tag) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    std::size_t from = 0;
    if (n >= sizeof tag) {
        std::uint32_t head = 0;
        std::memcpy(&head, p, sizeof head);
        if (head != tag) return false;
        from = sizeof tag;
    }
    for (std::size_t i = from; i < n; ++i)
        if (b[i] != static_cast<std::uint8_t>(tag & 0xff)) return false;
    return true;
}

}  // namespace

TEST_CASE("job blocks of every size class are distinct and keep their contents",
          "[job_memory][concurrency]") {
    struct block {
        void* p;
        std::size_t n;
        std::uint32_t tag;
    };
    std::vector<block> live;
    std::uint32_t serial = 0;
    for (int round = 0; round < 3; ++round) {
        for (std::size_t n = 1; n <= 600; n += 7) {
            for (int k = 0; k < 100; ++k) {  // 200+ per class: batches go to the list and back
                void* p = jm::allocate(n);
                REQUIRE(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t) == 0);
                const auto tag = ++serial;
                stamp(p, n, tag);
                live.push_back({p, n, tag});
            }
        }
        for (const block& b : live)
            REQUIRE(stamped(b.p, b.n, b.tag));
        for (std::size_t i = 0; i < live.size(); i += 2)  // free half, then refill
            jm::deallocate(live[i].p, live[i].n);
        std::vector<block> kept;
        for (std::size_t i = 1; i < live.size(); i += 2)
            kept.push_back(live[i]);
        live = std::move(kept);
    }
    for (const block& b : live) {
        REQUIRE(stamped(b.p, b.n, b.tag));
        jm::deallocate(b.p, b.n);
    }
}

TEST_CASE("job blocks allocated on one thread and freed on another flow back, in bursts",
          "[job_memory][concurrency]") {
    // A producer allocates bursts larger than a thread cache; a consumer
    // frees them, filling the shared list; the producer's next burst takes
    // from it. Every block is checked at the consumer.
    constexpr std::size_t size = 136;
    constexpr int burst = 5000;
    std::atomic<void**> handoff{nullptr};
    std::atomic<bool> failed{false};
    std::thread consumer([&] {
        for (int round = 0; round < 20; ++round) {
            void** blocks;
            while ((blocks = handoff.exchange(nullptr, std::memory_order_acquire)) == nullptr)
                std::this_thread::yield();
            for (int i = 0; i < burst; ++i) {
                if (!stamped(blocks[i], size, static_cast<std::uint32_t>(round * burst + i)))
                    failed = true;
                jm::deallocate(blocks[i], size);
            }
            delete[] blocks;
        }
    });
    for (int round = 0; round < 20; ++round) {
        auto** blocks = new void*[burst];
        for (int i = 0; i < burst; ++i) {
            blocks[i] = jm::allocate(size);
            stamp(blocks[i], size, static_cast<std::uint32_t>(round * burst + i));
        }
        while (handoff.load(std::memory_order_acquire) != nullptr)
            std::this_thread::yield();
        handoff.store(blocks, std::memory_order_release);
    }
    consumer.join();
    CHECK_FALSE(failed);
}

TEST_CASE("a burst larger than the shared list's bound is freed past it and made again",
          "[job_memory][concurrency]") {
    constexpr std::size_t size = 256;
    constexpr std::size_t count = (std::size_t{24} << 20) / size;  // 24 MiB: past the 16 MiB bound
    std::vector<void*> blocks(count);
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < count; ++i) {
            blocks[i] = jm::allocate(size);
            stamp(blocks[i], size, static_cast<std::uint32_t>(i));
        }
        bool intact = true;
        for (std::size_t i = 0; i < count; ++i) {
            intact = intact && stamped(blocks[i], size, static_cast<std::uint32_t>(i));
            jm::deallocate(blocks[i], size);
        }
        REQUIRE(intact);
    }
}

TEST_CASE("a burst past the carved regions' budget mixes carved and malloc's blocks safely",
          "[job_memory][concurrency]") {
    // Fresh blocks are carved from regions up to a budget (64 MiB), then come
    // from malloc. 96 MiB of one class, freed on another thread past the
    // shared list's bound: carved blocks are kept, malloc's are freed, and
    // neither is confused with the other (a carved block given to free()
    // aborts; a malloc'd one kept would be handed out again while in use).
    constexpr std::size_t size = 200;
    constexpr std::size_t count = (std::size_t{96} << 20) / size;
    std::vector<void*> blocks(count);
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < count; ++i) {
            blocks[i] = jm::allocate(size);
            REQUIRE(reinterpret_cast<std::uintptr_t>(blocks[i]) % alignof(std::max_align_t) == 0);
            stamp(blocks[i], size, static_cast<std::uint32_t>(i + round * count));
        }
        bool intact = true;
        std::thread freer([&] {
            for (std::size_t i = 0; i < count; ++i) {
                intact = intact &&
                         stamped(blocks[i], size, static_cast<std::uint32_t>(i + round * count));
                jm::deallocate(blocks[i], size);
            }
        });
        freer.join();
        REQUIRE(intact);
    }
}

TEST_CASE("a block freed on a thread after its cache is gone is kept or freed, not lost",
          "[job_memory][concurrency]") {
    // A thread_local made before the thread's first job block is destroyed
    // after the thread's cache: blocks it frees then (one carved while the
    // cache lived, one allocated after) take the cacheless path. Later
    // allocations must never hand out a block twice.
    struct late_freer {
        void* carved = nullptr;
        ~late_freer() {
            void* after = jm::allocate(72);  // no cache: from malloc
            stamp(after, 72, 7);
            jm::deallocate(after, 72);
            if (carved != nullptr) jm::deallocate(carved, 72);
        }
    };
    for (int round = 0; round < 20; ++round) {
        std::thread t([] {
            thread_local late_freer holder;  // constructed first, destroyed last
            holder.carved = jm::allocate(72);
            stamp(holder.carved, 72, 9);
        });
        t.join();
    }
    std::vector<void*> live(5'000);
    for (std::size_t i = 0; i < live.size(); ++i) {
        live[i] = jm::allocate(72);
        stamp(live[i], 72, static_cast<std::uint32_t>(i + 100));
    }
    bool intact = true;
    for (std::size_t i = 0; i < live.size(); ++i) {
        intact = intact && stamped(live[i], 72, static_cast<std::uint32_t>(i + 100));
        jm::deallocate(live[i], 72);
    }
    CHECK(intact);
}

TEST_CASE("threads that come and go one after another carve from one region, handed on",
          "[job_memory][concurrency]") {
    // An exiting thread hands the uncarved rest of its region to the next
    // thread that needs one, so 300 short-lived threads, each carving ten
    // blocks it keeps, map a region or two: not 300 (which would spend the
    // 256-region budget and leave later threads on malloc).
    const std::size_t before = jm::mapped_regions();
    std::vector<void*> kept;
    std::mutex kept_mutex;
    for (int i = 0; i < 300; ++i) {
        std::thread t([&] {
            for (int b = 0; b < 10; ++b) {
                void* p = jm::allocate(72);
                std::lock_guard lock(kept_mutex);
                kept.push_back(p);
            }
        });
        t.join();
    }
    const std::size_t after = jm::mapped_regions();
    for (void* p : kept)
        jm::deallocate(p, 72);
    if (after == 0) return;  // no carving here: the allocator is bypassed or the cache off
    CHECK(after - before <= 2);
}

TEST_CASE("blocks cached by threads that exit are reused or freed, and jobs still run",
          "[job_memory][concurrency]") {
    for (int round = 0; round < 4; ++round) {
        coexec::thread_pool pool{{.max_workers = 2}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 20'000; ++i)
            fs.push_back(pool.submit([i] { return i; }));
        long sum = 0;
        for (auto& f : fs)
            sum += f.get();
        CHECK(sum == 20'000L * 19'999 / 2);
    }  // the workers exit with full caches each round
}

TEST_CASE("a child forked while other threads use the shared list can allocate jobs",
          "[job_memory][concurrency]") {
#if defined(__SANITIZE_ADDRESS__)
    SUCCEED("the caches, and their lock, are compiled out under AddressSanitizer");
    return;
#endif
    // A child may only need locks that fork() hands over. The list's lock is
    // (the atfork handlers), malloc's is under glibc, but ThreadSanitizer's
    // allocator's is not (GCC 12's libtsan, clang 16's: a child forked while a
    // churn thread refilled its cache hung in SizeClassAllocator64::
    // GetFromAllocator). So the churn threads must not call operator new or
    // delete once the forks start: the list is filled first with more blocks
    // than both can hold (2 * (300 + 2 * 64)), their vectors are reserved, and
    // the forks wait for one whole round of each.
    {
        std::vector<void*> fill(2048);
        for (auto& p : fill)
            p = jm::allocate(64);
        for (void* p : fill)
            jm::deallocate(p, 64);
    }
    std::atomic<bool> stop{false};
    std::atomic<int> warm{0};
    std::vector<std::thread> churn;
    for (int t = 0; t < 2; ++t) {
        churn.emplace_back([&] {
            std::vector<void*> held;
            held.reserve(300);
            for (bool first = true; !stop.load(std::memory_order_relaxed); first = false) {
                for (int i = 0; i < 300; ++i)
                    held.push_back(jm::allocate(64));  // past a cache: takes from the list
                for (void* p : held)
                    jm::deallocate(p, 64);  // past a cache: gives to the list
                held.clear();
                if (first) warm.fetch_add(1);
            }
        });
    }
    // Stopped and joined however the test ends (a failed REQUIRE throws).
    struct join_all {
        std::atomic<bool>& stop;
        std::vector<std::thread>& threads;
        ~join_all() {
            stop = true;
            for (auto& t : threads)
                t.join();
        }
    } joiner{stop, churn};
    while (warm.load() < 2)
        std::this_thread::yield();
    for (int k = 0; k < 300; ++k) {  // one in ~100 forks finds the lock held
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            static std::array<void*, 1000> held;  // no operator new for the array
            for (auto& p : held)
                p = jm::allocate(64);
            for (void* p : held)
                jm::deallocate(p, 64);
            ::_exit(0);
        }
        int status = 0;
        pid_t done = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while ((done = ::waitpid(child, &status, WNOHANG)) == 0 &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (done == 0) {
            ::kill(child, SIGKILL);
            ::waitpid(child, &status, 0);
        }
        REQUIRE(done == child);  // else the child hung on the list's lock
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}

TEST_CASE("a job holding an over-aligned value is allocated aligned", "[job_memory]") {
    struct alignas(128) wide {
        int value;
    };
    coexec::thread_pool pool{{.max_workers = 1}};
    std::vector<coexec::future<int>> fs;  // all alive at once: each in a block of its own
    for (int i = 0; i < 200; ++i) {
        wide w{i};
        fs.push_back(pool.submit([w] {
            auto address = reinterpret_cast<std::uintptr_t>(&w);
            asm volatile("" : "+r"(address));  // the compiler may assume it aligned: hide it
            return address % alignof(wide) == 0 ? w.value : -1;
        }));
    }
    for (int i = 0; i < 200; ++i)
        REQUIRE(fs[static_cast<std::size_t>(i)].get() == i);
}
