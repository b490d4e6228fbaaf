// coexec/detail/codec/type_rules.hpp — which types may cross, and which may be bit-copied.
//
// Included by archive.hpp between the archive classes and their save/load
// functions. Two questions, both answered at compile time:
//
// 1. Is T serializable (the trait behind coexec::serializable)? A leaf type is
//    when our archives can write and read it (a user serialize, cereal's own
//    support, or coexec's field-by-field encoding of plain structs); the
//    standard containers and wrappers are when their elements are.
//
// 2. Is every bit pattern of sizeof(T) bytes a valid T (every_bit_pattern_valid)?
//    Only then may decoding copy bytes written by another process straight
//    into a T. True for integers, floating point, enums with a fixed
//    underlying type other than bool, empty classes, and arrays, std::array,
//    complex, chrono durations and time points and plain structs made only of
//    those. False for bool (2 is not a bool), std::optional and std::variant
//    (a flag or index outside its range), enums without a fixed underlying
//    type (values outside the enumerators' range), pointers, unions, and any
//    type with a user serialize(): those are decoded value by value, each
//    checked.
//
// The bitwise question is decided for the trivially copyable class types
// nobody wrote serialization for as follows (the decision this codec makes
// for the parent's safety, since a worker writes the bytes):
// - an aggregate (a plain struct: public fields, no constructors) is taken
//   apart into its fields (fields.hpp) and sent field by field, or as one
//   block of bytes when every field may be bit-copied (an aggregate that is
//   not trivially copyable, with std::string or container fields, is always
//   sent field by field);
// - an empty class has no bits to check and is copied;
// - any other trivially copyable class (constructors, private fields) hides
//   its invariants from coexec and is NOT serializable without a serialize():
//   the compiler names the type and the reason (traits.hpp). Copying its
//   bytes would let a worker hand the parent any bit pattern for it.
#pragma once

#include <array>
#include <chrono>
#include <complex>
#include <cstddef>
#include <deque>
#include <forward_list>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <span>
#include <stack>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <cereal/archives/binary.hpp>  // only as a probe: which types cereal itself knows

#include "coexec/detail/codec/fields.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec::detail {

class binary_output_archive;
class binary_input_archive;

// Does cereal (or the user, for cereal) already provide serialization for T?
// Probed with cereal's own binary archives so that the answer does not depend
// on coexec's fallbacks for its archives (no recursion).
template <class T>
inline constexpr bool cereal_knows =
    cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value ||
    cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;

// A lambda with captures is trivially copyable when its captures are, but it
// holds references or data the user did not mean to ship, and C++20 gives it a
// deleted copy assignment (captureless lambdas keep theirs). Types like that
// need an explicit serialize(). This also excludes trivially copyable structs
// with const or reference members, which is the price of catching lambdas.
template <class T>
inline constexpr bool looks_like_closure = std::is_class_v<T> && !std::is_copy_assignable_v<T>;

/// Enums declared with `: type` (and every scoped enum): every value of the
/// underlying type is a value of the enum. The others only hold the range of
/// their enumerators, which C++20 cannot compute portably, so they cannot be
/// decoded safely (a worker could send a value outside it).
template <class E>
inline constexpr bool has_fixed_underlying_type = false;
template <class E>
    requires std::is_enum_v<E>
inline constexpr bool has_fixed_underlying_type<E> = requires { E{std::underlying_type_t<E>{}}; };

// --- 1. serializable ---------------------------------------------------------

template <class T>
struct serializable_impl;

template <class T>
inline constexpr bool is_serializable_leaf_v = serializable_impl<std::remove_cv_t<T>>::value;

template <class... Ts>
inline constexpr bool all_serializable = (is_serializable_leaf_v<Ts> && ...);

template <class List>
inline constexpr bool all_in_list_serializable = false;
template <class... Ts>
inline constexpr bool all_in_list_serializable<type_list<Ts...>> = all_serializable<Ts...>;

/// Class types nobody wrote serialization for, that coexec encodes itself:
/// trivially copyable empty classes, and plain structs (aggregates) whose
/// fields are all serializable, trivially copyable or not (a struct of a
/// std::string and a std::vector is decoded field by field, each field
/// checked as it would be alone; see the decision above). Unions are not:
/// which member is active is unknown.
template <class T>
concept field_by_field = std::is_class_v<T> && !looks_like_closure<T> && !cereal_knows<T> &&
                         ((std::is_empty_v<T> && std::is_trivially_copyable_v<T>) ||
                          (decomposable_aggregate<T> && all_in_list_serializable<field_types<T>>));

// A union only with its own serialize() (which member is active is unknown);
// an enum only with a fixed underlying type (else not every value is valid).
template <class T>
inline constexpr bool union_rule = !std::is_union_v<T> || cereal_knows<T>;
template <class T>
inline constexpr bool enum_rule = !std::is_enum_v<T> || has_fixed_underlying_type<T>;

template <class T>
inline constexpr bool sendable_leaf_kind =
    !std::is_pointer_v<T> && !std::is_member_pointer_v<T> && !std::is_null_pointer_v<T> &&
    !std::is_function_v<T> && union_rule<T> && enum_rule<T>;

// Leaf rule: our archives can write and read T (user serialize/save/load,
// cereal's own support, or field_by_field). Containers are handled by the
// specializations below, which recurse into element types (cereal's container
// functions accept any element type).
template <class T>
inline constexpr bool leaf_serializable =
    sendable_leaf_kind<T> &&
    cereal::traits::is_output_serializable<T, binary_output_archive>::value &&
    cereal::traits::is_input_serializable<T, binary_input_archive>::value;

template <class T>
struct serializable_impl : std::bool_constant<leaf_serializable<T>> {};

template <>
struct serializable_impl<void> : std::true_type {};
template <>
struct serializable_impl<shared_buffer> : std::true_type {};
// Views and reference wrappers are trivially copyable but point into this process.
template <class C, class Tr>
struct serializable_impl<std::basic_string_view<C, Tr>> : std::false_type {};
template <class T, std::size_t N>
struct serializable_impl<std::span<T, N>> : std::false_type {};
template <class T>
struct serializable_impl<std::reference_wrapper<T>> : std::false_type {};
template <class T>
struct serializable_impl<std::function<T>> : std::false_type {};

// Element types, for the containers and wrappers that are serializable when
// their elements are (and for traits.hpp's diagnostics, which look inside).
template <class T>
struct parts {
    static constexpr bool is_composite = false;
};
template <class... Ts>
struct composite_parts {
    static constexpr bool is_composite = true;
    using types = type_list<Ts...>;
};
template <class T, std::size_t N>
struct parts<T[N]> : composite_parts<T> {};
template <class C, class Tr, class A>
struct parts<std::basic_string<C, Tr, A>> : composite_parts<C> {};
template <class T, class A>
struct parts<std::vector<T, A>> : composite_parts<T> {};
template <class T, class A>
struct parts<std::deque<T, A>> : composite_parts<T> {};
template <class T, class A>
struct parts<std::list<T, A>> : composite_parts<T> {};
template <class T, class A>
struct parts<std::forward_list<T, A>> : composite_parts<T> {};
template <class T, std::size_t N>
struct parts<std::array<T, N>> : composite_parts<T> {};
template <class K, class C, class A>
struct parts<std::set<K, C, A>> : composite_parts<K> {};
template <class K, class C, class A>
struct parts<std::multiset<K, C, A>> : composite_parts<K> {};
template <class K, class H, class E, class A>
struct parts<std::unordered_set<K, H, E, A>> : composite_parts<K> {};
template <class K, class H, class E, class A>
struct parts<std::unordered_multiset<K, H, E, A>> : composite_parts<K> {};
template <class K, class V, class C, class A>
struct parts<std::map<K, V, C, A>> : composite_parts<K, V> {};
template <class K, class V, class C, class A>
struct parts<std::multimap<K, V, C, A>> : composite_parts<K, V> {};
template <class K, class V, class H, class E, class A>
struct parts<std::unordered_map<K, V, H, E, A>> : composite_parts<K, V> {};
template <class K, class V, class H, class E, class A>
struct parts<std::unordered_multimap<K, V, H, E, A>> : composite_parts<K, V> {};
template <class T, class C>
struct parts<std::queue<T, C>> : composite_parts<C> {};
template <class T, class C, class Cmp>
struct parts<std::priority_queue<T, C, Cmp>> : composite_parts<C> {};
template <class T, class C>
struct parts<std::stack<T, C>> : composite_parts<C> {};
template <class T>
struct parts<std::optional<T>> : composite_parts<T> {};
template <class... Ts>
struct parts<std::variant<Ts...>> : composite_parts<Ts...> {};
template <class A, class B>
struct parts<std::pair<A, B>> : composite_parts<A, B> {};
template <class... Ts>
struct parts<std::tuple<Ts...>> : composite_parts<Ts...> {};
template <class R, class P>
struct parts<std::chrono::duration<R, P>> : composite_parts<R> {};
template <class C, class D>
struct parts<std::chrono::time_point<C, D>> : composite_parts<D> {};

template <class T>
    requires parts<T>::is_composite
struct serializable_impl<T>
    : std::bool_constant<all_in_list_serializable<typename parts<T>::types>> {};
// A string of bool or of a class type is not a string cereal can write.
template <class C, class Tr, class A>
struct serializable_impl<std::basic_string<C, Tr, A>>
    : std::bool_constant<std::is_arithmetic_v<C> && !std::is_same_v<C, bool>> {};

/// The trait behind coexec::serializable (coexec/serializable.hpp).
/// References are not serializable: a value crosses the boundary, not an object.
template <class T>
inline constexpr bool is_serializable_v = !std::is_reference_v<T> && is_serializable_leaf_v<T>;

// --- 2. every bit pattern valid ----------------------------------------------

template <class T>
struct bits_valid_impl;

/// True when any sizeof(T) bytes are a valid T (see the list at the top).
template <class T>
inline constexpr bool every_bit_pattern_valid = bits_valid_impl<std::remove_cv_t<T>>::value;

template <class List>
inline constexpr bool all_bits_valid = false;
template <class... Ts>
inline constexpr bool all_bits_valid<type_list<Ts...>> = (every_bit_pattern_valid<Ts> && ...);

template <class T>
consteval bool compute_bits_valid() {
    if constexpr (std::is_same_v<T, bool>) {
        return false;
    } else if constexpr (std::is_arithmetic_v<T>) {
        return true;
    } else if constexpr (std::is_enum_v<T>) {
        if constexpr (has_fixed_underlying_type<T>) {
            return every_bit_pattern_valid<std::underlying_type_t<T>>;
        } else {
            return false;
        }
    } else if constexpr (std::is_bounded_array_v<T>) {
        return every_bit_pattern_valid<std::remove_extent_t<T>>;
    } else if constexpr (!std::is_class_v<T> || !std::is_trivially_copyable_v<T> ||
                         cereal_knows<T> || looks_like_closure<T>) {
        // Pointers, unions, types with invariants of their own, user serialize().
        return false;
    } else if constexpr (std::is_empty_v<T>) {
        return true;
    } else if constexpr (decomposable_aggregate<T>) {
        return all_bits_valid<field_types<T>>;
    } else {
        return false;
    }
}

template <class T>
struct bits_valid_impl : std::bool_constant<compute_bits_valid<T>()> {};
// Standard types whose bytes are their fields' bytes (cereal knows them, but
// copying the bytes is equivalent and faster).
template <class T, std::size_t N>
struct bits_valid_impl<std::array<T, N>> : std::bool_constant<every_bit_pattern_valid<T>> {};
template <class T>
struct bits_valid_impl<std::complex<T>> : std::bool_constant<every_bit_pattern_valid<T>> {};
template <class R, class P>
struct bits_valid_impl<std::chrono::duration<R, P>>
    : std::bool_constant<every_bit_pattern_valid<R>> {};
template <class C, class D>
struct bits_valid_impl<std::chrono::time_point<C, D>>
    : std::bool_constant<every_bit_pattern_valid<D>> {};

/// Types encoded as their raw bytes and decoded by copying them back (the
/// memcpy fast path, also for vectors and arrays of them).
template <class T>
concept bitwise_serializable =
    std::is_trivially_copyable_v<T> && every_bit_pattern_valid<T> && is_serializable_v<T>;

}  // namespace coexec::detail
