// samples/server/http.cpp — see http.hpp.
#include "http.hpp"

#include "json.hpp"

namespace server::http {

std::string_view error_name(int status) {
    switch (status) {
        case 400:
            return "bad_request";
        case 403:
            return "forbidden";
        case 404:
            return "not_found";
        case 405:
            return "method_not_allowed";
        case 413:
            return "payload_too_large";
        case 431:
            return "header_fields_too_large";
        case 500:
            return "internal_error";
        case 501:
            return "not_implemented";
        case 503:
            return "service_unavailable";
        case 505:
            return "http_version_not_supported";
        default:
            return "error";
    }
}

response json_response(int status, std::string body) {
    response r{static_cast<beast_http::status>(status), 11};
    r.set(beast_http::field::content_type, "application/json");
    r.body() = std::move(body);
    r.body() += '\n';
    return r;
}

response json_error(int status, std::string_view detail) {
    return json_error(status, error_name(status), detail);
}

response json_error(int status, std::string_view error, std::string_view detail) {
    json_object o;
    o.add("error", error).add("detail", detail);
    return json_response(status, o.str());
}

}  // namespace server::http
