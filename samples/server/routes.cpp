// samples/server/routes.cpp — the non-template parts of routes.hpp.
#include "routes.hpp"

#include <boost/url/parse.hpp>
#include <charconv>

#include "coexec/errors.hpp"

namespace server {

json_object stats_json(const coexec::executor_stats& s, std::size_t max_workers) {
    json_object o;
    o.add("submitted", s.submitted)
        .add("completed", s.completed)
        .add("failed", s.failed)
        .add("cancelled", s.cancelled)
        .add("queued", s.queued)
        .add("running", s.running)
        .add("workers_alive", s.workers_alive)
        .add("respawns", s.respawns)
        .add("max_workers", max_workers);
    return o;
}

json_object counters_json(const counters& c, const options& opts) {
    json_object o;
    o.add("connections_accepted", c.connections_accepted)
        .add("connections_open", c.connections_open)
        .add("requests", c.requests)
        .add("responses_2xx", c.responses_2xx)
        .add("responses_4xx", c.responses_4xx)
        .add("responses_5xx", c.responses_5xx)
        .add("rejected_busy", c.rejected_busy)
        .add("pool_failures", c.pool_failures)
        .add("pending", c.pending)
        .add("pending_peak", c.pending_peak)
        .add("max_pending", opts.max_pending);
    return o;
}

std::optional<target> parse_target(std::string_view raw) {
    auto url = boost::urls::parse_origin_form(raw);
    if (!url) return std::nullopt;
    target t;
    t.path = url->encoded_path();
    for (const auto& param : url->params()) {
        t.query.emplace(param.key, param.value);  // keeps the first of a repeated name
    }
    return t;
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
        r.set(http::beast_http::field::retry_after, "1");
        return r;
    } catch (const coexec::deadline_exceeded& e) {
        return http::json_error(503, "deadline_exceeded", e.what());
    } catch (const coexec::broken_pool& e) {
        return http::json_error(503, "broken_pool", e.what());
    } catch (const coexec::executor_shutdown& e) {
        return http::json_error(503, "shutting_down", e.what());
    } catch (const std::exception& e) {
        return http::json_error(500, e.what());
    } catch (...) {
        return http::json_error(500, "unknown exception");
    }
}

http::response busy_response(const options& opts) {
    auto r = http::json_error(503, "busy",
                              "more than " + std::to_string(opts.max_pending) +
                                  " requests are waiting for the pools; retry later");
    r.set(http::beast_http::field::retry_after, "1");
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
