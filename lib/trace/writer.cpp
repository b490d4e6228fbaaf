// lib/trace/writer.cpp — the writer thread: buffers → spill → JSON. See writer.hpp.
#include "trace/writer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "trace/converter.hpp"
#include "trace/json.hpp"
#include "trace/names.hpp"
#include "trace/registry.hpp"
#include "trace/spill.hpp"
#include "util/system_error.hpp"

namespace coexec::detail::trace {
namespace {

constexpr std::size_t flush_bytes = std::size_t{1} << 20;
// How often the spill's buffered records are written for the background
// converter: each is a write of the records since the last.
constexpr std::chrono::milliseconds publish_interval{100};

struct writer_state {
    // The output and the spill, owned by whichever thread is the consumer:
    // the writer thread while it runs, else the thread finishing the session.
    int fd = -1;
    bool failed = false;  // a write failed (disk full...): stop writing, keep draining
    json_sink json;
    spill raw;
    std::uint64_t converted = 0;  // spill records already in the output
    spill::reader_state reader;
    session_info session;
    std::shared_ptr<conversion> background;  // converter.hpp; null if none

    std::mutex thread_mutex;  // starting and taking the thread
    std::thread* thread = nullptr;
    std::atomic<bool> thread_started{false};
    bool closed = true;

    std::mutex wake_mutex;
    std::condition_variable wake;
    bool stop_requested = false;

    std::atomic<int> signal_request{0};
    std::atomic<int> signal_done{0};
    std::atomic<std::uint64_t> progress{0};    // output blocks written: the signal wait's clock
    std::atomic<std::uint32_t> thread_tid{0};  // the writer thread's, while it runs
};

writer_state& ws() {
    static auto* w = new writer_state();  // never destroyed: used at exit and from signals
    return *w;
}

void write_out(writer_state& w, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size() && w.fd >= 0 && !w.failed) {
        const ssize_t n = ::write(w.fd, text.data() + done, text.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && errno != EINTR) {
            w.failed = true;  // the rest of the trace is lost; the program goes on
        }
    }
    w.progress.fetch_add(1, std::memory_order_release);
}

void flush_out(writer_state& w) {
    write_out(w, w.json.out);
    w.json.out.clear();
}

/// Writes the background converter's next block, if it has one, and
/// adopts the conversion state after it. The caller is the consumer.
void take_converted(writer_state& w) {
    if (!w.background) return;
    const auto block = conversion_take(*w.background);
    if (!block || block->begin != w.converted) return;
    write_out(w, block->text);
    w.converted = block->end;
    w.reader = block->position;
    w.json.first = block->first;
}

/// Ends the background conversion: its last finished block is kept, what
/// it is working on is not waited for (the caller converts it again).
void end_background(writer_state& w) {
    if (!w.background) return;
    conversion_abandon(*w.background);
    take_converted(w);
    w.background.reset();
}

/// Moves every buffer's records into the spill (no formatting: a copy).
/// The caller is the only consumer.
void drain(writer_state& w) {
    const session_info& s = w.session;
    for (thread_buffer* b = all_buffers(); b != nullptr; b = b->next) {
        const int state = b->state.load(std::memory_order_acquire);
        if (state == thread_buffer::free || state == thread_buffer::claiming) continue;
        const std::uint32_t name = b->thread_name.load(std::memory_order_acquire);
        if (b->meta_session != s.number || b->meta_name != name) {
            b->meta_session = s.number;
            b->meta_name = name;
            record meta;
            meta.what = kind::thread_name;
            meta.name = name;
            w.raw.add(b->pid, b->tid, &meta, 1);
        }
        const std::uint64_t tail = b->tail.load(std::memory_order_acquire);
        const std::uint64_t head = b->head.load(std::memory_order_relaxed);
        if (tail != head) {
            // At most two runs: up to the ring's end, then from its start.
            const std::size_t mask = b->capacity - 1;
            const std::size_t first = static_cast<std::size_t>(head) & mask;
            const std::size_t n = static_cast<std::size_t>(tail - head);
            const std::size_t run = std::min(n, b->capacity - first);
            w.raw.add(b->pid, b->tid, b->slots + first, run);
            w.raw.add(b->pid, b->tid, b->slots, n - run);
        }
        // Frees the slots for the owner (release: our reads of them came first).
        b->head.store(tail, std::memory_order_release);
        const std::uint64_t dropped = b->dropped.load(std::memory_order_relaxed);
        if (dropped > b->dropped_reported) {
            record d;
            d.what = kind::dropped;
            d.ts = now();
            d.c = dropped - b->dropped_reported;
            w.raw.add(b->pid, b->tid, &d, 1);
            b->dropped_reported = dropped;
        }
        // Abandoned before we read `tail`: everything its owner wrote is drained.
        if (state == thread_buffer::abandoned) recycle(*b);
    }
}

/// Turns the spill's records up to its end into JSON in the output file.
void convert(writer_state& w) {
    w.raw.flush();
    const std::uint64_t end = w.raw.size();
    w.raw.replay(w.converted, end, w.reader,
                 [&w](std::uint32_t pid, std::uint32_t tid, const record& r) {
                     json_record(w.json, pid, tid, r);
                     if (w.json.out.size() >= flush_bytes) flush_out(w);
                 });
    w.converted = end;
    flush_out(w);
}

void sample_counters(writer_state& w, bool force) {
    const std::int64_t t = now();
    const auto self = w.json.self_pid;
    sample_executors(force, [&](const counter_sample& c) {
        record r;
        r.what = kind::counter;
        r.ts = t;
        r.name = c.name;
        r.a = c.queued;
        r.b = c.in_flight;
        r.c = c.workers;
        w.raw.add(self, self, &r, 1);
    });
}

std::uint64_t total_dropped() {
    std::uint64_t n = retired_dropped();
    for (thread_buffer* b = all_buffers(); b != nullptr; b = b->next) {
        if (b->dropped_reported > b->dropped_baseline)
            n += b->dropped_reported - b->dropped_baseline;
    }
    return n;
}

/// The last pass: drain, (counters), the whole spill into JSON, footer, close.
void finish(writer_state& w, bool counters) {
    end_background(w);
    drain(w);
    if (counters) sample_counters(w, true);
    convert(w);
    json_end(w.json, total_dropped(), w.raw.lost(), w.session.capacity);
    flush_out(w);
    w.raw.close();
    if (w.fd >= 0) ::close(w.fd);
    w.fd = -1;
}

void writer_main(writer_state& w) {
    ::pthread_setname_np(::pthread_self(), "coexec-trace");
    w.thread_tid.store(this_tid(), std::memory_order_release);
    using clock = std::chrono::steady_clock;
    const auto interval = w.session.opts.flush_interval;
    const auto slice = std::min<std::chrono::milliseconds>(interval, std::chrono::milliseconds(10));
    auto last = clock::now();
    auto published = last;
    // Made here, it inherits this thread's blocked signals.
    w.background = conversion_start(w.raw.fd(), w.json, w.converted, w.reader);
    std::unique_lock lock(w.wake_mutex);
    while (!w.stop_requested) {
        w.wake.wait_for(lock, slice);
        if (w.signal_request.load(std::memory_order_acquire) != 0) {
            lock.unlock();
            // The registry's lock may be held by the interrupted thread: no counters.
            finish(w, false);
            w.signal_done.store(1, std::memory_order_release);
            return;
        }
        if (w.stop_requested) break;
        if (clock::now() - last >= interval) {
            lock.unlock();
            drain(w);
            sample_counters(w, false);
            last = clock::now();
            if (w.background && last - published >= publish_interval) {
                w.raw.flush();
                conversion_publish(*w.background, w.raw.size());
                published = last;
            }
            take_converted(w);
            lock.lock();
        }
    }
}

std::string program_name() {
    char buf[64] = {};
    const int fd = ::open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        if (n > 0) {
            std::string s(buf, static_cast<std::size_t>(n));
            while (!s.empty() && (s.back() == '\n' || s.back() == '\0'))
                s.pop_back();
            if (!s.empty()) return s;
        }
    }
    return "coexec program";
}

}  // namespace

void writer_open(const std::string& path, const session_info& session) {
    writer_state& w = ws();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno(("coexec::trace::start: open " + path).c_str());
    try {
        w.raw.open(path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    w.fd = fd;
    w.failed = false;
    w.session = session;
    w.converted = 0;
    w.reader = {};
    w.signal_request.store(0, std::memory_order_relaxed);
    w.signal_done.store(0, std::memory_order_relaxed);
    reset_samples();
    w.json.self_pid = static_cast<std::uint32_t>(::getpid());
    json_begin(w.json, session.origin, program_name());
    // Room for a block of text and its last event: the signal-time finish
    // then rarely allocates.
    w.json.out.reserve(flush_bytes + 4096);
    flush_out(w);
    std::lock_guard lock(w.thread_mutex);
    w.closed = false;
}

void writer_ensure_thread() noexcept {
    writer_state& w = ws();
    if (w.thread_started.load(std::memory_order_acquire)) return;
    std::lock_guard lock(w.thread_mutex);
    if (w.thread_started.load(std::memory_order_relaxed) || w.closed) return;
    {
        std::lock_guard wake(w.wake_mutex);
        w.stop_requested = false;
    }
    // Made with SIGINT and SIGTERM blocked (the mask is inherited): the
    // trace's signal handler waits for this thread, so it must never run on it.
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &block, &old);
    try {
        w.thread = new std::thread([&w] { writer_main(w); });
        w.thread_started.store(true, std::memory_order_release);
    } catch (...) {
        // No thread: events stay in the buffers (and the fullest drop) until stop().
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void writer_finish() noexcept {
    writer_state& w = ws();
    std::thread* t = nullptr;
    {
        std::lock_guard lock(w.thread_mutex);
        w.closed = true;
        t = std::exchange(w.thread, nullptr);
    }
    if (t != nullptr) {
        {
            std::lock_guard wake(w.wake_mutex);
            w.stop_requested = true;
        }
        w.wake.notify_all();
        t->join();
        delete t;
        w.thread_tid.store(0, std::memory_order_release);
    }
    if (w.signal_done.load(std::memory_order_acquire) == 0 && w.fd >= 0) finish(w, true);
    w.thread_started.store(false, std::memory_order_release);
}

void writer_finish_from_signal() noexcept {
    writer_state& w = ws();
    // A crash of the writer itself: nobody is left to finish the file.
    const auto self = static_cast<std::uint32_t>(::syscall(SYS_gettid));
    if (w.thread_tid.load(std::memory_order_acquire) == self) return;
    if (w.thread_started.load(std::memory_order_acquire)) {
        w.signal_request.store(1, std::memory_order_release);
        // The writer checks every few milliseconds, then turns the whole
        // spill into JSON, which takes long for a long session: wait while
        // it makes progress, and give up only after 5 s without any.
        std::uint64_t seen = w.progress.load(std::memory_order_acquire);
        for (int idle = 0; idle < 5000 && w.signal_done.load(std::memory_order_acquire) == 0;) {
            timespec ms{0, 1'000'000};
            ::nanosleep(&ms, nullptr);
            const std::uint64_t p = w.progress.load(std::memory_order_acquire);
            idle = p != seen ? 0 : idle + 1;
            seen = p;
        }
    } else if (w.fd >= 0) {
        // Nothing was recorded (the writer starts with the first event).
        static const char footer[] = "\n]}\n";
        [[maybe_unused]] const ssize_t n = ::write(w.fd, footer, sizeof footer - 1);
    }
}

}  // namespace coexec::detail::trace
