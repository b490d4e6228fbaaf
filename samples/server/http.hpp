// samples/server/http.hpp — the HTTP vocabulary of the server, on Boost.Beast.
//
// Beast parses requests (connection.cpp) and serializes responses; this file
// names the types and builds the JSON responses every route and error uses:
//   {"error": "<name>", "detail": "<why>"}
// where <name> is the status's own name (error_name): payload_too_large for
// 413, not_implemented for 501, and so on.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <string>
#include <string_view>

namespace server::http {

namespace beast_http = boost::beast::http;
using request = beast_http::request<beast_http::string_body>;
using response = beast_http::response<beast_http::string_body>;

struct limits {
    std::size_t max_header_bytes = 8 * 1024;   ///< request line + fields; above: 431
    std::size_t max_body_bytes = 1024 * 1024;  ///< above: 413, refused before it is read
};

/// The snake_case name of an error status ("payload_too_large" for 413);
/// "error" for a status without one.
std::string_view error_name(int status);

/// A 200-style response with a JSON body (a newline is appended).
response json_response(int status, std::string body);

/// {"error": error_name(status), "detail": detail} with that status.
response json_error(int status, std::string_view detail);

/// {"error": error, "detail": detail}: for a cause more precise than the
/// status's name (503 "worker_died", 503 "busy", ...).
response json_error(int status, std::string_view error, std::string_view detail);

}  // namespace server::http
