// coexec/detail/codec/fields.hpp — the fields of a plain struct, without user code.
//
// A struct with no serialize() crosses the process boundary field by field, so
// that each field can be checked on arrival (a bool, an enum, an optional, a
// variant) instead of copying bytes that may not be a valid value. The
// fields are found the way Boost.PFR finds them: the number of fields is the
// largest N for which `T{{}, ...N times}` compiles (each `{}` initializes
// exactly one field, arrays included), and a structured binding of N names
// reaches them.
//
// Limits (such types need a serialize()): at most max_aggregate_fields fields;
// no base classes (a base counts as a field in aggregate initialization but
// not in a structured binding; a non-empty base is refused with a readable
// error, an empty one fails inside the binding); bit-fields only in structs
// that are copied as bytes (a reference cannot bind to a bit-field).
//
// Compile-time only, plus visit_fields, which is reentrant.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

namespace coexec::detail {

/// The most fields a struct without serialize() may have.
inline constexpr std::size_t max_aggregate_fields = 32;

template <class... Ts>
struct type_list {};

// COEXEC_DETAIL_FIELDS_<n>(M) expands to M(0), ..., M(n-1).
#define COEXEC_DETAIL_FIELDS_1(M) M(0)
#define COEXEC_DETAIL_FIELDS_2(M) COEXEC_DETAIL_FIELDS_1(M), M(1)
#define COEXEC_DETAIL_FIELDS_3(M) COEXEC_DETAIL_FIELDS_2(M), M(2)
#define COEXEC_DETAIL_FIELDS_4(M) COEXEC_DETAIL_FIELDS_3(M), M(3)
#define COEXEC_DETAIL_FIELDS_5(M) COEXEC_DETAIL_FIELDS_4(M), M(4)
#define COEXEC_DETAIL_FIELDS_6(M) COEXEC_DETAIL_FIELDS_5(M), M(5)
#define COEXEC_DETAIL_FIELDS_7(M) COEXEC_DETAIL_FIELDS_6(M), M(6)
#define COEXEC_DETAIL_FIELDS_8(M) COEXEC_DETAIL_FIELDS_7(M), M(7)
#define COEXEC_DETAIL_FIELDS_9(M) COEXEC_DETAIL_FIELDS_8(M), M(8)
#define COEXEC_DETAIL_FIELDS_10(M) COEXEC_DETAIL_FIELDS_9(M), M(9)
#define COEXEC_DETAIL_FIELDS_11(M) COEXEC_DETAIL_FIELDS_10(M), M(10)
#define COEXEC_DETAIL_FIELDS_12(M) COEXEC_DETAIL_FIELDS_11(M), M(11)
#define COEXEC_DETAIL_FIELDS_13(M) COEXEC_DETAIL_FIELDS_12(M), M(12)
#define COEXEC_DETAIL_FIELDS_14(M) COEXEC_DETAIL_FIELDS_13(M), M(13)
#define COEXEC_DETAIL_FIELDS_15(M) COEXEC_DETAIL_FIELDS_14(M), M(14)
#define COEXEC_DETAIL_FIELDS_16(M) COEXEC_DETAIL_FIELDS_15(M), M(15)
#define COEXEC_DETAIL_FIELDS_17(M) COEXEC_DETAIL_FIELDS_16(M), M(16)
#define COEXEC_DETAIL_FIELDS_18(M) COEXEC_DETAIL_FIELDS_17(M), M(17)
#define COEXEC_DETAIL_FIELDS_19(M) COEXEC_DETAIL_FIELDS_18(M), M(18)
#define COEXEC_DETAIL_FIELDS_20(M) COEXEC_DETAIL_FIELDS_19(M), M(19)
#define COEXEC_DETAIL_FIELDS_21(M) COEXEC_DETAIL_FIELDS_20(M), M(20)
#define COEXEC_DETAIL_FIELDS_22(M) COEXEC_DETAIL_FIELDS_21(M), M(21)
#define COEXEC_DETAIL_FIELDS_23(M) COEXEC_DETAIL_FIELDS_22(M), M(22)
#define COEXEC_DETAIL_FIELDS_24(M) COEXEC_DETAIL_FIELDS_23(M), M(23)
#define COEXEC_DETAIL_FIELDS_25(M) COEXEC_DETAIL_FIELDS_24(M), M(24)
#define COEXEC_DETAIL_FIELDS_26(M) COEXEC_DETAIL_FIELDS_25(M), M(25)
#define COEXEC_DETAIL_FIELDS_27(M) COEXEC_DETAIL_FIELDS_26(M), M(26)
#define COEXEC_DETAIL_FIELDS_28(M) COEXEC_DETAIL_FIELDS_27(M), M(27)
#define COEXEC_DETAIL_FIELDS_29(M) COEXEC_DETAIL_FIELDS_28(M), M(28)
#define COEXEC_DETAIL_FIELDS_30(M) COEXEC_DETAIL_FIELDS_29(M), M(29)
#define COEXEC_DETAIL_FIELDS_31(M) COEXEC_DETAIL_FIELDS_30(M), M(30)
#define COEXEC_DETAIL_FIELDS_32(M) COEXEC_DETAIL_FIELDS_31(M), M(31)
#define COEXEC_DETAIL_FIELDS_33(M) COEXEC_DETAIL_FIELDS_32(M), M(32)
#define COEXEC_DETAIL_EMPTY_BRACES(i) \
    {}
#define COEXEC_DETAIL_NAME(i) f##i
#define COEXEC_DETAIL_TYPE(i) decltype(f##i)

// Can T be aggregate-initialized from n empty braced lists?
#define COEXEC_DETAIL_INIT_CASE(n) \
    if constexpr (n == N)          \
        return requires { T{COEXEC_DETAIL_FIELDS_##n(COEXEC_DETAIL_EMPTY_BRACES)}; };
template <class T, std::size_t N>
consteval bool initializable_from_braces() {
    if constexpr (N == 0) return requires { T{}; };
    COEXEC_DETAIL_INIT_CASE(1)
    COEXEC_DETAIL_INIT_CASE(2)
    COEXEC_DETAIL_INIT_CASE(3)
    COEXEC_DETAIL_INIT_CASE(4)
    COEXEC_DETAIL_INIT_CASE(5)
    COEXEC_DETAIL_INIT_CASE(6)
    COEXEC_DETAIL_INIT_CASE(7)
    COEXEC_DETAIL_INIT_CASE(8)
    COEXEC_DETAIL_INIT_CASE(9)
    COEXEC_DETAIL_INIT_CASE(10)
    COEXEC_DETAIL_INIT_CASE(11)
    COEXEC_DETAIL_INIT_CASE(12)
    COEXEC_DETAIL_INIT_CASE(13)
    COEXEC_DETAIL_INIT_CASE(14)
    COEXEC_DETAIL_INIT_CASE(15)
    COEXEC_DETAIL_INIT_CASE(16)
    COEXEC_DETAIL_INIT_CASE(17)
    COEXEC_DETAIL_INIT_CASE(18)
    COEXEC_DETAIL_INIT_CASE(19)
    COEXEC_DETAIL_INIT_CASE(20)
    COEXEC_DETAIL_INIT_CASE(21)
    COEXEC_DETAIL_INIT_CASE(22)
    COEXEC_DETAIL_INIT_CASE(23)
    COEXEC_DETAIL_INIT_CASE(24)
    COEXEC_DETAIL_INIT_CASE(25)
    COEXEC_DETAIL_INIT_CASE(26)
    COEXEC_DETAIL_INIT_CASE(27)
    COEXEC_DETAIL_INIT_CASE(28)
    COEXEC_DETAIL_INIT_CASE(29)
    COEXEC_DETAIL_INIT_CASE(30)
    COEXEC_DETAIL_INIT_CASE(31)
    COEXEC_DETAIL_INIT_CASE(32)
    COEXEC_DETAIL_INIT_CASE(33)
    return false;
}

template <class T, std::size_t N = 0>
consteval std::size_t count_fields() {
    if constexpr (N > max_aggregate_fields || !initializable_from_braces<T, N + 1>()) {
        return N;
    } else {
        return count_fields<T, N + 1>();
    }
}

/// The number of fields of aggregate T, or max_aggregate_fields + 1 if it
/// has more than coexec decomposes.
template <class T>
inline constexpr std::size_t aggregate_field_count = count_fields<T>();

/// Aggregates coexec can take apart field by field (see the limits above;
/// an empty base class is not detected here).
template <class T>
concept decomposable_aggregate =
    std::is_class_v<T> && std::is_aggregate_v<T> && !std::is_union_v<T> &&
    std::is_standard_layout_v<T> && aggregate_field_count<T> <= max_aggregate_fields;

#define COEXEC_DETAIL_TYPES_CASE(n)                                       \
    else if constexpr (count == n) {                                      \
        auto& [COEXEC_DETAIL_FIELDS_##n(COEXEC_DETAIL_NAME)] = t;         \
        return type_list<COEXEC_DETAIL_FIELDS_##n(COEXEC_DETAIL_TYPE)>{}; \
    }
#define COEXEC_DETAIL_VISIT_CASE(n)                                              \
    else if constexpr (count == n) {                                             \
        auto& [COEXEC_DETAIL_FIELDS_##n(COEXEC_DETAIL_NAME)] = t;                \
        return std::forward<F>(f)(COEXEC_DETAIL_FIELDS_##n(COEXEC_DETAIL_NAME)); \
    }
// A table, kept as written: clang-format reflows it differently on every pass.
// clang-format off
#define COEXEC_DETAIL_ALL_CASES(CASE)                                               \
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)                 \
    CASE(9) CASE(10) CASE(11) CASE(12) CASE(13) CASE(14) CASE(15) CASE(16)          \
    CASE(17) CASE(18) CASE(19) CASE(20) CASE(21) CASE(22) CASE(23) CASE(24)         \
    CASE(25) CASE(26) CASE(27) CASE(28) CASE(29) CASE(30) CASE(31) CASE(32)
// clang-format on

// Only named in decltype: its body is instantiated for the return type, never run.
template <decomposable_aggregate T>
auto field_type_list(T& t) {
    constexpr std::size_t count = aggregate_field_count<T>;
    if constexpr (count == 0) {
        (void)t;
        return type_list<>{};
    }
    COEXEC_DETAIL_ALL_CASES(COEXEC_DETAIL_TYPES_CASE)
}

/// The declared types of T's fields, in order (cv kept, bit-fields as their type).
template <decomposable_aggregate T>
using field_types = decltype(field_type_list(std::declval<T&>()));

/// Calls f(field0, field1, ...) with references to t's fields (const if t is).
template <class T, class F>
    requires decomposable_aggregate<std::remove_const_t<T>>
decltype(auto) visit_fields(T& t, F&& f) {
    constexpr std::size_t count = aggregate_field_count<std::remove_const_t<T>>;
    if constexpr (count == 0) {
        (void)t;
        return std::forward<F>(f)();
    }
    COEXEC_DETAIL_ALL_CASES(COEXEC_DETAIL_VISIT_CASE)
}

#undef COEXEC_DETAIL_ALL_CASES
#undef COEXEC_DETAIL_VISIT_CASE
#undef COEXEC_DETAIL_TYPES_CASE
#undef COEXEC_DETAIL_INIT_CASE
#undef COEXEC_DETAIL_TYPE
#undef COEXEC_DETAIL_NAME
#undef COEXEC_DETAIL_EMPTY_BRACES
#undef COEXEC_DETAIL_FIELDS_33
#undef COEXEC_DETAIL_FIELDS_32
#undef COEXEC_DETAIL_FIELDS_31
#undef COEXEC_DETAIL_FIELDS_30
#undef COEXEC_DETAIL_FIELDS_29
#undef COEXEC_DETAIL_FIELDS_28
#undef COEXEC_DETAIL_FIELDS_27
#undef COEXEC_DETAIL_FIELDS_26
#undef COEXEC_DETAIL_FIELDS_25
#undef COEXEC_DETAIL_FIELDS_24
#undef COEXEC_DETAIL_FIELDS_23
#undef COEXEC_DETAIL_FIELDS_22
#undef COEXEC_DETAIL_FIELDS_21
#undef COEXEC_DETAIL_FIELDS_20
#undef COEXEC_DETAIL_FIELDS_19
#undef COEXEC_DETAIL_FIELDS_18
#undef COEXEC_DETAIL_FIELDS_17
#undef COEXEC_DETAIL_FIELDS_16
#undef COEXEC_DETAIL_FIELDS_15
#undef COEXEC_DETAIL_FIELDS_14
#undef COEXEC_DETAIL_FIELDS_13
#undef COEXEC_DETAIL_FIELDS_12
#undef COEXEC_DETAIL_FIELDS_11
#undef COEXEC_DETAIL_FIELDS_10
#undef COEXEC_DETAIL_FIELDS_9
#undef COEXEC_DETAIL_FIELDS_8
#undef COEXEC_DETAIL_FIELDS_7
#undef COEXEC_DETAIL_FIELDS_6
#undef COEXEC_DETAIL_FIELDS_5
#undef COEXEC_DETAIL_FIELDS_4
#undef COEXEC_DETAIL_FIELDS_3
#undef COEXEC_DETAIL_FIELDS_2
#undef COEXEC_DETAIL_FIELDS_1

}  // namespace coexec::detail
