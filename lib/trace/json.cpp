// lib/trace/json.cpp — records → Chrome trace-event JSON. See json.hpp.
//
// Flow events (s/t/f) must sit inside a slice on their thread for Perfetto
// to bind them, so each flow point gets a slice: the task's own, or a 2 ns
// "submit"/"resume" marker, with the flow event 1 ns into it (never on a
// slice's first nanosecond, where its order against the slice would be up
// to the viewer's sort).
#include "trace/json.hpp"

#include <algorithm>
#include <charconv>

#include "trace/names.hpp"

namespace coexec::detail::trace {
namespace {

constexpr std::int64_t marker_ns = 2;  // the width of submit/resume marker slices

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
    event(json_sink& j, char ph, std::string_view cat, std::string_view escaped_name,
          std::uint32_t pid, std::uint32_t tid)
        : m_j(j), m_o(j.out) {
        m_o += j.first ? "\n{\"ph\":\"" : ",\n{\"ph\":\"";
        j.first = false;
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
        append_micros(m_o, absolute_ns - m_j.origin);
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

    json_sink& m_j;
    std::string& m_o;
    bool m_args = false;
};

void emit_task(json_sink& j, std::uint32_t pid, std::uint32_t tid, const record& r) {
    const std::int64_t start = r.ts;
    const std::int64_t end = std::max(static_cast<std::int64_t>(r.a), start + marker_ns);
    const auto submitted = static_cast<std::int64_t>(r.c);
    const bool flow = r.b != 0 && r.what == kind::task;
    if (flow && submitted >= j.origin && r.aux != 0) {
        // The submit marker on the submitting thread (of this process).
        event(j, 'X', "submit", escaped(j.name_submit), j.self_pid, r.aux)
            .ts(submitted)
            .dur(marker_ns);
        event(j, 's', "flow", "task", j.self_pid, r.aux).ts(submitted + 1).id(r.b);
    }
    {
        event e(j, 'X', r.what == kind::task ? "task" : "resumed", escaped(r.name), pid, tid);
        e.ts(start).dur(end - start);
        if (r.what == kind::task && submitted != 0 && submitted <= start) {
            e.arg_micros("queued_us", start - submitted);
        }
        if ((r.flags & task_flag::died) != 0) e.arg_string("ended", "its worker died");
        if ((r.flags & task_flag::killed) != 0) e.arg_string("ended", "its worker was killed");
    }
    if (flow) {
        event(j, 't', "flow", "task", pid, tid).ts(start + (end - start) / 2).id(r.b);
    }
}

}  // namespace

void json_begin(json_sink& j, std::int64_t origin, std::string_view program_name) {
    j.first = true;
    j.origin = origin;
    j.name_submit = intern_literal("submit");
    j.name_resume = intern_literal("resume");
    j.name_buffer_full = intern_literal("trace buffer full: events dropped");
    j.out = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
    event(j, 'M', "", "process_name", j.self_pid, j.self_pid)
        .arg_string("name", escaped(intern(program_name)));
    event(j, 'M', "", "process_sort_index", j.self_pid, j.self_pid).arg_number("sort_index", 0);
}

void json_record(json_sink& j, std::uint32_t thread_pid, std::uint32_t thread_tid,
                 const record& r) {
    // Older records are leftovers of an earlier session.
    if (r.ts < j.origin && r.what != kind::worker_track && r.what != kind::thread_name) return;
    const std::uint32_t pid = r.track != 0 ? track_process(r.track) : thread_pid;
    const std::uint32_t tid = r.track != 0 ? r.track : thread_tid;
    switch (r.what) {
        case kind::task:
        case kind::resumed_run:
            emit_task(j, pid, tid, r);
            break;
        case kind::awaited:
            event(j, 'X', "await", escaped(j.name_resume), pid, tid).ts(r.ts).dur(marker_ns);
            event(j, 'f', "flow", "task", pid, tid).ts(r.ts + 1).id(r.b).raw(",\"bp\":\"e\"");
            break;
        case kind::async_begin:
        case kind::async_end: {
            const bool io = r.flags == static_cast<std::uint8_t>(async_cat::io);
            const bool begin = r.what == kind::async_begin;
            event e(j, begin ? 'b' : 'e', io ? "io" : "stage", escaped(r.name), pid, tid);
            e.ts(r.ts).id(r.b);
            if (io && begin && static_cast<std::int64_t>(r.c) >= 0) e.arg_number("fd", r.c);
            if (io && !begin) e.arg_signed("result", static_cast<std::int64_t>(r.c));
            if (!io && begin) e.arg_number("items", r.c);
            break;
        }
        case kind::instant: {
            event e(j, 'i', "coexec", escaped(r.name), pid, tid);
            e.ts(r.ts).raw(",\"s\":\"t\"");
            if (r.aux != 0) e.arg_string("reason", escaped(r.aux));
            if (r.c != 0) e.arg_string("task", escaped(static_cast<std::uint32_t>(r.c)));
            break;
        }
        case kind::counter:
            event(j, 'C', "", escaped(r.name), j.self_pid, j.self_pid)
                .ts(r.ts)
                .arg_number("queued", r.a)
                .arg_number("in flight", r.b)
                .arg_number("workers alive", r.c);
            break;
        case kind::worker_track:
            event(j, 'M', "", "process_name", pid, tid).arg_string("name", escaped(r.name));
            event(j, 'M', "", "thread_name", pid, tid).arg_string("name", escaped(r.aux));
            event(j, 'M', "", "process_sort_index", pid, tid).arg_number("sort_index", r.c);
            break;
        case kind::thread_name:
            event(j, 'M', "", "thread_name", pid, tid).arg_string("name", escaped(r.name));
            break;
        case kind::dropped:
            event(j, 'i', "coexec", escaped(j.name_buffer_full), pid, tid)
                .ts(r.ts)
                .raw(",\"s\":\"t\"")
                .arg_number("dropped", r.c);
            break;
        case kind::spill_thread:
            break;  // the spill's reader consumes these
    }
}

void json_end(json_sink& j, std::uint64_t dropped, std::uint64_t lost, std::size_t buffer_events) {
    j.out += "\n],\"otherData\":{\"producer\":\"coexec::trace\",\"dropped_events\":\"";
    append_number(j.out, dropped);
    if (lost != 0) {
        j.out += "\",\"events_lost_writing\":\"";
        append_number(j.out, lost);
    }
    j.out += "\",\"buffer_events_per_thread\":\"";
    append_number(j.out, buffer_events);
    j.out += "\"}}\n";
}

}  // namespace coexec::detail::trace
