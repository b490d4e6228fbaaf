// lib/trace/writer.cpp — records → Chrome trace-event JSON. See writer.hpp.
//
// The file: {"displayTimeUnit":"ns","traceEvents":[ ...events... ],
// "otherData":{...}}. Timestamps are microseconds (with nanosecond
// decimals) since the session started. Flow events (s/t/f) must sit inside
// a slice on their thread for Perfetto to bind them, so each flow point gets
// a slice: the task's own, or a 2 ns "submit"/"resume" marker, with the flow
// event 1 ns into it (never on a slice's first nanosecond, where its order
// against the slice would be up to the viewer's sort).
#include "trace/writer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "trace/names.hpp"
#include "trace/registry.hpp"
#include "util/system_error.hpp"

namespace coexec::detail::trace {
namespace {

constexpr std::size_t flush_bytes = std::size_t{1} << 20;
constexpr std::int64_t marker_ns = 2;  // the width of submit/resume marker slices

struct writer_state {
    // The output, owned by whichever thread is the consumer: the writer
    // thread while it runs, else the thread finishing the session.
    int fd = -1;
    bool failed = false;  // a write failed (disk full...): stop writing, keep draining
    std::string out;
    bool first = true;
    session_info session;
    std::uint32_t self_pid = 0;
    std::uint32_t name_submit = 0, name_resume = 0, name_buffer_full = 0;

    std::mutex thread_mutex;  // starting and taking the thread
    std::thread* thread = nullptr;
    std::atomic<bool> thread_started{false};
    bool closed = true;

    std::mutex wake_mutex;
    std::condition_variable wake;
    bool stop_requested = false;

    std::atomic<int> signal_request{0};
    std::atomic<int> signal_done{0};
};

writer_state& ws() {
    static auto* w = new writer_state();  // never destroyed: used at exit and from signals
    return *w;
}

// ---- JSON text ----

void append_number(std::string& o, std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    o.append(buf, r.ptr);
}

void append_signed(std::string& o, std::int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    o.append(buf, r.ptr);
}

/// Nanoseconds as microseconds with three decimals.
void append_micros(std::string& o, std::int64_t ns) {
    if (ns < 0) ns = 0;
    append_number(o, static_cast<std::uint64_t>(ns) / 1000);
    const auto frac = static_cast<unsigned>(static_cast<std::uint64_t>(ns) % 1000);
    const char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                            static_cast<char>('0' + frac / 10 % 10),
                            static_cast<char>('0' + frac % 10)};
    o.append(digits, 4);
}

void append_hex_id(std::string& o, std::uint64_t id) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, id, 16);
    o += "\"0x";
    o.append(buf, r.ptr);
    o += '"';
}

/// One event: opened by the constructor, closed by the destructor.
class event {
  public:
    event(writer_state& w, char ph, std::string_view cat, std::string_view escaped_name,
          std::uint32_t pid, std::uint32_t tid)
        : m_w(w), m_o(w.out) {
        m_o += w.first ? "\n{\"ph\":\"" : ",\n{\"ph\":\"";
        w.first = false;
        m_o += ph;
        m_o += '"';
        if (!cat.empty()) {
            m_o += ",\"cat\":\"";
            m_o += cat;
            m_o += '"';
        }
        m_o += ",\"name\":\"";
        m_o += escaped_name;
        m_o += "\",\"pid\":";
        append_number(m_o, pid);
        m_o += ",\"tid\":";
        append_number(m_o, tid);
    }
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    ~event() {
        if (m_args) m_o += '}';
        m_o += '}';
    }

    event& ts(std::int64_t absolute_ns) {
        m_o += ",\"ts\":";
        append_micros(m_o, absolute_ns - m_w.session.origin);
        return *this;
    }
    event& dur(std::int64_t ns) {
        m_o += ",\"dur\":";
        append_micros(m_o, ns);
        return *this;
    }
    event& id(std::uint64_t v) {
        m_o += ",\"id\":";
        append_hex_id(m_o, v);
        return *this;
    }
    event& raw(std::string_view text) {
        m_o += text;
        return *this;
    }
    event& arg_number(std::string_view key, std::uint64_t v) {
        open_arg(key);
        append_number(m_o, v);
        return *this;
    }
    event& arg_signed(std::string_view key, std::int64_t v) {
        open_arg(key);
        append_signed(m_o, v);
        return *this;
    }
    event& arg_micros(std::string_view key, std::int64_t ns) {
        open_arg(key);
        append_micros(m_o, ns);
        return *this;
    }
    event& arg_string(std::string_view key, std::string_view escaped_value) {
        open_arg(key);
        m_o += '"';
        m_o += escaped_value;
        m_o += '"';
        return *this;
    }

  private:
    void open_arg(std::string_view key) {
        m_o += m_args ? ",\"" : ",\"args\":{\"";
        m_args = true;
        m_o += key;
        m_o += "\":";
    }

    writer_state& m_w;
    std::string& m_o;
    bool m_args = false;
};

void flush_out(writer_state& w) {
    std::size_t done = 0;
    while (done < w.out.size() && w.fd >= 0 && !w.failed) {
        const ssize_t n = ::write(w.fd, w.out.data() + done, w.out.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && errno != EINTR) {
            w.failed = true;  // the rest of the trace is lost; the program goes on
        }
    }
    w.out.clear();
}

// ---- records → events ----

void emit_task(writer_state& w, std::uint32_t pid, std::uint32_t tid, const record& r) {
    const std::int64_t start = r.ts;
    const std::int64_t end = std::max(static_cast<std::int64_t>(r.a), start + marker_ns);
    const auto submitted = static_cast<std::int64_t>(r.c);
    const bool flow = r.b != 0 && r.what == kind::task;
    if (flow && submitted >= w.session.origin && r.aux != 0) {
        // The submit marker on the submitting thread (of this process).
        event(w, 'X', "submit", escaped(w.name_submit), w.self_pid, r.aux)
            .ts(submitted)
            .dur(marker_ns);
        event(w, 's', "flow", "task", w.self_pid, r.aux).ts(submitted + 1).id(r.b);
    }
    {
        event e(w, 'X', r.what == kind::task ? "task" : "resumed", escaped(r.name), pid, tid);
        e.ts(start).dur(end - start);
        if (r.what == kind::task && submitted != 0 && submitted <= start) {
            e.arg_micros("queued_us", start - submitted);
        }
        if ((r.flags & task_flag::died) != 0) e.arg_string("ended", "its worker died");
        if ((r.flags & task_flag::killed) != 0) e.arg_string("ended", "its worker was killed");
    }
    if (flow) {
        event(w, 't', "flow", "task", pid, tid).ts(start + (end - start) / 2).id(r.b);
    }
}

void emit(writer_state& w, const thread_buffer& b, const record& r) {
    const std::uint32_t pid = r.track != 0 ? track_process(r.track) : b.pid;
    const std::uint32_t tid = r.track != 0 ? r.track : b.tid;
    switch (r.what) {
        case kind::task:
        case kind::resumed_run:
            emit_task(w, pid, tid, r);
            break;
        case kind::awaited:
            event(w, 'X', "await", escaped(w.name_resume), pid, tid).ts(r.ts).dur(marker_ns);
            event(w, 'f', "flow", "task", pid, tid).ts(r.ts + 1).id(r.b).raw(",\"bp\":\"e\"");
            break;
        case kind::async_begin:
        case kind::async_end: {
            const bool io = r.flags == static_cast<std::uint8_t>(async_cat::io);
            const bool begin = r.what == kind::async_begin;
            event e(w, begin ? 'b' : 'e', io ? "io" : "stage", escaped(r.name), pid, tid);
            e.ts(r.ts).id(r.b);
            if (io && begin && static_cast<std::int64_t>(r.c) >= 0) e.arg_number("fd", r.c);
            if (io && !begin) e.arg_signed("result", static_cast<std::int64_t>(r.c));
            if (!io && begin) e.arg_number("items", r.c);
            break;
        }
        case kind::instant: {
            event e(w, 'i', "coexec", escaped(r.name), pid, tid);
            e.ts(r.ts).raw(",\"s\":\"t\"");
            if (r.aux != 0) e.arg_string("reason", escaped(r.aux));
            if (r.c != 0) e.arg_string("task", escaped(static_cast<std::uint32_t>(r.c)));
            break;
        }
        case kind::counter:
            event(w, 'C', "", escaped(r.name), w.self_pid, w.self_pid)
                .ts(r.ts)
                .arg_number("queued", r.a)
                .arg_number("in flight", r.b)
                .arg_number("workers alive", r.c);
            break;
        case kind::worker_track:
            event(w, 'M', "", "process_name", pid, tid).arg_string("name", escaped(r.name));
            event(w, 'M', "", "thread_name", pid, tid).arg_string("name", escaped(r.aux));
            event(w, 'M', "", "process_sort_index", pid, tid).arg_number("sort_index", r.c);
            break;
    }
}

/// Drains every buffer into `w.out` (and the file). The caller is the only consumer.
void drain(writer_state& w) {
    const session_info& s = w.session;
    for (thread_buffer* b = all_buffers(); b != nullptr; b = b->next) {
        const int state = b->state.load(std::memory_order_acquire);
        if (state == thread_buffer::free || state == thread_buffer::claiming) continue;
        const std::uint32_t name = b->thread_name.load(std::memory_order_acquire);
        if (b->meta_session != s.number || b->meta_name != name) {
            b->meta_session = s.number;
            b->meta_name = name;
            event(w, 'M', "", "thread_name", b->pid, b->tid).arg_string("name", escaped(name));
        }
        const std::uint64_t tail = b->tail.load(std::memory_order_acquire);
        std::uint64_t head = b->head.load(std::memory_order_relaxed);
        for (; head != tail; ++head) {
            const record r = b->slots[head & (b->capacity - 1)];
            // Older records are leftovers of an earlier session.
            if (r.ts >= s.origin || r.what == kind::worker_track) emit(w, *b, r);
            if (w.out.size() >= flush_bytes) flush_out(w);
        }
        // Frees the slots for the owner (release: our reads of them came first).
        b->head.store(tail, std::memory_order_release);
        const std::uint64_t dropped = b->dropped.load(std::memory_order_relaxed);
        if (dropped > b->dropped_reported) {
            timespec ts;
            ::clock_gettime(CLOCK_MONOTONIC, &ts);
            event(w, 'i', "coexec", escaped(w.name_buffer_full), b->pid, b->tid)
                .ts(static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec)
                .raw(",\"s\":\"t\"")
                .arg_number("dropped", dropped - b->dropped_reported);
            b->dropped_reported = dropped;
        }
        // Abandoned before we read `tail`: everything its owner wrote is drained.
        if (state == thread_buffer::abandoned) recycle(*b);
    }
}

void sample_counters(writer_state& w, bool force) {
    const std::int64_t t = now();
    sample_executors(force, [&](const counter_sample& c) {
        event(w, 'C', "", escaped(c.name), w.self_pid, w.self_pid)
            .ts(t)
            .arg_number("queued", c.queued)
            .arg_number("in flight", c.in_flight)
            .arg_number("workers alive", c.workers);
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

/// The last pass: drain, (counters), footer, close.
void finish(writer_state& w, bool counters) {
    drain(w);
    if (counters) sample_counters(w, true);
    w.out += "\n],\"otherData\":{\"producer\":\"coexec::trace\",\"dropped_events\":\"";
    append_number(w.out, total_dropped());
    w.out += "\",\"buffer_events_per_thread\":\"";
    append_number(w.out, w.session.capacity);
    w.out += "\"}}\n";
    flush_out(w);
    if (w.fd >= 0) ::close(w.fd);
    w.fd = -1;
}

void writer_main(writer_state& w) {
    using clock = std::chrono::steady_clock;
    const auto interval = w.session.opts.flush_interval;
    const auto slice = std::min<std::chrono::milliseconds>(interval, std::chrono::milliseconds(10));
    auto last = clock::now();
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
            flush_out(w);
            lock.lock();
            last = clock::now();
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
    w.fd = fd;
    w.failed = false;
    w.session = session;
    w.first = true;
    w.self_pid = static_cast<std::uint32_t>(::getpid());
    w.name_submit = intern_literal("submit");
    w.name_resume = intern_literal("resume");
    w.name_buffer_full = intern_literal("trace buffer full: events dropped");
    w.signal_request.store(0, std::memory_order_relaxed);
    w.signal_done.store(0, std::memory_order_relaxed);
    reset_samples();
    w.out = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
    event(w, 'M', "", "process_name", w.self_pid, w.self_pid)
        .arg_string("name", escaped(intern(program_name())));
    event(w, 'M', "", "process_sort_index", w.self_pid, w.self_pid).arg_number("sort_index", 0);
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
    }
    if (w.signal_done.load(std::memory_order_acquire) == 0 && w.fd >= 0) finish(w, true);
    w.thread_started.store(false, std::memory_order_release);
}

void writer_finish_from_signal() noexcept {
    writer_state& w = ws();
    if (w.thread_started.load(std::memory_order_acquire)) {
        w.signal_request.store(1, std::memory_order_release);
        // The writer checks every few milliseconds; give it up to 5 s to
        // write what it holds.
        for (int i = 0; i < 5000 && w.signal_done.load(std::memory_order_acquire) == 0; ++i) {
            timespec ms{0, 1'000'000};
            ::nanosleep(&ms, nullptr);
        }
    } else if (w.fd >= 0) {
        // Nothing was recorded (the writer starts with the first event).
        static const char footer[] = "\n]}\n";
        [[maybe_unused]] const ssize_t n = ::write(w.fd, footer, sizeof footer - 1);
    }
}

}  // namespace coexec::detail::trace
