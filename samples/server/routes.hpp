// samples/server/routes.hpp — the endpoints, written once for any CPU executor.
//
//   GET /health                  {"status":"ok"}
//   GET /primes?below=N          primes below N, counted on the CPU executor
//   GET /wordcount?path=REL      file read on the I/O thread_pool, words counted
//                                on the CPU executor; REL confined to --root
//   GET /stats                   both pools' executor_stats plus server counters
// HEAD is answered as GET without the body; other methods get 405.
//
// `routes<Cpu>` is instantiated three ways (process_pool, thread_pool,
// inline_executor; main.cpp picks one at start-up): the handlers only use
// what coexec::executor promises (submit, stats, max_workers), so switching
// the CPU strategy is a change of one type. The event loop never computes:
// it submits, then awaits the future with coexec::boost_asio::async_get,
// which resumes the handler on the event-loop thread when the pool is done.
// (With the inline executor submit() computes right there, on the event loop
// — which is what the benchmark shows to be a bad idea.)
//
// Every pool-bound request takes an admission slot first; past --max-pending
// waiting requests the answer is 503 with Retry-After instead of an ever
// longer queue (load shedding keeps latency bounded for those admitted).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "coexec/boost_asio/async_get.hpp"
#include "coexec/executor.hpp"
#include "coexec/thread_pool.hpp"
#include "files.hpp"
#include "http.hpp"
#include "json.hpp"
#include "state.hpp"
#include "work.hpp"

namespace server {

namespace net = boost::asio;

// The non-template helpers (routes.cpp).
json_object stats_json(const coexec::executor_stats& s, std::size_t max_workers);
json_object counters_json(const counters& c, const options& opts);
/// A request target in origin form ("/primes?below=10"), decoded by Boost.URL.
struct target {
    std::string path;  ///< as sent (routes are plain ASCII)
    std::map<std::string, std::string>
        query;  ///< percent-decoded; a repeated name keeps its first value
};
/// nullopt if `raw` is not origin form or its escapes are malformed.
std::optional<target> parse_target(std::string_view raw);
/// The response for a request whose handler threw: a worker that died, a
/// deadline, a broken or stopped pool → 503 naming it; anything else → 500.
http::response failure_response(std::exception_ptr error, counters& stats);
/// 503 with Retry-After: the admission bound is reached.
http::response busy_response(const options& opts);
/// A decimal integer in [0, max], or nullopt.
std::optional<std::int64_t> parse_bounded(const std::string& s, std::int64_t max);

/// Counts a request as waiting for a pool for as long as it lives.
class pending_slot {
  public:
    explicit pending_slot(counters& c) : m_c(c) {
        if (++m_c.pending > m_c.pending_peak) m_c.pending_peak = m_c.pending;
    }
    ~pending_slot() { --m_c.pending; }
    pending_slot(const pending_slot&) = delete;
    pending_slot& operator=(const pending_slot&) = delete;

  private:
    counters& m_c;
};

template <coexec::executor Cpu>
class routes {
  public:
    /// All references must outlive the routes (main's frame holds them).
    routes(Cpu& cpu, const char* cpu_name, coexec::thread_pool& io, int root_fd,
           const options& opts, counters& stats)
        : m_cpu(cpu),
          m_cpu_name(cpu_name),
          m_io(io),
          m_root_fd(root_fd),
          m_opts(opts),
          m_stats(stats) {}

    /// Never throws: failures become 4xx/5xx responses.
    net::awaitable<http::response> handle(const http::request& req) {
        std::exception_ptr error;
        try {
            co_return co_await dispatch(req);
        } catch (...) {
            error = std::current_exception();  // no co_await inside a handler: finish below
        }
        co_return failure_response(error, m_stats);
    }

  private:
    net::awaitable<http::response> dispatch(const http::request& req) {
        const auto raw = req.target();
        auto where = parse_target(std::string_view(raw.data(), raw.size()));
        if (!where) co_return http::json_error(400, "malformed request target");
        const std::string& path = where->path;
        const bool known =
            path == "/health" || path == "/primes" || path == "/wordcount" || path == "/stats";
        if (!known) co_return http::json_error(404, "no route for " + path);
        const auto method = req.method();
        if (method != http::beast_http::verb::get && method != http::beast_http::verb::head) {
            auto r = http::json_error(405, "only GET and HEAD are served");
            r.set(http::beast_http::field::allow, "GET, HEAD");
            co_return r;
        }
        if (path == "/health") co_return http::json_response(200, "{\"status\":\"ok\"}");
        if (path == "/stats") co_return stats();
        if (path == "/primes") co_return co_await primes(where->query);
        co_return co_await wordcount(where->query);
    }

    net::awaitable<http::response> primes(const std::map<std::string, std::string>& query) {
        auto it = query.find("below");
        auto below =
            it == query.end() ? std::nullopt : parse_bounded(it->second, m_opts.max_primes_below);
        if (!below) {
            co_return http::json_error(400, "below must be an integer from 0 to " +
                                                std::to_string(m_opts.max_primes_below));
        }
        if (m_stats.pending >= m_opts.max_pending) co_return busy();
        pending_slot slot(m_stats);
        // A plain function and an integer: valid for a process worker too.
        std::int64_t count = co_await coexec::boost_asio::async_get(
            m_cpu.submit(&count_primes_below, *below), net::use_awaitable);
        json_object o;
        o.add("below", *below).add("primes", count);
        co_return http::json_response(200, o.str());
    }

    net::awaitable<http::response> wordcount(const std::map<std::string, std::string>& query) {
        auto it = query.find("path");
        if (it == query.end()) co_return http::json_error(400, "missing path=");
        if (m_stats.pending >= m_opts.max_pending) co_return busy();
        pending_slot slot(m_stats);
        // I/O on the I/O pool: a blocking read holds one of its threads, never
        // the event loop and never a CPU worker.
        file_result file = co_await coexec::boost_asio::async_get(
            m_io.submit(&read_confined_file, m_root_fd, it->second, m_opts.max_file_bytes),
            net::use_awaitable);
        if (file.status != 200) co_return http::json_error(file.status, file.detail);
        const std::size_t bytes = file.content.size();
        // The text travels to a process worker by value (serialized); for very
        // large files a coexec::shared_buffer would avoid that copy.
        std::uint64_t words = co_await coexec::boost_asio::async_get(
            m_cpu.submit(&count_words, std::move(file.content)), net::use_awaitable);
        json_object o;
        o.add("path", it->second).add("bytes", bytes).add("words", words);
        co_return http::json_response(200, o.str());
    }

    http::response stats() const {
        json_object o;
        o.add("executor", m_cpu_name)
            .add("cpu_pool", stats_json(m_cpu.stats(), m_cpu.max_workers()))
            .add("io_pool", stats_json(m_io.stats(), m_io.max_workers()))
            .add("server", counters_json(m_stats, m_opts));
        return http::json_response(200, o.str());
    }

    http::response busy() {
        ++m_stats.rejected_busy;
        return busy_response(m_opts);
    }

    Cpu& m_cpu;
    const char* m_cpu_name;
    coexec::thread_pool& m_io;
    int m_root_fd;
    const options& m_opts;
    counters& m_stats;
};

}  // namespace server
