// lib/trace/recorder.cpp — the session (start/stop, COEXEC_TRACE, exit and
// signal endings, fork) and the per-thread buffers. See recorder.hpp.
#include "trace/recorder.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <new>
#include <utility>

#include "coexec/errors.hpp"
#include "trace/names.hpp"
#include "trace/writer.hpp"

namespace coexec::detail::trace {

std::atomic<bool> g_recording{false};

namespace {

// The endings a trace can still finish the file for: interrupts and
// terminations, and crashes (the writer thread, which makes the JSON, is
// most likely intact; the crash then takes its default action, core and all).
constexpr int traced_signals[] = {SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

struct control {
    std::mutex mutex;  // start/stop, the writer thread's start
    session_info session;
    // Published with release after `session` is written; a thread that sees
    // a new number (acquire) sees the session's options.
    std::atomic<std::uint64_t> number{0};
    std::atomic<std::size_t> capacity{0};  // the session's buffer size, for claim()
    std::atomic<thread_buffer*> buffers{nullptr};
    std::atomic<std::uint32_t> buffer_count{0};
    pid_t owner = 0;  // the process that writes the file (not a fork child)
    std::string path;
    bool hooks_installed = false;  // atexit and atfork, once
    bool signals_installed[std::size(traced_signals)] = {};
};

control& ctl() {
    static auto* c = new control();  // never destroyed: used at exit and by signal handlers
    return *c;
}

/// Per-thread state: plain data (no constructor or destructor), so it stays
/// usable while other thread-local objects are destroyed; `exit_guard`
/// below abandons the buffer at thread exit.
struct thread_state {
    thread_buffer* buf;
    std::uint64_t session;  // the session `buf` was checked against
    std::uint64_t flow_seq;
    std::uint32_t tid;
    std::uint32_t name_override;
    bool exiting;
    char track_name[48];  // set by name_this_thread; else the OS thread name is used
};
thread_local thread_state t_state;

struct exit_guard {
    bool armed = false;
    ~exit_guard() {
        t_state.exiting = true;
        if (thread_buffer* b = std::exchange(t_state.buf, nullptr)) {
            b->state.store(thread_buffer::abandoned, std::memory_order_release);
        }
    }
};
thread_local exit_guard t_exit_guard;

std::size_t round_capacity(std::size_t n) {
    if (n < 8) n = 8;
    if (n > (std::size_t{1} << 24)) n = std::size_t{1} << 24;
    return std::bit_ceil(n);
}

std::uint32_t initial_thread_name(const thread_state& t) {
    if (t.track_name[0] != '\0') return intern(t.track_name);
    const std::uint32_t tid = t.tid;
    char buf[32] = {};
    if (::pthread_getname_np(::pthread_self(), buf, sizeof buf) != 0 || buf[0] == '\0') {
        std::snprintf(buf, sizeof buf, "thread %u", tid);
    }
    return intern(buf);
}

// Makes sure this thread owns a buffer of the current session's size.
void claim(thread_state& t) noexcept {
    if (t.exiting) return;
    control& c = ctl();
    const std::uint64_t number = c.number.load(std::memory_order_acquire);
    const std::size_t capacity = c.capacity.load(std::memory_order_relaxed);
    t.session = number;
    if (t.tid == 0) t.tid = this_tid();
    if (t.buf != nullptr) {
        if (t.buf->capacity == capacity) return;
        t.buf->state.store(thread_buffer::abandoned, std::memory_order_release);
        t.buf = nullptr;
    }
    t_exit_guard.armed = true;  // first use on this thread registers its destructor
    thread_buffer* b = nullptr;
    for (thread_buffer* x = c.buffers.load(std::memory_order_acquire); x != nullptr; x = x->next) {
        int expected = thread_buffer::free;
        if (x->capacity == capacity &&
            x->state.compare_exchange_strong(expected, thread_buffer::claiming,
                                             std::memory_order_acquire)) {
            b = x;
            break;
        }
    }
    if (b == nullptr) {
        b = new (std::nothrow) thread_buffer();
        record* slots = b != nullptr ? new (std::nothrow) record[capacity] : nullptr;
        if (slots == nullptr) {
            delete b;
            return;  // out of memory: this thread records nothing
        }
        b->slots = slots;
        b->capacity = capacity;
        b->index = c.buffer_count.fetch_add(1, std::memory_order_relaxed);
        b->next = c.buffers.load(std::memory_order_relaxed);
        while (!c.buffers.compare_exchange_weak(b->next, b, std::memory_order_release,
                                                std::memory_order_relaxed)) {
        }
    }
    b->pid = static_cast<std::uint32_t>(::getpid());
    b->tid = t.tid;
    b->thread_name.store(initial_thread_name(t), std::memory_order_relaxed);
    b->state.store(thread_buffer::owned, std::memory_order_release);  // publishes the identity
    t.buf = b;
    writer_ensure_thread();
}

// ---- how a recording ends: exit, signals, fork ----

void stop_at_exit() {
    if (ctl().owner == ::getpid()) coexec::trace::stop();
}

void on_fork_child() {
    // The child has one thread and no writer: it records nothing. (A process
    // worker ships its own spans to the parent: lib/trace/process_link.cpp.)
    g_recording.store(false, std::memory_order_relaxed);
}

void on_signal(int sig) {
    const int saved = errno;
    if (ctl().owner == ::getpid() && g_recording.load(std::memory_order_relaxed)) {
        g_recording.store(false, std::memory_order_relaxed);
        writer_finish_from_signal();
    }
    // Now the signal's default action (it is blocked while we run, so it is
    // delivered when the handler returns).
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
    ::raise(sig);
    errno = saved;
}

void install_signal_handlers(control& c) {
    for (std::size_t k = 0; k < std::size(traced_signals); ++k) {
        struct sigaction old {};
        if (::sigaction(traced_signals[k], nullptr, &old) != 0) continue;
        // Only where the program has no handler of its own (nor ignores it).
        if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
        struct sigaction sa {};
        sa.sa_handler = &on_signal;
        sigemptyset(&sa.sa_mask);
        c.signals_installed[k] = ::sigaction(traced_signals[k], &sa, nullptr) == 0;
    }
}

void remove_signal_handlers(control& c) {
    for (std::size_t k = 0; k < std::size(traced_signals); ++k) {
        if (!c.signals_installed[k]) continue;
        c.signals_installed[k] = false;
        struct sigaction cur {};
        if (::sigaction(traced_signals[k], nullptr, &cur) != 0) continue;
        if ((cur.sa_flags & SA_SIGINFO) == 0 && cur.sa_handler == &on_signal) {
            struct sigaction dfl {};
            dfl.sa_handler = SIG_DFL;
            ::sigaction(traced_signals[k], &dfl, nullptr);
        }
    }
}

std::string expand_pid(std::string path) {
    for (std::size_t at = path.find("%p"); at != std::string::npos; at = path.find("%p", at)) {
        const std::string pid = std::to_string(::getpid());
        path.replace(at, 2, pid);
        at += pid.size();
    }
    return path;
}

}  // namespace

// ---- the recording side ----

std::uint32_t this_tid() noexcept {
    thread_state& t = t_state;
    if (t.tid == 0) t.tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
    return t.tid;
}

bool push(const record& r) noexcept {
    thread_state& t = t_state;
    if (t.session != ctl().number.load(std::memory_order_relaxed) || t.buf == nullptr)
        [[unlikely]] {
        claim(t);
        if (t.buf == nullptr) return false;
    }
    thread_buffer& b = *t.buf;
    // Only this thread writes `tail`, so relaxed is enough to read it back.
    const std::uint64_t tail = b.tail.load(std::memory_order_relaxed);
    if (tail - b.cached_head >= b.capacity) {
        b.cached_head = b.head.load(std::memory_order_acquire);
        if (tail - b.cached_head >= b.capacity) {
            b.dropped.store(b.dropped.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
            return false;
        }
    }
    b.slots[tail & (b.capacity - 1)] = r;
    b.tail.store(tail + 1, std::memory_order_release);  // publishes the record to the writer
    return true;
}

std::uint64_t next_flow_id() noexcept {
    thread_state& t = t_state;
    if (t.session != ctl().number.load(std::memory_order_relaxed) || t.buf == nullptr) claim(t);
    // Unique per process while fewer than 4096 threads record at once, and
    // below 2^53 so that JavaScript viewers read it exactly.
    const std::uint64_t index = t.buf != nullptr ? t.buf->index + 1 : 0;
    return ((index & 0xfff) << 40) | (++t.flow_seq & ((std::uint64_t{1} << 40) - 1));
}

void name_this_thread(const char* name) noexcept {
    thread_state& t = t_state;
    std::strncpy(t.track_name, name, sizeof t.track_name - 1);
    t.track_name[sizeof t.track_name - 1] = '\0';
    // Release: the writer reads the interned text behind the id.
    if (t.buf != nullptr) t.buf->thread_name.store(intern(name), std::memory_order_release);
}

thread_buffer* all_buffers() noexcept {
    return ctl().buffers.load(std::memory_order_acquire);
}

const session_info& current_session() noexcept {
    return ctl().session;
}

// Drops counted by buffers recycled during this session (their threads
// ended before stop()), so that the session's total keeps them.
std::atomic<std::uint64_t> g_retired_dropped{0};

std::uint64_t retired_dropped() noexcept {
    return g_retired_dropped.load(std::memory_order_relaxed);
}

void recycle(thread_buffer& b) noexcept {
    // No owner any more: the writer may touch the owner's fields.
    if (b.dropped_reported > b.dropped_baseline)
        g_retired_dropped.fetch_add(b.dropped_reported - b.dropped_baseline,
                                    std::memory_order_relaxed);
    b.head.store(b.tail.load(std::memory_order_acquire), std::memory_order_relaxed);
    b.cached_head = b.head.load(std::memory_order_relaxed);
    b.dropped.store(0, std::memory_order_relaxed);
    b.dropped_reported = 0;
    b.dropped_baseline = 0;
    b.meta_session = 0;
    b.state.store(thread_buffer::free, std::memory_order_release);
}

std::uint32_t name_override() noexcept {
    return t_state.name_override;
}

std::uint32_t push_name_id(std::uint32_t id) noexcept {
    return std::exchange(t_state.name_override, id);
}

std::uint32_t push_name(std::string_view name) noexcept {
    return push_name_id(intern(name));
}

void pop_name(std::uint32_t previous) noexcept {
    t_state.name_override = previous;
}

}  // namespace coexec::detail::trace

// ---- the public API ----

namespace coexec::trace {

using namespace coexec::detail::trace;

void start(const std::string& path, options opts) {
    control& c = ctl();
    std::lock_guard lock(c.mutex);
    if (g_recording.load(std::memory_order_relaxed)) {
        throw error("coexec::trace::start: a trace is already recording to " + c.path);
    }
    session_info s;
    s.number = c.session.number + 1;
    s.origin = now();
    s.capacity = round_capacity(opts.buffer_events);
    if (opts.flush_interval.count() <= 0) opts.flush_interval = std::chrono::milliseconds(1);
    s.opts = opts;
    const std::string file = expand_pid(path);
    writer_open(file, s);  // throws if the file cannot be made
    c.path = file;
    c.session = s;
    c.owner = ::getpid();
    // Nothing records now (and the last writer has gone): leftovers of an
    // earlier session are dropped, and abandoned buffers are free again.
    for (thread_buffer* b = c.buffers.load(std::memory_order_acquire); b != nullptr; b = b->next) {
        if (b->state.load(std::memory_order_acquire) == thread_buffer::abandoned) {
            recycle(*b);
        } else {
            b->head.store(b->tail.load(std::memory_order_acquire), std::memory_order_release);
            b->dropped_baseline = b->dropped.load(std::memory_order_relaxed);
            b->dropped_reported = b->dropped_baseline;
        }
    }
    if (!c.hooks_installed) {
        c.hooks_installed = true;
        std::atexit(&stop_at_exit);
        ::pthread_atfork(nullptr, nullptr, &on_fork_child);
    }
    g_retired_dropped.store(0, std::memory_order_relaxed);  // earlier sessions' drops
    install_signal_handlers(c);
    c.capacity.store(s.capacity, std::memory_order_relaxed);
    c.number.store(s.number, std::memory_order_release);
    g_recording.store(true, std::memory_order_release);
}

void stop() {
    control& c = ctl();
    std::lock_guard lock(c.mutex);
    if (!g_recording.exchange(false, std::memory_order_acq_rel)) return;
    writer_finish();
    remove_signal_handlers(c);
}

bool recording() noexcept {
    return g_recording.load(std::memory_order_relaxed);
}

std::string path() {
    control& c = ctl();
    std::lock_guard lock(c.mutex);
    return c.path;
}

std::uint64_t dropped_events() noexcept {
    std::uint64_t n = detail::trace::retired_dropped();
    for (thread_buffer* b = all_buffers(); b != nullptr; b = b->next) {
        const std::uint64_t d = b->dropped.load(std::memory_order_relaxed);
        if (d > b->dropped_baseline) n += d - b->dropped_baseline;
    }
    return n;
}

name::name(std::string_view task_name) : m_previous(~std::uint32_t{0}) {
    if (on()) m_previous = push_name(task_name);
}

name::~name() {
    if (m_previous != ~std::uint32_t{0}) pop_name(m_previous);
}

}  // namespace coexec::trace

namespace {

// COEXEC_TRACE=out.json: record the whole run. Read once, before main, in
// every program linked with coexec (this file is linked whenever any event
// site is, since it defines the flag they read). The variable is removed so
// that programs this one starts do not write the same file; a spawned
// process_pool worker (COEXEC_PROCESS_WORKER) never records by itself, nor
// does an MPI rank other than 0 (its launcher names the rank in the
// environment before main): rank 0's trace draws the worker ranks
// (lib/trace/rank_link.hpp), and they would all write the same file.
bool worker_rank() {
    for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) {
        const char* rank = std::getenv(v);
        if (rank != nullptr && rank[0] != '\0' && std::strcmp(rank, "0") != 0) return true;
    }
    return false;
}

const bool traced_from_environment = [] {
    const char* path = std::getenv("COEXEC_TRACE");
    if (path == nullptr || path[0] == '\0' || std::getenv("COEXEC_PROCESS_WORKER") != nullptr ||
        worker_rank()) {
        return false;
    }
    const std::string p = path;
    ::unsetenv("COEXEC_TRACE");
    try {
        coexec::trace::start(p);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "coexec: COEXEC_TRACE=%s: %s\n", p.c_str(), e.what());
        return false;
    }
    return true;
}();

}  // namespace
