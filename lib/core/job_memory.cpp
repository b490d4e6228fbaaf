// Per-thread caches of job-sized blocks over a bounded shared list of batches
// (detail/job_memory.hpp says why). Blocks are sized in classes 16 bytes
// apart, from 24 to 520; larger requests go straight to operator new. Fresh
// blocks are carved from regions populated in steps (see "Fresh blocks").
//
// Under AddressSanitizer every block goes to operator new/delete, so a use
// after free of a job is still reported.
#include "coexec/detail/job_memory.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include <pthread.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define COEXEC_JOB_MEMORY_BYPASS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COEXEC_JOB_MEMORY_BYPASS 1
#endif
#endif

namespace coexec::detail::job_memory {

#if defined(COEXEC_JOB_MEMORY_BYPASS)

void* allocate(std::size_t n) {
    return ::operator new(n);
}
void deallocate(void* p, std::size_t) noexcept {
    ::operator delete(p);  // unsized: clang before 19 declares no sized delete by default
}
std::size_t mapped_regions() noexcept {
    return 0;
}

#else
namespace {

// Each class is 8 bytes short of a multiple of 16: glibc's malloc puts an
// 8-byte size word before a block and rounds the two up to 16, so a 120-byte
// block takes 128 bytes of heap where a 128-byte one takes 144 (a carved
// block is rounded up to 16 too, see carve_align). A job or a coroutine
// frame 8 short of a multiple of 16 (a sleeping coroutine's frame is 168
// bytes) saves 16 bytes; no size costs more than before. 100k sleeping
// coroutines are 200k such blocks.
constexpr std::size_t granule = 16;
constexpr std::size_t smallest = 24;
constexpr std::size_t classes = 32;
constexpr std::size_t largest = smallest + (classes - 1) * granule;  // 520
// Blocks moved between a thread and the shared list at a time; a thread keeps
// at most two batches per class.
constexpr std::uint32_t batch = 64;
// The shared list keeps at most this much (a 100k-task burst of 128-byte jobs
// is 12.5 MiB); a thread cache at most 2 * batch * 520 bytes per class.
constexpr std::size_t shared_limit_bytes = std::size_t{16} << 20;

std::size_t class_of(std::size_t n) noexcept {
    return n <= smallest ? 0 : (n - smallest + granule - 1) / granule;
}
std::size_t size_of(std::size_t c) noexcept {
    return smallest + c * granule;
}

struct free_block {
    free_block* next;        // within a batch, or a thread's list
    free_block* next_batch;  // in the shared list: the next batch (first blocks only)
};
static_assert(sizeof(free_block) <= smallest);

// Fresh blocks: carved from regions a thread maps for itself, whose pages
// are populated a step at a time with one madvise(MADV_POPULATE_WRITE)
// rather than faulted in one by one. On the 2-core VM a page's first-touch
// fault costs 11-12 us and populating it ~1 us, and glibc grows a thread's
// arena a page at a time with mprotect (each call taking the address-space
// lock): 100k sleepers took ~3,400 fault traps and ~2,900 mprotect calls,
// and, carved, ~650 traps and none. Carved blocks are never given back to
// the kernel: past the shared list's bound they stay in it (glibc's arenas
// keep a burst's blocks too), so regions stop at max_regions (64 MiB) in
// all; beyond it fresh blocks come from malloc, and go back to it past the
// bound.
constexpr std::size_t region_bytes = std::size_t{256} << 10;
constexpr std::size_t populate_step = std::size_t{64} << 10;
constexpr std::size_t max_regions = 256;  // 64 MiB
// Carved blocks keep operator new's 16-byte alignment: a class's size is
// rounded up to it (the 8 bytes glibc's size word would take).
constexpr std::size_t carve_align = 16;

struct shared_lists {
    std::mutex mutex;
    // Changed under the mutex; read without it only to skip an empty class.
    std::array<std::atomic<free_block*>, classes> batches{};
    std::size_t bytes = 0;
    // Under the mutex: every region's start, sorted; and per class, carved
    // blocks past the bound, gathered until they make a batch.
    std::array<std::uintptr_t, max_regions> regions{};
    std::size_t region_count = 0;
    std::array<free_block*, classes> spill{};
    std::array<std::uint32_t, classes> spill_count{};
    // Set (under the mutex) once every region is mapped: read without it, so
    // a thread allocating past the budget takes no lock per block.
    std::atomic<bool> budget_spent{false};
    // What exiting threads left uncarved of their regions (their next, end
    // and populated marks), for the next thread that needs a region: a
    // program that starts and ends threads does not spend the budget on
    // their leftovers.
    struct leftover {
        char* next;
        char* end;
        char* populated;
    };
    std::array<leftover, 16> leftovers{};
    std::size_t leftover_count = 0;
};
// Made at compile time (no first-use initialization a fork could interrupt:
// a child inheriting "initialization in progress" would wait for it forever)
// and never destroyed (threads may free jobs after main returns).
union never_destroyed {
    shared_lists value;
    constexpr never_destroyed() : value() {}
    ~never_destroyed() {}
};
constinit never_destroyed g_shared;
shared_lists& shared() noexcept {
    return g_shared.value;
}

// Locked across fork() (as malloc does), so a child forked while another
// thread held the lock (process_pool workers are forked) finds it free.
// Registered during static initialization: before most libraries' handlers,
// so this prepare handler runs after theirs (prepare handlers run in reverse).
[[maybe_unused]] const int g_fork_handlers =
    ::pthread_atfork([] { shared().mutex.lock(); }, [] { shared().mutex.unlock(); },
                     [] { shared().mutex.unlock(); });

/// Takes a batch of class `c` from the shared list (null if none).
free_block* take_batch(std::size_t c) noexcept {
    shared_lists& s = shared();
    // An empty class is seen without the lock: a thread allocating a burst
    // of fresh jobs misses its cache on every one, and took the lock (shared
    // with the threads freeing them) each time, for nothing: 7-9% of a
    // submitting thread's cycles in 100k sleepers. A batch given meanwhile
    // is missed once, and a fresh block allocated instead.
    if (s.batches[c].load(std::memory_order_relaxed) == nullptr) return nullptr;
    std::lock_guard lock(s.mutex);
    free_block* b = s.batches[c].load(std::memory_order_relaxed);
    if (b == nullptr) return nullptr;
    s.batches[c].store(b->next_batch, std::memory_order_relaxed);
    s.bytes -= batch * size_of(c);
    return b;
}

/// True if `b` was carved from a region. Under the mutex.
bool carved(const shared_lists& s, const void* b) noexcept {
    const auto at = reinterpret_cast<std::uintptr_t>(b);
    const auto* end = s.regions.begin() + s.region_count;
    const auto* after = std::upper_bound(s.regions.begin(), end, at);
    return after != s.regions.begin() && at - *(after - 1) < region_bytes;
}

/// Takes a chain of class `c` that the shared list will not hold: carved
/// blocks are kept (spilled, a batch at a time, into the list), malloc's
/// are returned as a chain for the caller to free outside the lock.
free_block* spill_carved(shared_lists& s, std::size_t c, free_block* b) noexcept {
    if (s.region_count == 0) return b;
    free_block* to_free = nullptr;
    while (b != nullptr) {
        free_block* const next = b->next;
        if (carved(s, b)) {
            b->next = s.spill[c];
            s.spill[c] = b;
            if (++s.spill_count[c] == batch) {
                s.spill[c]->next_batch = s.batches[c].load(std::memory_order_relaxed);
                s.batches[c].store(s.spill[c], std::memory_order_relaxed);
                s.bytes += batch * size_of(c);
                s.spill[c] = nullptr;
                s.spill_count[c] = 0;
            }
        } else {
            b->next = to_free;
            to_free = b;
        }
        b = next;
    }
    return to_free;
}

void free_chain(free_block* b) noexcept {
    while (b != nullptr) {
        free_block* next = b->next;
        ::operator delete(b);
        b = next;
    }
}

/// Gives the shared list a batch of `batch` blocks of class `c`; past its
/// bound, keeps the carved ones and frees the rest.
void give_batch(std::size_t c, free_block* b) noexcept {
    {
        shared_lists& s = shared();
        std::lock_guard lock(s.mutex);
        if (s.bytes + batch * size_of(c) <= shared_limit_bytes) {
            b->next_batch = s.batches[c].load(std::memory_order_relaxed);
            s.batches[c].store(b, std::memory_order_relaxed);
            s.bytes += batch * size_of(c);
            return;
        }
        b = spill_carved(s, c, b);
    }
    free_chain(b);
}

/// Frees a chain of class `c` with no cache to take it: carved blocks are
/// kept, the rest go to malloc.
void give_back(std::size_t c, free_block* b) noexcept {
    {
        shared_lists& s = shared();
        std::lock_guard lock(s.mutex);
        b = spill_carved(s, c, b);
    }
    free_chain(b);
}

/// Where this thread carves fresh blocks: the rest of its region, and how
/// far its pages are populated. Trivially destructible: usable after the
/// thread's cache is gone. `failed`: a mapping failed here (an address-space
/// limit): this thread takes malloc's blocks from then on, one failed mmap
/// rather than one per block.
struct carver {
    char* next = nullptr;
    char* end = nullptr;
    char* populated = nullptr;
    bool failed = false;
};
thread_local carver t_carver;

/// The smallest leftover worth handing on (a 520-byte block, and more).
constexpr std::size_t leftover_min = 4096;

/// Hands what this thread left of its region to the next one (at exit,
/// when it carves no more). A leftover that finds no room is dropped: its
/// memory stays mapped, unused, within the budget.
void leave_region(carver& k) noexcept {
    if (static_cast<std::size_t>(k.end - k.next) < leftover_min) return;
    shared_lists& s = shared();
    std::lock_guard lock(s.mutex);
    if (s.leftover_count == s.leftovers.size()) return;
    s.leftovers[s.leftover_count++] = {k.next, k.end, k.populated};
    k.next = k.end = k.populated = nullptr;
}

/// Gives this thread a region: a leftover, or a new mapping; false if the
/// budget is spent or the mapping fails (fresh blocks then come from malloc).
bool map_region(carver& k) noexcept {
    shared_lists& s = shared();
    if (k.failed || s.budget_spent.load(std::memory_order_relaxed)) return false;
    {
        std::lock_guard lock(s.mutex);
        if (s.leftover_count != 0) {
            const shared_lists::leftover& l = s.leftovers[--s.leftover_count];
            k.next = l.next;
            k.end = l.end;
            k.populated = l.populated;
            return true;
        }
    }
    void* m =
        ::mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        k.failed = true;
        return false;
    }
    const auto at = reinterpret_cast<std::uintptr_t>(m);
    {
        std::lock_guard lock(s.mutex);
        if (s.region_count == max_regions) {
            ::munmap(m, region_bytes);
            return false;
        }
        auto* end = s.regions.begin() + s.region_count;
        auto* pos = std::upper_bound(s.regions.begin(), end, at);
        std::move_backward(pos, end, end + 1);
        *pos = at;
        if (++s.region_count == max_regions) s.budget_spent.store(true, std::memory_order_relaxed);
    }
    k.next = k.populated = static_cast<char*>(m);
    k.end = k.next + region_bytes;
    return true;
}

/// A fresh block of class `c`: carved, or malloc's past the budget.
void* fresh_block(std::size_t c) {
    const std::size_t bytes = (size_of(c) + carve_align - 1) & ~(carve_align - 1);
    carver& k = t_carver;
    if (static_cast<std::size_t>(k.end - k.next) < bytes && !map_region(k))
        return ::operator new(size_of(c));
    char* const p = k.next;
    k.next += bytes;
    if (k.next > k.populated) {
        const std::size_t step =
            std::min(populate_step, static_cast<std::size_t>(k.end - k.populated));
        // A kernel without it (before 5.14) says EINVAL: the pages then fault
        // in as they are touched, as malloc's would.
        (void)::madvise(k.populated, step, MADV_POPULATE_WRITE);
        k.populated += step;
    }
    return p;
}

// Set once t_cache is destroyed: a job freed later on this thread (a static
// destructor on the main thread) goes to operator delete.
thread_local bool t_cache_gone = false;

struct thread_cache {
    std::array<free_block*, classes> head{};
    std::array<std::uint32_t, classes> count{};

    ~thread_cache() {
        // Full batches to the shared list; the rest kept if carved, else
        // given to malloc; the region's uncarved rest to the next thread.
        for (std::size_t c = 0; c < classes; ++c) {
            while (count[c] >= batch)
                give_batch(c, detach(c, batch));
            if (head[c] != nullptr) give_back(c, head[c]);
            head[c] = nullptr;
            count[c] = 0;
        }
        t_cache_gone = true;  // carves no more (fresh blocks need the cache)
        leave_region(t_carver);
    }
    /// The first `n` blocks of class `c`, as a chain.
    free_block* detach(std::size_t c, std::uint32_t n) noexcept {
        free_block* first = head[c];
        free_block* last = first;
        for (std::uint32_t i = 1; i < n; ++i)
            last = last->next;
        head[c] = last->next;
        last->next = nullptr;
        count[c] -= n;
        return first;
    }
};
// A job freed from a pthread key destructor on a thread that never used its
// cache registers this destructor after glibc ran the others: its blocks
// (at most 2 batches per class) then stay with the dead thread.
thread_local thread_cache t_cache;

// COEXEC_JOB_CACHE=0 turns the caches off (every job from operator new):
// for comparing, or for a program that wants every freed job back at once.
// Read lazily but without a function-local static: a fork() while another
// thread is inside that static's initialization leaves the child's guard
// "in progress" forever, and the child's first allocate() waits on it (seen:
// test_job_memory's fork case, child stuck in __cxa_guard_acquire). Two
// first readers may both read the environment; the first to publish wins
// and the other takes its value, so the answer never changes: carved
// blocks exist only while it is "on", and one freed after it turned "off"
// would go to operator delete (a program's setenv racing the first reads).
constinit std::atomic<signed char> g_cache_enabled{-1};  // -1: not read yet
bool cache_enabled() noexcept {
    signed char on = g_cache_enabled.load(std::memory_order_relaxed);
    if (on < 0) {
        const char* v = std::getenv("COEXEC_JOB_CACHE");
        signed char read = v == nullptr || (std::strcmp(v, "0") != 0 && std::strcmp(v, "off") != 0);
        on = g_cache_enabled.compare_exchange_strong(on, read, std::memory_order_relaxed) ? read
                                                                                          : on;
    }
    return on != 0;
}

thread_cache* cache() noexcept {
    return t_cache_gone || !cache_enabled() ? nullptr : &t_cache;
}

}  // namespace

void* allocate(std::size_t n) {
    if (n != 0 && n <= largest) {
        const std::size_t c = class_of(n);
        thread_cache* tc = cache();
        if (tc == nullptr) return ::operator new(size_of(c));
        free_block* b = tc->head[c];
        if (b == nullptr) {
            b = take_batch(c);
            if (b == nullptr) return fresh_block(c);
            tc->count[c] = batch;
        }
        tc->head[c] = b->next;
        --tc->count[c];
        return b;
    }
    return ::operator new(n);
}

void deallocate(void* p, std::size_t n) noexcept {
    if (n != 0 && n <= largest) {
        const std::size_t c = class_of(n);
        thread_cache* tc = cache();
        if (tc == nullptr) {
            if (!cache_enabled()) {  // then no block is carved
                ::operator delete(p);
                return;
            }
            // The cache is gone with its thread's exit: the block may be carved.
            auto* b = static_cast<free_block*>(p);
            b->next = nullptr;
            give_back(c, b);
            return;
        }
        auto* b = static_cast<free_block*>(p);
        b->next = tc->head[c];
        tc->head[c] = b;
        if (++tc->count[c] > 2 * batch) give_batch(c, tc->detach(c, batch));
        return;
    }
    ::operator delete(p);
}

std::size_t mapped_regions() noexcept {
    shared_lists& s = shared();
    std::lock_guard lock(s.mutex);
    return s.region_count;
}

#endif  // COEXEC_JOB_MEMORY_BYPASS

}  // namespace coexec::detail::job_memory
