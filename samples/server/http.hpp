// samples/server/http.hpp — just enough HTTP/1.1 for the sample server.
//
// A request head is parsed in one go once its blank line has arrived (the
// connection loop buffers until then), so the parser is a pure function of a
// string: easy to test, nothing to resume. Bodies are not interpreted (every
// route is a GET); the connection reads and drops them so that keep-alive
// framing stays correct.
//
// What is refused, and how (the usual choices of nginx and friends):
//   - head larger than limits::max_header_bytes        → 431
//   - Content-Length above limits::max_body_bytes      → 413
//   - Transfer-Encoding (chunked bodies)               → 501
//   - anything malformed (request line, header syntax, Content-Length,
//     HTTP/1.1 without Host)                           → 400
//   - an HTTP version other than 1.0 / 1.1             → 505
// Each of those answers closes the connection: after a framing error the
// server cannot know where the next request would start.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace server::http {

struct limits {
    std::size_t max_header_bytes = 8 * 1024;
    std::size_t max_body_bytes = 1024 * 1024;
};

struct request {
    std::string method;
    std::string target;  ///< as sent: "/primes?below=10"
    std::string path;    ///< target before '?' (not decoded: routes are plain ASCII)
    std::string query;   ///< target after '?' (raw; see parse_query)
    int minor_version = 1;
    std::vector<std::pair<std::string, std::string>> headers;  ///< names lower-cased
    std::size_t content_length = 0;
    bool keep_alive = true;

    /// The first header with this (lower-case) name, or nullptr.
    const std::string* header(std::string_view name) const;
};

struct parse_result {
    enum class state { incomplete, complete, error } status = state::incomplete;
    std::size_t head_bytes = 0;  ///< complete: bytes of the head, blank line included
    int error_status = 0;        ///< error: the HTTP status to answer with
    std::string error_detail;    ///< error: why, for the response body
    request req;                 ///< complete: the request
};

/// Parses the request head at the start of `buffer`.
parse_result parse_head(std::string_view buffer, const limits& lim);

struct response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> extra_headers;
    bool close = false;  ///< close the connection after this response
};

/// The bytes on the wire; `keep_alive` picks the Connection header.
std::string serialize(const response& r, bool keep_alive);

std::string_view reason_phrase(int status);

/// Decodes %XX escapes and '+' (as a space, form encoding); nullopt if an
/// escape is malformed.
std::optional<std::string> percent_decode(std::string_view s);

/// "a=1&b=x%20y" → {a: "1", b: "x y"}; nullopt if an escape is malformed.
/// A repeated name keeps its first value.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query);

/// A JSON string literal (quotes included) with the needed escapes.
std::string json_string(std::string_view s);

/// {"error": "<error>", "detail": "<detail>"} with that status.
response json_error(int status, std::string_view error, std::string_view detail);

}  // namespace server::http
