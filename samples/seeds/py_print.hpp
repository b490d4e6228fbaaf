// samples/seeds/py_print.hpp — print values the way Python's print() shows them.
//
// The seed programs reproduce the output of Python snippets, so lists print as
// `[1, 8, 27]`, strings inside containers as `'abc'`, tuples as `(1, 'abc')`
// and floats with Python's shortest round-trip repr (`12.0`, `0.1`).
#pragma once

#include <charconv>
#include <concepts>
#include <cstdio>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace seeds {

inline std::string py_repr(std::string_view s) {
    return "'" + std::string(s) + "'";
}
inline std::string py_repr(const char* s) {
    return py_repr(std::string_view(s));
}
inline std::string py_repr(const std::string& s) {
    return py_repr(std::string_view(s));
}

template <std::integral T>
std::string py_repr(T v) {
    if constexpr (std::is_same_v<T, bool>) {
        return v ? "True" : "False";
    } else {
        return std::to_string(v);
    }
}

template <std::floating_point T>
std::string py_repr(T v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round trip
    std::string s(buf, end);
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // 12 -> 12.0 (n: inf, nan)
    return s;
}

template <class T>
std::string py_repr(const std::vector<T>& v);
template <class... Ts>
std::string py_repr(const std::tuple<Ts...>& t);
template <class A, class B>
std::string py_repr(const std::pair<A, B>& p);

template <class T>
std::string py_repr(const std::vector<T>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i != 0) s += ", ";
        s += py_repr(v[i]);
    }
    return s + "]";
}

template <class... Ts>
std::string py_repr(const std::tuple<Ts...>& t) {
    std::string s = "(";
    std::apply(
        [&s](const auto&... xs) {
            std::size_t i = 0;
            ((s += (i++ != 0 ? ", " : "") + py_repr(xs)), ...);
        },
        t);
    return s + (sizeof...(Ts) == 1 ? ",)" : ")");
}

template <class A, class B>
std::string py_repr(const std::pair<A, B>& p) {
    return "(" + py_repr(p.first) + ", " + py_repr(p.second) + ")";
}

/// Python's print(x) for one value: str() of a top-level string is unquoted.
template <class T>
void print(const T& value) {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        std::printf("%s\n", std::string(std::string_view(value)).c_str());
    } else {
        std::printf("%s\n", py_repr(value).c_str());
    }
}

}  // namespace seeds
