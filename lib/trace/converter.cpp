// lib/trace/converter.cpp — see converter.hpp.
#include "trace/converter.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace coexec::detail::trace {

struct conversion {
    // Its own descriptor of the spill, taken by conversion_start: the
    // thread may first run after the session ended and closed the spill's.
    spill_reader reader;
    json_sink sink;
    std::uint64_t from = 0;
    spill_position position;

    std::atomic<std::uint64_t> written{0};  // records the converter may read
    std::atomic<bool> abandoned{false};
    std::atomic<converted_block*> ready{nullptr};  // one block at a time

    ~conversion() { delete ready.load(std::memory_order_acquire); }
};

namespace {

// A block's size: the writer writes it in one go, and the text is made in
// steps of step_records so that abandoning is noticed soon.
constexpr std::size_t block_bytes = std::size_t{1} << 20;
constexpr std::uint64_t step_records = 4096;

void lower_priority() noexcept {
    sched_param p{};
    p.sched_priority = 0;
    // On Linux pid 0 is the calling thread, not the whole process.
    if (::sched_setscheduler(0, SCHED_IDLE, &p) == 0) return;
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    ::setpriority(PRIO_PROCESS, tid, 19);
}

void nap() noexcept {
    // Polling, not a condition variable: the writer must never take a lock
    // this thread could hold while starved.
    timespec t{0, 20'000'000};
    ::nanosleep(&t, nullptr);
}

void convert(const std::shared_ptr<conversion>& c) {
    ::pthread_setname_np(::pthread_self(), "coexec-trace-cv");
    lower_priority();
    spill_reader& reader = c->reader;
    json_sink j = c->sink;
    std::uint64_t pos = c->from;
    spill_position who = c->position;
    while (!c->abandoned.load(std::memory_order_acquire)) {
        const std::uint64_t written = c->written.load(std::memory_order_acquire);
        if (pos == written || c->ready.load(std::memory_order_acquire) != nullptr) {
            nap();
            continue;
        }
        auto block = std::make_unique<converted_block>();
        block->begin = pos;
        j.out.clear();
        j.out.reserve(block_bytes + 4096);
        bool ok = true;
        while (pos < written && j.out.size() < block_bytes &&
               !c->abandoned.load(std::memory_order_relaxed)) {
            const std::uint64_t to = std::min(written, pos + step_records);
            ok = reader.replay(pos, to, who,
                               [&j](std::uint32_t pid, std::uint32_t tid, const record& r) {
                                   json_record(j, pid, tid, r);
                               });
            if (!ok) break;
            pos = to;
        }
        if (!ok) break;  // the session's end converts (and reports) the rest
        block->end = pos;
        block->position = who;
        block->first = j.first;
        block->text = std::move(j.out);
        j.out = std::string();
        if (c->abandoned.load(std::memory_order_acquire)) break;
        c->ready.store(block.release(), std::memory_order_release);
    }
}

void run(const std::shared_ptr<conversion>& c) noexcept {
    try {
        convert(c);
    } catch (...) {
        // Out of memory: no more blocks; the session's end converts the rest.
    }
}

}  // namespace

std::shared_ptr<conversion> conversion_start(int spill_fd, const json_sink& sink,
                                             std::uint64_t from, spill_position position) noexcept {
    try {
        auto c = std::make_shared<conversion>();
        if (!c->reader.open(spill_fd)) return nullptr;
        c->sink.first = sink.first;
        c->sink.origin = sink.origin;
        c->sink.self_pid = sink.self_pid;
        c->sink.name_submit = sink.name_submit;
        c->sink.name_resume = sink.name_resume;
        c->sink.name_buffer_full = sink.name_buffer_full;
        c->from = from;
        c->written.store(from, std::memory_order_relaxed);
        c->position = position;
        // Detached: nobody waits for a thread that may be starved; it holds
        // the state it uses (and its own descriptor of the spill).
        std::thread([c] { run(c); }).detach();
        return c;
    } catch (...) {
        return nullptr;
    }
}

void conversion_publish(conversion& c, std::uint64_t written) noexcept {
    c.written.store(written, std::memory_order_release);
}

std::unique_ptr<converted_block> conversion_take(conversion& c) noexcept {
    return std::unique_ptr<converted_block>(c.ready.exchange(nullptr, std::memory_order_acq_rel));
}

void conversion_abandon(conversion& c) noexcept {
    c.abandoned.store(true, std::memory_order_release);
}

}  // namespace coexec::detail::trace
