// lib/io/timer_heap.hpp against a model (a multiset of deadlines): random
// pushes, cancels and pops in every order, with each op's slot index checked
// after every step (a cancel finds its op through it).
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "coexec/detail/io_op.hpp"
#include "io/timer_heap.hpp"

using coexec::detail::io_op;
using coexec::detail::timer_heap;

TEST_CASE("the timer heap pops in deadline order through pushes and cancels", "[io][timers]") {
    std::mt19937_64 rng(GENERATE(1u, 2u, 3u, 4u));
    const std::int64_t spread = GENERATE(std::int64_t{4}, std::int64_t{1'000'000});  // ties, or few
    timer_heap heap;
    std::vector<std::unique_ptr<io_op>> ops;
    std::set<io_op*> in_heap;
    std::multiset<std::int64_t> model;
    std::int64_t now = 0;
    for (int step = 0; step < 20'000; ++step) {
        const auto what = rng() % 8;
        if (what < 4 || in_heap.empty()) {  // push, often later than all, sometimes not
            auto op = std::make_unique<io_op>();
            op->offset =
                now + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(spread));
            heap.push(*op);
            in_heap.insert(op.get());
            model.insert(op->offset);
            ops.push_back(std::move(op));
        } else if (what < 6) {  // cancel one at random (or one already gone: a no-op)
            io_op* op = ops[rng() % ops.size()].get();
            const bool was_in = in_heap.erase(op) != 0;
            if (was_in) model.erase(model.find(op->offset));
            heap.remove(*op);
        } else {  // time passes: pop what is due, earliest first
            now += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(spread));
            std::int64_t previous = INT64_MIN;
            while (io_op* op = heap.pop_due(now)) {
                REQUIRE(op->offset <= now);
                REQUIRE(op->offset >= previous);
                REQUIRE(op->offset == *model.begin());
                previous = op->offset;
                model.erase(model.begin());
                REQUIRE(in_heap.erase(op) == 1);
            }
            REQUIRE((model.empty() || *model.begin() > now));
        }
        REQUIRE(heap.size() == model.size());
        if (!model.empty()) REQUIRE(heap.earliest() == *model.begin());
        if (step % 997 == 0) {
            for (io_op* op : in_heap) {  // a cancel of any of them removes exactly it
                REQUIRE(op->backend_index < heap.size());
            }
        }
    }
    while (io_op* op = heap.pop_due(INT64_MAX)) {
        REQUIRE(op->offset == *model.begin());
        model.erase(model.begin());
        in_heap.erase(op);
    }
    CHECK(model.empty());
    CHECK(heap.empty());
}
