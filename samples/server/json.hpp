// samples/server/json.hpp — the few JSON objects the server writes.
//
// Every body is a flat object of integers and strings (or nested objects
// written the same way), so a writer of ~30 lines is all it needs; the
// server never reads JSON.
//
//   json_object o;
//   o.add("below", 100).add("primes", 25);
//   o.str()   // {"below":100,"primes":25}
#pragma once

#include <concepts>
#include <string>
#include <string_view>

namespace server {

/// A JSON string literal (quotes included) with the escapes JSON requires.
std::string json_string(std::string_view s);

class json_object {
  public:
    template <std::integral I>
    json_object& add(std::string_view name, I value) {
        return add_raw(name, std::to_string(value));
    }
    json_object& add(std::string_view name, std::string_view value) {
        return add_raw(name, json_string(value));
    }
    json_object& add(std::string_view name, const char* value) {
        return add(name, std::string_view(value));
    }
    /// `json` is inserted as it is (a nested object).
    json_object& add(std::string_view name, const json_object& json) {
        return add_raw(name, json.str());
    }
    std::string str() const { return m_text + "}"; }

  private:
    json_object& add_raw(std::string_view name, const std::string& json) {
        m_text += m_text.size() > 1 ? "," : "";
        m_text += json_string(name);
        m_text += ':';
        m_text += json;
        return *this;
    }
    std::string m_text = "{";
};

}  // namespace server
