// lib/io/timer_heap.hpp against a model (a multiset of deadlines): random
// pushes (in any order, or mostly in deadline order, which fills the FIFO run
// and makes it compact), cancels and pops in every order, with each op's
// slot index checked now and then (a cancel finds its op through it).
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
    // Mostly in deadline order (as same-length sleeps are: they go to the
    // run), or in any order (the heap).
    const bool in_order = GENERATE(false, true);
    std::int64_t last_pushed = 0;
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
            if (in_order && rng() % 16 != 0 && op->offset < last_pushed) op->offset = last_pushed;
            last_pushed = op->offset;
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
            for (io_op* op : in_heap) {  // a cancel of any of them finds it
                REQUIRE(heap.holds(*op));
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

TEST_CASE("sleeps pushed in deadline order stay findable when the run moves down", "[io][timers]") {
    // 3,000 in order, some cancelled, 2,000 popped: the run's front passes
    // half of it and the live entries are moved down; each keeps its index.
    timer_heap heap;
    std::vector<std::unique_ptr<io_op>> ops;
    for (int i = 0; i < 3'000; ++i) {
        ops.push_back(std::make_unique<io_op>());
        ops.back()->offset = i / 3;  // ties too
        heap.push(*ops.back());
    }
    for (int i = 0; i < 3'000; i += 7)
        heap.remove(*ops[static_cast<std::size_t>(i)]);
    std::int64_t previous = INT64_MIN;
    for (int n = 0; n < 2'000; ++n) {
        io_op* op = heap.pop_due(INT64_MAX);
        REQUIRE(op != nullptr);
        REQUIRE(op->offset >= previous);
        previous = op->offset;
    }
    std::size_t held = 0;
    for (auto& op : ops)
        held += heap.holds(*op) ? 1 : 0;
    REQUIRE(held == heap.size());
    for (std::size_t i = 2'990; i < ops.size(); ++i) {  // cancels through the moved indices
        const std::size_t before = heap.size();
        const bool was_held = heap.holds(*ops[i]);
        heap.remove(*ops[i]);
        REQUIRE(heap.size() == before - (was_held ? 1 : 0));
        REQUIRE_FALSE(heap.holds(*ops[i]));
    }
    while (io_op* op = heap.pop_due(INT64_MAX)) {
        REQUIRE(op->offset >= previous);
        previous = op->offset;
    }
    CHECK(heap.empty());
}
