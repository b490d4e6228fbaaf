// Adversarial tests, messages: a plain task function forges what its worker
// sends the parent (records, ids, message kinds, running ids) through a
// second view of its own channel. Each checks that the parent lives, the
// attacked future fails with worker_died naming a protocol violation within
// a bound, a task on the other worker comes back right, the pool serves new
// tasks and shuts down.
#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>

#include "adversary.hpp"
#include "coexec/detail/codec/exceptions.hpp"

using namespace adversary;

namespace {

// A record of a kind no worker sends.
int send_unknown_kind() {
    proc::channel ch = own_channel();
    const std::byte payload[8]{};
    ch.publish_raw(77, 0, sizeof payload, 0, ch.running_id(), payload, {});
    wait_to_be_killed();
}

// A result for a task id the parent never gave out.
int send_result_for_another_task() {
    proc::channel ch = own_channel();
    const std::byte payload[1]{};
    ch.send(proc::msg_kind::result, ch.running_id() + 1000, payload);
    wait_to_be_killed();
}

// init_failed, which only the initializer may send, from a running task.
int send_init_failed_after_ready() {
    proc::channel ch = own_channel();
    std::vector<std::byte> out;
    coexec::detail::byte_writer w(out);
    w.put(1);
    coexec::detail::encode_exception(w, std::make_exception_ptr(std::runtime_error("forged")));
    ch.send(proc::msg_kind::init_failed, 0, out);
    wait_to_be_killed();
}

// A second ready message.
int send_second_ready() {
    proc::channel ch = own_channel();
    ch.send(proc::msg_kind::ready, 0, {});
    wait_to_be_killed();
}

// A record whose flags no sender uses.
int send_invalid_flags() {
    proc::channel ch = own_channel();
    const std::byte payload[8]{};
    ch.publish_raw(static_cast<std::uint16_t>(proc::msg_kind::result), 0x40, sizeof payload, 0,
                   ch.running_id(), payload, {});
    wait_to_be_killed();
}

// A record that claims more payload than the ring holds.
int send_overlong_record() {
    proc::channel ch = own_channel();
    const std::byte payload[8]{};
    ch.publish_raw(static_cast<std::uint16_t>(proc::msg_kind::result), 0, 1u << 30, 0,
                   ch.running_id(), payload, {});
    wait_to_be_killed();
}

// A record announcing descriptors that were never sent.
int send_missing_descriptors() {
    proc::channel ch = own_channel();
    const auto payload = shared_buffer_result(4096);
    ch.publish_raw(static_cast<std::uint16_t>(proc::msg_kind::result), 0,
                   static_cast<std::uint32_t>(payload.size()), 3, ch.running_id(), payload, {});
    wait_to_be_killed();
}

// A record announcing far more descriptors than a message may carry.
int send_too_many_descriptors() {
    proc::channel ch = own_channel();
    const auto payload = shared_buffer_result(4096);
    ch.publish_raw(static_cast<std::uint16_t>(proc::msg_kind::result), 0,
                   static_cast<std::uint32_t>(payload.size()), 100'000, ch.running_id(), payload,
                   {});
    wait_to_be_killed();
}

// Writes a running id the pool never gave out, then dies.
int forge_running_id_and_die() {
    own_channel().set_running_id(0xdead'beef'0000ULL);
    std::abort();
}

// Claims not to have started (running id 0, what a fresh worker shows), then
// dies: the pool re-runs such a task, but only a bounded number of times.
int pretend_not_started_and_die() {
    own_channel().set_running_id(0);
    std::abort();
}

// Leaves a thread in its worker that stops the worker (SIGSTOP) right after
// it publishes the result of the task `later` tasks after this one (ids are
// consecutive on a 1-worker pool): a retiring worker that will not read its
// `exit`. That task must take long enough for the thread to see it start.
int stop_after_result_of(int later) {
    const auto* header = reinterpret_cast<const proc::channel_header*>(channel_mapping().data());
    const std::uint64_t last = header->running_id.load() + static_cast<std::uint64_t>(later);
    std::thread([header, last] {
        while (header->running_id.load() != last)
            std::this_thread::yield();
        const std::uint64_t tail = header->to_parent.tail.load();
        while (header->to_parent.tail.load() == tail)
            std::this_thread::yield();
        ::kill(::getpid(), SIGSTOP);
    }).detach();
    return later;
}

// Writes trace-span records for a task id that is not its own, without end.
int flood_trace_spans() {
    proc::channel ch = own_channel();
    const std::byte payload[16]{};
    for (;;)
        ch.send(proc::msg_kind::trace_span, ch.running_id() + 1, payload);
}

}  // namespace

TEST_CASE("a retiring worker stopped after its last result is killed although a caller read it",
          "[process_pool][adversarial][waiters]") {
    // The caller in get() reads the results while the supervisor sleeps, the
    // last one included; the retirement's SIGKILL timer must still fire.
    // With workers that are the pool's own children nothing else ends it:
    // the supervisor looks for stopped ones only while one holds a task or
    // is starting (the fork server would continue it: worker_stops.hpp).
    // spawn, not fork: the task starts a thread, which ThreadSanitizer
    // refuses in a child forked from this multithreaded test.
    constexpr int per_child = 10;
    for (auto m : {coexec::start_method::spawn, coexec::start_method::fork_server}) {
        INFO("start method " << static_cast<int>(m));
        coexec::process_pool pool{{.max_workers = 1, .max_tasks_per_child = per_child, .start = m}};
        REQUIRE(pool.submit(stop_after_result_of, per_child - 1).get() == per_child - 1);
        for (int i = 1; i < per_child - 1; ++i)
            REQUIRE(pool.submit(square, i).get() == i * i);
        REQUIRE(pool.submit(sleep_then, 200, 5).get() == 5);  // the last: it stops after it
        CHECK(pool.submit(square, 7).get_for(30s) == 49);
    }
}

TEST_CASE("a worker writing records without end does not hold a caller in get()",
          "[process_pool][adversarial][waiters]") {
    coexec::process_pool pool{{.max_workers = 2}};
    auto flood = pool.submit_with({.timeout = 2s}, flood_trace_spans);
    // Results of the other worker, read by this thread or the supervisor
    // while the flood goes on: each get() returns.
    for (int i = 0; i < 200; ++i)
        REQUIRE(pool.submit(square, i).get() == i * i);
    // Its deadline kills it, unless its own channel gave up first: a worker
    // whose sends fail exits, and a send the task makes itself into a full
    // ring (the parent fell behind for a moment, on a loaded machine)
    // throws in the task, which then fails with that error. Any way, its
    // future ends.
    try {
        (void)flood.get_for(30s);
        FAIL("the flood returned a value");
    } catch (const coexec::deadline_exceeded&) {
    } catch (const coexec::worker_died&) {
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("does not drain its ring") != std::string::npos);
    }
    CHECK(pool.submit(square, 3).get_for(30s) == 9);
}

TEST_CASE("a record of an unknown kind fails the task as a protocol violation",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true})
        require_violation(against_pool(
            busy, [](coexec::process_pool& p) { return p.submit(send_unknown_kind); }));
}

TEST_CASE("a result for a task the worker was not given is a protocol violation",
          "[process_pool][adversarial]") {
    require_violation(against_pool(
        true, [](coexec::process_pool& p) { return p.submit(send_result_for_another_task); }));
}

TEST_CASE("init_failed after ready is a protocol violation and does not break the pool",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true})
        require_violation(against_pool(
            busy, [](coexec::process_pool& p) { return p.submit(send_init_failed_after_ready); }));
}

TEST_CASE("a second ready message is a protocol violation", "[process_pool][adversarial]") {
    require_violation(
        against_pool(true, [](coexec::process_pool& p) { return p.submit(send_second_ready); }));
}

TEST_CASE("a record with invalid flags is a protocol violation", "[process_pool][adversarial]") {
    require_violation(
        against_pool(true, [](coexec::process_pool& p) { return p.submit(send_invalid_flags); }));
}

TEST_CASE("a record longer than the ring is a protocol violation", "[process_pool][adversarial]") {
    require_violation(
        against_pool(true, [](coexec::process_pool& p) { return p.submit(send_overlong_record); }));
}

TEST_CASE("a record announcing descriptors that never came is a protocol violation",
          "[process_pool][adversarial]") {
    require_violation(against_pool(
        true, [](coexec::process_pool& p) { return p.submit(send_missing_descriptors); }));
}

TEST_CASE("a record announcing more descriptors than a message may carry is a protocol violation",
          "[process_pool][adversarial]") {
    require_violation(against_pool(
        true, [](coexec::process_pool& p) { return p.submit(send_too_many_descriptors); }));
}

TEST_CASE("a forged running id fails the task once as a protocol violation",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true})
        require_violation(against_pool(
            busy, [](coexec::process_pool& p) { return p.submit(forge_running_id_and_die); }));
}

TEST_CASE("a task that keeps dying before it seems to start is re-run at most twice",
          "[process_pool][adversarial]") {
    for (bool busy : {false, true}) {
        coexec::executor_stats stats;
        const ending e = against_pool(busy, [&stats](coexec::process_pool& p) {
            auto f = p.submit(pretend_not_started_and_die);
            f.wait_for(30s);
            stats = p.stats();
            return f;
        });
        INFO("ended with: " << (e.value ? "a value" : e.what));
        REQUIRE(e.worker_died);
        REQUIRE(stats.respawns <= 3);
    }
}
