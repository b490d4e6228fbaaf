// samples/server/routes.cpp — the non-template parts of routes.hpp.
#include "routes.hpp"

#include <cctype>
#include <charconv>

#include "coexec/errors.hpp"

namespace server {
namespace {

std::string field(const char* name, std::uint64_t value, bool last = false) {
    return std::string("\"") + name + "\":" + std::to_string(value) + (last ? "" : ",");
}

}  // namespace

std::string stats_json(const coexec::executor_stats& s, std::size_t max_workers) {
    return "{" + field("submitted", s.submitted) + field("completed", s.completed) +
           field("failed", s.failed) + field("cancelled", s.cancelled) + field("queued", s.queued) +
           field("running", s.running) + field("workers_alive", s.workers_alive) +
           field("respawns", s.respawns) + field("max_workers", max_workers, true) + "}";
}

std::string counters_json(const counters& c, const options& opts) {
    return "{" + field("connections_accepted", c.connections_accepted) +
           field("connections_open", c.connections_open) + field("requests", c.requests) +
           field("responses_2xx", c.responses_2xx) + field("responses_4xx", c.responses_4xx) +
           field("responses_5xx", c.responses_5xx) + field("rejected_busy", c.rejected_busy) +
           field("pool_failures", c.pool_failures) + field("pending", c.pending) +
           field("pending_peak", c.pending_peak) + field("max_pending", opts.max_pending, true) +
           "}";
}

http::response failure_response(std::exception_ptr error, counters& stats) {
    ++stats.pool_failures;
    try {
        std::rethrow_exception(error);
    } catch (const coexec::worker_died& e) {
        // The worker running this request died (killed, crashed, OOM). Only
        // this request fails; the pool has already started a replacement, so
        // retrying is reasonable.
        auto r = http::json_error(503, "worker_died", e.what());
        r.extra_headers.emplace_back("Retry-After", "1");
        return r;
    } catch (const coexec::deadline_exceeded& e) {
        return http::json_error(503, "deadline_exceeded", e.what());
    } catch (const coexec::broken_pool& e) {
        return http::json_error(503, "broken_pool", e.what());
    } catch (const coexec::executor_shutdown& e) {
        return http::json_error(503, "shutting_down", e.what());
    } catch (const std::exception& e) {
        return http::json_error(500, "internal_error", e.what());
    } catch (...) {
        return http::json_error(500, "internal_error", "unknown exception");
    }
}

http::response busy_response(const options& opts) {
    auto r = http::json_error(503, "busy",
                              "more than " + std::to_string(opts.max_pending) +
                                  " requests are waiting for the pools; retry later");
    r.extra_headers.emplace_back("Retry-After", "1");
    return r;
}

std::optional<std::int64_t> parse_bounded(const std::string& s, std::int64_t max) {
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || v < 0 || v > max) {
        return std::nullopt;
    }
    return v;
}

}  // namespace server
