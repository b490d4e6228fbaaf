// coexec/detail/codec/traits.hpp — which types can cross a process boundary, and
// one readable error for those that cannot.
//
// is_serializable_v (defined in type_rules.hpp, next to the encoding rules it
// follows) is the trait behind coexec::serializable. The leaf rule asks
// cereal, so this header includes the archive. The require_* functions below
// fail to compile with one error that says why a type cannot be sent; the
// compiler's instantiation note names the culprit (the innermost type at
// fault: a pointer field of a struct inside a vector, say) and the whole type.
// Everything here is compile-time only.
#pragma once

#include <functional>
#include <span>
#include <string_view>
#include <type_traits>

#include "coexec/detail/codec/archive.hpp"
#include "coexec/detail/codec/type_rules.hpp"

namespace coexec::detail {

// --- why a type is not serializable --------------------------------------------

enum class unserializable {
    reference,
    pointer,
    view,
    std_function,
    closure,
    opaque_class,
    union_type,
    unfixed_enum,
    too_many_fields,
    not_standard_layout,
    no_serialization,
};

template <class T>
inline constexpr bool is_view = false;
template <class C, class Tr>
inline constexpr bool is_view<std::basic_string_view<C, Tr>> = true;
template <class T, std::size_t N>
inline constexpr bool is_view<std::span<T, N>> = true;
template <class T>
inline constexpr bool is_view<std::reference_wrapper<T>> = true;

template <class T>
inline constexpr bool is_std_function = false;
template <class T>
inline constexpr bool is_std_function<std::function<T>> = true;

// A plain struct coexec would take apart field by field.
template <class T>
concept inspectable_struct =
    std::is_class_v<T> && !looks_like_closure<T> && !cereal_knows<T> && decomposable_aggregate<T>;

template <class T>
struct culprit {
    using type = T;
};
template <class Whole, class List>
struct first_unserializable {
    using type = Whole;  // no part is at fault: the type itself is
};
template <class Whole, class T, class... Rest>
struct first_unserializable<Whole, type_list<T, Rest...>> {
    using type = typename std::conditional_t<is_serializable_leaf_v<T>,
                                             first_unserializable<Whole, type_list<Rest...>>,
                                             culprit<std::remove_cv_t<T>>>::type;
};
template <class T>
    requires(!is_serializable_leaf_v<T> && parts<T>::is_composite)
struct culprit<T> {
    using type = typename first_unserializable<T, typename parts<T>::types>::type;
};
template <class T>
    requires(!is_serializable_leaf_v<T> && !parts<T>::is_composite && inspectable_struct<T>)
struct culprit<T> {
    using type = typename first_unserializable<T, field_types<T>>::type;
};

/// The innermost type that makes T unserializable (T itself if nothing inside is).
template <class T>
using culprit_t = typename culprit<std::remove_cv_t<T>>::type;

template <class T>
consteval unserializable why_unserializable() {
    if constexpr (std::is_reference_v<T>) {
        return unserializable::reference;
    } else if constexpr (std::is_pointer_v<T> || std::is_member_pointer_v<T> ||
                         std::is_null_pointer_v<T> || std::is_function_v<T>) {
        return unserializable::pointer;
    } else if constexpr (is_view<T>) {
        return unserializable::view;
    } else if constexpr (is_std_function<T>) {
        return unserializable::std_function;
    } else if constexpr (std::is_enum_v<T>) {
        return unserializable::unfixed_enum;
    } else if constexpr (std::is_union_v<T>) {
        return unserializable::union_type;
    } else if constexpr (!std::is_class_v<T> || cereal_knows<T>) {
        return unserializable::no_serialization;
    } else if constexpr (looks_like_closure<T>) {
        return unserializable::closure;
    } else if constexpr (!std::is_aggregate_v<T>) {
        return std::is_trivially_copyable_v<T> ? unserializable::opaque_class
                                               : unserializable::no_serialization;
    } else if constexpr (!std::is_standard_layout_v<T>) {
        return unserializable::not_standard_layout;
    } else if constexpr (aggregate_field_count<T> > max_aggregate_fields) {
        return unserializable::too_many_fields;
    } else {
        return unserializable::no_serialization;
    }
}

// One static_assert per reason, so that the first error says why. CONTEXT is
// the start of the sentence; the enclosing template's instantiation note
// names Culprit and Whole.
#define COEXEC_DETAIL_REJECT_BODY(CONTEXT)                                                       \
    constexpr unserializable why = why_unserializable<Culprit>();                                \
    if constexpr (why == unserializable::pointer) {                                              \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: it is or holds a pointer, which would point "       \
                      "into the sender's memory (send the data, or a shared_buffer)");           \
    } else if constexpr (why == unserializable::reference) {                                     \
        static_assert(always_false<Whole>,                                                       \
                      CONTEXT " is not serializable: a reference cannot be sent, only a value"); \
    } else if constexpr (why == unserializable::view) {                                          \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: a string_view, span or reference_wrapper "          \
                      "points into the sender's memory (send a string or a vector)");            \
    } else if constexpr (why == unserializable::std_function) {                                  \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: a std::function's target lives in this "            \
                      "process (send a function pointer or a serializable function "             \
                      "object)");                                                                \
    } else if constexpr (why == unserializable::closure) {                                       \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: it has no copy assignment (a lambda with "          \
                      "captures, or a struct with a const or reference field): give it "         \
                      "`template <class Ar> void serialize(Ar&)`");                              \
    } else if constexpr (why == unserializable::opaque_class) {                                  \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: it is trivially copyable but not a plain "          \
                      "struct (it has constructors or private fields), so coexec cannot "        \
                      "check its fields when they arrive from another process and will "         \
                      "not copy its bytes: give it `template <class Ar> void "                   \
                      "serialize(Ar&)`");                                                        \
    } else if constexpr (why == unserializable::union_type) {                                    \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: a union cannot be checked on arrival (its "         \
                      "active member is unknown): use std::variant, or give it a "               \
                      "serialize()");                                                            \
    } else if constexpr (why == unserializable::unfixed_enum) {                                  \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: an enum without a fixed underlying type "           \
                      "cannot be checked on arrival: declare one, e.g. `enum color : int "       \
                      "{...}`");                                                                 \
    } else if constexpr (why == unserializable::too_many_fields) {                               \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: a struct with more than 32 fields is not "          \
                      "taken apart automatically: give it `template <class Ar> void "            \
                      "serialize(Ar&)`");                                                        \
    } else if constexpr (why == unserializable::not_standard_layout) {                           \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: a struct that is not standard-layout (base "        \
                      "classes, or a field whose own layout is not standard, such as "           \
                      "std::map, std::set, std::list or std::tuple) is not taken apart "         \
                      "automatically: give it `template <class Ar> void serialize(Ar&)`");       \
    } else {                                                                                     \
        static_assert(always_false<Whole>, CONTEXT                                               \
                      " is not serializable: give it `template <class Ar> void "                 \
                      "serialize(Ar&)`, or make it a plain struct of serializable fields");      \
    }

template <class Culprit, class Whole>
consteval void reject_value_type() {
    COEXEC_DETAIL_REJECT_BODY("coexec: argument/result type T")
}
template <class Culprit, class Whole>
consteval void reject_argument_type() {
    COEXEC_DETAIL_REJECT_BODY("coexec::process_pool: an argument type")
}
template <class Culprit, class Whole>
consteval void reject_result_type() {
    COEXEC_DETAIL_REJECT_BODY("coexec::process_pool: the result type")
}

#undef COEXEC_DETAIL_REJECT_BODY

/// Fails to compile, with one error saying why, unless T is serializable;
/// the instantiation note names T and the culprit inside it.
template <class T>
consteval void require_serializable() {
    if constexpr (!is_serializable_v<T>) reject_value_type<culprit_t<T>, T>();
}

}  // namespace coexec::detail
