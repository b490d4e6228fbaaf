// tests/support/json_reader.hpp — a strict, small JSON parser for tests that
// check files coexec writes (the trace). Throws std::runtime_error on any
// syntax error, so "it parses" is a real check. Numbers are doubles.
#pragma once

#include <cctype>
#include <cstddef>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace coexec_test {

struct json;
using json_object = std::map<std::string, json>;
using json_array = std::vector<json>;

struct json {
    std::variant<std::nullptr_t, bool, double, std::string, std::shared_ptr<json_array>,
                 std::shared_ptr<json_object>>
        v;

    bool is_object() const { return v.index() == 5; }
    bool is_array() const { return v.index() == 4; }
    bool is_string() const { return v.index() == 3; }
    bool is_number() const { return v.index() == 2; }
    const json_object& object() const { return *std::get<5>(v); }
    const json_array& array() const { return *std::get<4>(v); }
    const std::string& string() const { return std::get<3>(v); }
    double number() const { return std::get<2>(v); }
    bool has(const std::string& k) const { return is_object() && object().count(k) != 0; }
    const json& operator[](const std::string& k) const {
        auto it = object().find(k);
        if (it == object().end()) throw std::runtime_error("json: no member " + k);
        return it->second;
    }
    /// A string member, or "" if absent or not a string.
    std::string str(const std::string& k) const {
        return has(k) && (*this)[k].is_string() ? (*this)[k].string() : std::string();
    }
};

class json_parser {
  public:
    explicit json_parser(std::string_view text) : m_s(text) {}

    json parse_document() {
        json j = value();
        ws();
        if (m_i != m_s.size()) fail("trailing characters");
        return j;
    }

  private:
    [[noreturn]] void fail(const char* what) const {
        throw std::runtime_error(std::string("json: ") + what + " at offset " +
                                 std::to_string(m_i));
    }
    void ws() {
        while (m_i < m_s.size() &&
               (m_s[m_i] == ' ' || m_s[m_i] == '\n' || m_s[m_i] == '\r' || m_s[m_i] == '\t'))
            ++m_i;
    }
    char peek() {
        ws();
        if (m_i >= m_s.size()) fail("unexpected end");
        return m_s[m_i];
    }
    void expect(char c) {
        if (peek() != c) fail("unexpected character");
        ++m_i;
    }
    void literal(std::string_view w) {
        if (m_s.substr(m_i, w.size()) != w) fail("bad literal");
        m_i += w.size();
    }
    json value() {
        switch (peek()) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return json{string()};
            case 't':
                literal("true");
                return json{true};
            case 'f':
                literal("false");
                return json{false};
            case 'n':
                literal("null");
                return json{nullptr};
            default:
                return number();
        }
    }
    json object() {
        expect('{');
        auto o = std::make_shared<json_object>();
        if (peek() == '}') {
            ++m_i;
            return json{o};
        }
        for (;;) {
            if (peek() != '"') fail("expected a key");
            std::string k = string();
            expect(':');
            (*o)[k] = value();
            if (peek() == ',') {
                ++m_i;
                continue;
            }
            expect('}');
            return json{o};
        }
    }
    json array() {
        expect('[');
        auto a = std::make_shared<json_array>();
        if (peek() == ']') {
            ++m_i;
            return json{a};
        }
        for (;;) {
            a->push_back(value());
            if (peek() == ',') {
                ++m_i;
                continue;
            }
            expect(']');
            return json{a};
        }
    }
    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            if (m_i >= m_s.size()) fail("unterminated string");
            char c = m_s[m_i++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (m_i >= m_s.size()) fail("unterminated escape");
            char e = m_s[m_i++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    if (m_i + 4 > m_s.size()) fail("short \\u escape");
                    for (int k = 0; k < 4; ++k)
                        if (!std::isxdigit(static_cast<unsigned char>(m_s[m_i + k])))
                            fail("bad \\u escape");
                    out += '?';  // the tests never look inside escaped code points
                    m_i += 4;
                    break;
                }
                default:
                    fail("bad escape");
            }
        }
    }
    json number() {
        std::size_t start = m_i;
        if (m_i < m_s.size() && m_s[m_i] == '-') ++m_i;
        auto digits = [&] {
            std::size_t d = m_i;
            while (m_i < m_s.size() && m_s[m_i] >= '0' && m_s[m_i] <= '9')
                ++m_i;
            if (m_i == d) fail("expected digits");
        };
        digits();
        if (m_i < m_s.size() && m_s[m_i] == '.') {
            ++m_i;
            digits();
        }
        if (m_i < m_s.size() && (m_s[m_i] == 'e' || m_s[m_i] == 'E')) {
            ++m_i;
            if (m_i < m_s.size() && (m_s[m_i] == '+' || m_s[m_i] == '-')) ++m_i;
            digits();
        }
        return json{std::stod(std::string(m_s.substr(start, m_i - start)))};
    }

    std::string_view m_s;
    std::size_t m_i = 0;
};

inline json parse_json(std::string_view text) {
    return json_parser(text).parse_document();
}

inline json parse_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_json(ss.str());
}

}  // namespace coexec_test
