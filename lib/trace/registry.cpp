#include "trace/registry.hpp"

#include <map>
#include <mutex>
#include <vector>

#include "coexec/detail/trace_hooks.hpp"
#include "trace/names.hpp"
#include "trace/recorder.hpp"

namespace coexec::detail::trace {
namespace {

struct entry {
    const executor_track* owner;
    std::uint32_t name;
    stats_fn fn;
    const void* executor;
    bool sampled;
    counter_sample last;
};

struct registry {
    std::mutex mutex;  // held across stats() calls: unregistering waits for them
    std::vector<entry> entries;
    std::map<std::string, std::uint32_t> per_kind;
};

registry& reg() {
    static auto* r = new registry();  // never destroyed: pools may outlive static destruction
    return *r;
}

counter_sample to_sample(std::uint32_t name, const executor_stats& s) {
    return {name, s.queued, s.running, s.workers_alive};
}

}  // namespace

executor_track::executor_track(const char* kind, const std::string& label, stats_fn fn,
                               const void* executor) {
    registry& r = reg();
    std::lock_guard lock(r.mutex);
    m_number = ++r.per_kind[kind];
    m_text = std::string(kind) + " " + std::to_string(m_number) +
             (label.empty() ? std::string() : " " + label);
    m_name = intern(m_text);
    r.entries.push_back(entry{this, m_name, fn, executor, false, {}});
}

executor_track::~executor_track() {
    registry& r = reg();
    bool last = false;
    counter_sample s{};
    {
        std::lock_guard lock(r.mutex);
        for (auto it = r.entries.begin(); it != r.entries.end(); ++it) {
            if (it->owner != this) continue;
            if (on()) {
                s = to_sample(m_name, it->fn(it->executor));
                last = true;
            }
            r.entries.erase(it);
            break;
        }
    }
    // The last sample, so the counters end where the executor did. Pushed
    // outside the registry's lock (a push may start the writer thread).
    if (last) {
        record rec;
        rec.what = kind::counter;
        rec.ts = now();
        rec.name = m_name;
        rec.a = s.queued;
        rec.b = s.in_flight;
        rec.c = s.workers;
        push(rec);
    }
}

void sample_executors(bool force, const std::function<void(const counter_sample&)>& out) {
    registry& r = reg();
    std::lock_guard lock(r.mutex);
    for (entry& e : r.entries) {
        const counter_sample s = to_sample(e.name, e.fn(e.executor));
        if (!force && e.sampled && s.queued == e.last.queued && s.in_flight == e.last.in_flight &&
            s.workers == e.last.workers) {
            continue;
        }
        e.sampled = true;
        e.last = s;
        out(s);
    }
}

void reset_samples() noexcept {
    registry& r = reg();
    std::lock_guard lock(r.mutex);
    for (entry& e : r.entries)
        e.sampled = false;
}

}  // namespace coexec::detail::trace
