// A worker whose queue cannot grow (std::bad_alloc inside the noexcept
// paths that queue work) hands the items to the pool's intrusive inbox: no
// item is lost and nothing terminates. This program replaces the global
// operator new so a test can make one thread's allocations of a worker
// queue's block size fail.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"

namespace {
// std::deque<work_item*> allocates its blocks 512 bytes at a time.
constexpr std::size_t queue_block_bytes = 512;
thread_local bool t_refuse_queue_blocks = false;
std::atomic<int> g_refused{0};
}  // namespace

// GCC at -O2 inlines these into coroutine frames' new/delete and then warns
// that free() meets a pointer from `operator new`: they are a matching pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Not under AddressSanitizer: its own operator new variants (nothrow, arrays)
// would pair with these and report a mismatch.
#if !defined(__SANITIZE_ADDRESS__)
void* operator new(std::size_t n) {
    if (t_refuse_queue_blocks && n == queue_block_bytes) {
        g_refused.fetch_add(1, std::memory_order_relaxed);
        throw std::bad_alloc();
    }
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
#endif  // __SANITIZE_ADDRESS__

using coexec::task;
using coexec::thread_pool;

namespace {

task<int> hop_and_return(thread_pool& pool, int v) {
    co_await pool.schedule();      // queued by the worker on its own queue
    t_refuse_queue_blocks = true;  // whichever worker resumed it refuses too
    co_return v;
}

}  // namespace

TEST_CASE("a worker out of memory for its queue passes work to the inbox, losing none",
          "[thread_pool][concurrency]") {
#if defined(__SANITIZE_ADDRESS__)
    SUCCEED("operator new is not replaced under AddressSanitizer");
    return;
#endif
    for (std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
        thread_pool pool{{.max_workers = workers}};
        g_refused = 0;
        auto f = pool.submit([&]() -> task<long> {
            constexpr int n = 2000;
            std::vector<task<int>> hops;  // frames made while memory is there
            hops.reserve(n);
            for (int i = 0; i < n; ++i)
                hops.push_back(hop_and_return(pool, i));
            t_refuse_queue_blocks = true;  // this worker thread only
            long sum = 0;
            for (auto& t : hops)
                sum += co_await std::move(t);
            co_return sum;
        });
        // Many at once as well: a fan-out of jobs queued by a refusing worker.
        auto g = pool.submit([&]() -> task<long> {
            constexpr int n = 2000;
            std::vector<coexec::future<int>> children;
            children.reserve(n);
            t_refuse_queue_blocks = true;
            for (int i = 0; i < n; ++i)
                children.push_back(pool.submit([] { return 1; }));
            long sum = 0;
            for (auto& c : children)
                sum += co_await c;
            co_return sum;
        });
        CHECK(f.get() == 2000L * 1999 / 2);
        CHECK(g.get() == 2000);
        pool.shutdown(true);
        CHECK(g_refused.load() > 0);  // the refusal was reached
    }
}
