// samples/server/http.cpp — request-head parsing and response formatting.
#include "http.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace server::http {
namespace {

constexpr std::string_view crlf = "\r\n";

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// RFC 9110 "tchar": what a method or a header name may contain.
bool is_token_char(char c) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

// True if the comma-separated header value lists `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        auto comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

parse_result fail(int status, std::string detail) {
    parse_result r;
    r.status = parse_result::state::error;
    r.error_status = status;
    r.error_detail = std::move(detail);
    return r;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

const std::string* request::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (k == name) return &v;
    }
    return nullptr;
}

parse_result parse_head(std::string_view buffer, const limits& lim) {
    auto end = buffer.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        // Bare-LF line endings are refused rather than waited on: without this
        // a client sending "\n\n" would sit until the header timeout.
        if (buffer.find("\n\n") != std::string_view::npos) {
            return fail(400, "lines must end with CRLF");
        }
        if (buffer.size() > lim.max_header_bytes) {
            return fail(
                431, "the request head exceeds " + std::to_string(lim.max_header_bytes) + " bytes");
        }
        return {};  // incomplete: read more
    }
    const std::size_t head_bytes = end + 4;
    if (head_bytes > lim.max_header_bytes) {
        return fail(431,
                    "the request head exceeds " + std::to_string(lim.max_header_bytes) + " bytes");
    }

    std::string_view head = buffer.substr(0, end + 2);  // each line ends with CRLF
    parse_result result;
    request& req = result.req;

    // Request line: METHOD SP request-target SP HTTP/1.x
    auto line_end = head.find(crlf);
    std::string_view line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        return fail(400, "the request line must be: METHOD target HTTP/1.1");
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method)) return fail(400, "invalid method");
    // Origin form only ("/path?query"); control characters and spaces are invalid.
    if (target.empty() || target.front() != '/' ||
        std::any_of(target.begin(), target.end(),
                    [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
        return fail(400, "the request target must be an absolute path");
    }
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        !std::isdigit(static_cast<unsigned char>(version[5])) ||
        !std::isdigit(static_cast<unsigned char>(version[7]))) {
        return fail(400, "invalid HTTP version");
    }
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
        return fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
    }
    req.method = std::string(method);
    req.target = std::string(target);
    req.minor_version = version[7] - '0';
    auto q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));

    // Header fields: name ":" OWS value OWS
    bool have_length = false;
    while (!head.empty()) {
        line_end = head.find(crlf);
        line = head.substr(0, line_end);
        head.remove_prefix(line_end + 2);
        if (line.front() == ' ' || line.front() == '\t') {
            return fail(400, "obsolete header line folding is not accepted");
        }
        auto colon = line.find(':');
        if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
            return fail(400, "malformed header line");
        }
        std::string_view value = trim(line.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), [](char c) {
                return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f;
            })) {
            return fail(400, "control character in a header value");
        }
        std::string name = to_lower(line.substr(0, colon));
        if (name == "content-length") {
            std::size_t n = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (value.empty() || ec != std::errc{} || ptr != value.data() + value.size()) {
                return fail(400, "invalid Content-Length");
            }
            // Two different lengths are a request-smuggling vector: refuse.
            if (have_length && n != req.content_length) {
                return fail(400, "conflicting Content-Length headers");
            }
            have_length = true;
            req.content_length = n;
        }
        req.headers.emplace_back(std::move(name), std::string(value));
    }

    if (req.minor_version == 1 && req.header("host") == nullptr) {
        return fail(400, "HTTP/1.1 requests need a Host header");
    }
    if (req.header("transfer-encoding") != nullptr) {
        return fail(501, "Transfer-Encoding request bodies are not supported");
    }
    if (req.content_length > lim.max_body_bytes) {
        return fail(413,
                    "the request body exceeds " + std::to_string(lim.max_body_bytes) + " bytes");
    }
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes it
    // unless the client asks for keep-alive.
    const std::string* connection = req.header("connection");
    if (req.minor_version == 1) {
        req.keep_alive = connection == nullptr || !has_token(*connection, "close");
    } else {
        req.keep_alive = connection != nullptr && has_token(*connection, "keep-alive");
    }
    result.status = parse_result::state::complete;
    result.head_bytes = head_bytes;
    return result;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 413:
            return "Content Too Large";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

std::string serialize(const response& r, bool keep_alive) {
    std::string out;
    out.reserve(128 + r.body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(r.status);
    out += ' ';
    out += reason_phrase(r.status);
    out += "\r\nServer: coexec-sample\r\nContent-Type: ";
    out += r.content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(r.body.size());
    out += keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
    for (const auto& [k, v] : r.extra_headers) {
        out += k;
        out += ": ";
        out += v;
        out += crlf;
    }
    out += crlf;
    out += r.body;
    return out;
}

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+') {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

std::optional<std::map<std::string, std::string>> parse_query(std::string_view query) {
    std::map<std::string, std::string> out;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        auto name = percent_decode(pair.substr(0, eq));
        auto value =
            percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (!name || !value) return std::nullopt;
        out.emplace(std::move(*name), std::move(*value));  // emplace keeps the first
    }
    return out;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
    return out;
}

response json_error(int status, std::string_view error, std::string_view detail) {
    response r;
    r.status = status;
    r.body = "{\"error\":" + json_string(error) + ",\"detail\":" + json_string(detail) + "}\n";
    return r;
}

}  // namespace server::http
