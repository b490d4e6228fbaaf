// samples/server/routes.hpp — the endpoints, written once for any CPU executor.
//
//   GET /health                  {"status":"ok"}
//   GET /primes?below=N          primes below N, counted on the CPU executor
//   GET /wordcount?path=REL      file read on the I/O thread_pool, words counted
//                                on the CPU executor; REL confined to --root
//   GET /stats                   both pools' executor_stats plus server counters
//
// `routes<Cpu>` is instantiated three ways (process_pool, thread_pool,
// inline_executor; main.cpp picks one at start-up): the handlers only use
// what coexec::executor promises (submit, stats, max_workers), so switching
// the CPU strategy is a change of one type. The event loop never computes:
// it submits, then awaits the future with coexec::async_get, which resumes
// the handler on the event-loop thread when the pool is done. (With the
// inline executor submit() computes right there, on the event loop — which is
// what the benchmark shows to be a bad idea.)
//
// Every pool-bound request takes an admission slot first; past --max-pending
// waiting requests the answer is 503 with Retry-After instead of an ever
// longer queue (load shedding keeps latency bounded for those admitted).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>

#include "coexec/asio/async_get.hpp"
#include "coexec/executor.hpp"
#include "coexec/thread_pool.hpp"
#include "files.hpp"
#include "http.hpp"
#include "state.hpp"
#include "work.hpp"

namespace server {

// The non-template helpers (routes.cpp).
std::string stats_json(const coexec::executor_stats& s, std::size_t max_workers);
std::string counters_json(const counters& c, const options& opts);
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
    asio::awaitable<http::response> handle(const http::request& req) {
        std::exception_ptr error;
        try {
            co_return co_await dispatch(req);
        } catch (...) {
            error = std::current_exception();  // no co_await inside a handler: finish below
        }
        co_return failure_response(error, m_stats);
    }

  private:
    asio::awaitable<http::response> dispatch(const http::request& req) {
        const bool known = req.path == "/health" || req.path == "/primes" ||
                           req.path == "/wordcount" || req.path == "/stats";
        if (!known) co_return http::json_error(404, "not_found", "no route for " + req.path);
        if (req.method != "GET") {
            auto r = http::json_error(405, "method_not_allowed", "only GET is served");
            r.extra_headers.emplace_back("Allow", "GET");
            co_return r;
        }
        auto query = http::parse_query(req.query);
        if (!query) co_return http::json_error(400, "bad_request", "malformed query string");

        if (req.path == "/health") {
            http::response r;
            r.body = "{\"status\":\"ok\"}\n";
            co_return r;
        }
        if (req.path == "/stats") co_return stats();
        if (req.path == "/primes") co_return co_await primes(*query);
        co_return co_await wordcount(*query);
    }

    asio::awaitable<http::response> primes(const std::map<std::string, std::string>& query) {
        auto it = query.find("below");
        auto below =
            it == query.end() ? std::nullopt : parse_bounded(it->second, m_opts.max_primes_below);
        if (!below) {
            co_return http::json_error(
                400, "bad_request",
                "below must be an integer from 0 to " + std::to_string(m_opts.max_primes_below));
        }
        if (m_stats.pending >= m_opts.max_pending) co_return busy();
        pending_slot slot(m_stats);
        // A plain function and an integer: valid for a process worker too.
        std::int64_t count = co_await coexec::async_get(m_cpu.submit(&count_primes_below, *below),
                                                        asio::use_awaitable);
        http::response r;
        r.body =
            "{\"below\":" + std::to_string(*below) + ",\"primes\":" + std::to_string(count) + "}\n";
        co_return r;
    }

    asio::awaitable<http::response> wordcount(const std::map<std::string, std::string>& query) {
        auto it = query.find("path");
        if (it == query.end()) co_return http::json_error(400, "bad_request", "missing path=");
        if (m_stats.pending >= m_opts.max_pending) co_return busy();
        pending_slot slot(m_stats);
        // I/O on the I/O pool: a blocking read holds one of its threads, never
        // the event loop and never a CPU worker.
        file_result file = co_await coexec::async_get(
            m_io.submit(&read_confined_file, m_root_fd, it->second, m_opts.max_file_bytes),
            asio::use_awaitable);
        if (file.status != 200) {
            co_return http::json_error(file.status, file.status == 404 ? "not_found" : "refused",
                                       file.detail);
        }
        const std::size_t bytes = file.content.size();
        // The text travels to a process worker by value (serialized); for very
        // large files a coexec::shared_buffer would avoid that copy.
        std::uint64_t words = co_await coexec::async_get(
            m_cpu.submit(&count_words, std::move(file.content)), asio::use_awaitable);
        http::response r;
        r.body = "{\"path\":" + http::json_string(it->second) +
                 ",\"bytes\":" + std::to_string(bytes) + ",\"words\":" + std::to_string(words) +
                 "}\n";
        co_return r;
    }

    http::response stats() const {
        http::response r;
        r.body = "{\"executor\":" + http::json_string(m_cpu_name) +
                 ",\"cpu_pool\":" + stats_json(m_cpu.stats(), m_cpu.max_workers()) +
                 ",\"io_pool\":" + stats_json(m_io.stats(), m_io.max_workers()) +
                 ",\"server\":" + counters_json(m_stats, m_opts) + "}\n";
        return r;
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
