// How executors pass arguments: decay-copied when submitted, then handed to
// the callable as rvalues (std::thread / std::async), so move-only arguments
// and map elements work on every executor.
#include <catch2/catch.hpp>

#include <memory>
#include <numeric>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "coexec/inline_executor.hpp"
#include "coexec/pipeline.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/thread_pool.hpp"

namespace {

std::string describe(std::unique_ptr<int> p, std::string s) {
    return s + std::to_string(*p);
}

/// Serializable but not copyable: may cross to a process worker by value.
struct move_only_blob {
    std::vector<int> values;
    move_only_blob() = default;
    explicit move_only_blob(std::vector<int> v) : values(std::move(v)) {}
    move_only_blob(move_only_blob&&) = default;
    move_only_blob& operator=(move_only_blob&&) = default;
    move_only_blob(const move_only_blob&) = delete;
    move_only_blob& operator=(const move_only_blob&) = delete;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(values);
    }
};

int sum_blob(move_only_blob b) {
    return std::accumulate(b.values.begin(), b.values.end(), 0);
}

/// Counts copies, to check that a submitted argument is not copied on the way.
struct copy_counter {
    static inline int copies = 0;
    copy_counter() = default;
    copy_counter(const copy_counter&) { ++copies; }
    copy_counter(copy_counter&&) noexcept = default;
};

}  // namespace

TEST_CASE("thread_pool's submit passes move-only arguments as rvalues", "[thread_pool][submit]") {
    coexec::thread_pool pool{{.max_workers = 1}};
    auto f = pool.submit(describe, std::make_unique<int>(1), std::string("x"));
    CHECK(f.get() == "x1");
    auto g = pool.submit([](std::unique_ptr<int> p) { return *p + 1; }, std::make_unique<int>(41));
    CHECK(g.get() == 42);
}

TEST_CASE("a submitted coroutine takes move-only arguments by value", "[thread_pool][submit]") {
    coexec::thread_pool pool{{.max_workers = 1}};
    auto f = pool.submit(
        [](std::unique_ptr<int> p, std::string s) -> coexec::task<std::string> {
            co_await std::suspend_never{};
            co_return s + std::to_string(*p);
        },
        std::make_unique<int>(7), std::string("n="));
    CHECK(f.get() == "n=7");
}

TEST_CASE("a stop_token callable still gets its token before move-only arguments",
          "[thread_pool][submit]") {
    coexec::thread_pool pool{{.max_workers = 1}};
    auto f = pool.submit(
        [](std::stop_token t, std::unique_ptr<int> p) { return *p + t.stop_possible(); },
        std::make_unique<int>(1));
    CHECK(f.get() == 2);
}

TEST_CASE("an argument is moved, not copied, from submit to the call", "[thread_pool][submit]") {
    coexec::thread_pool pool{{.max_workers = 1}};
    copy_counter::copies = 0;
    pool.submit([](copy_counter) {}, copy_counter{}).get();
    CHECK(copy_counter::copies == 0);
}

TEST_CASE("inline_executor's submit passes move-only arguments as rvalues",
          "[inline_executor][submit]") {
    coexec::inline_executor ex;
    CHECK(ex.submit(describe, std::make_unique<int>(2), std::string("y")).get() == "y2");
}

TEST_CASE("process_pool's submit takes a serializable move-only argument",
          "[process_pool][submit]") {
    coexec::process_pool pool{{.max_workers = 1}};
    auto f = pool.submit(sum_blob, move_only_blob{{1, 2, 3}});
    CHECK(f.get() == 6);
}

TEST_CASE("map hands move-only elements over when the range is passed as an rvalue",
          "[map][submit]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<std::unique_ptr<int>> in;
    for (int i = 0; i < 10; ++i)
        in.push_back(std::make_unique<int>(i));
    auto out = pool.map([](std::unique_ptr<int> p) { return *p * 2; }, std::move(in)).to_vector();
    REQUIRE(out.size() == 10);
    for (int i = 0; i < 10; ++i)
        CHECK(out[i] == 2 * i);
}

TEST_CASE("process_pool's map takes serializable move-only elements", "[process_pool][map]") {
    coexec::process_pool pool{{.max_workers = 2}};
    std::vector<move_only_blob> in;
    for (int i = 0; i < 6; ++i)
        in.emplace_back(std::vector<int>{i, i});
    auto out = pool.map(sum_blob, std::move(in), {.chunksize = 2}).to_vector();
    CHECK(out == std::vector<int>{0, 2, 4, 6, 8, 10});
}

TEST_CASE("a pipeline carries move-only items between stages", "[pipeline][submit]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<std::unique_ptr<int>> in;
    for (int i = 0; i < 20; ++i)
        in.push_back(std::make_unique<int>(i));
    auto out = coexec::pipeline(std::move(in))
                   .then(pool, [](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); })
                   .then(pool, [](std::unique_ptr<int> p) { return *p; }, {.concurrency = 4})
                   .collect();
    REQUIRE(out.size() == 20);
    for (int i = 0; i < 20; ++i)
        CHECK(out[i] == i + 1);
}
