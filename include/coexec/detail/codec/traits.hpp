// coexec/detail/codec/traits.hpp — which types can cross a process boundary.
//
// is_serializable_v is the trait behind coexec::serializable: a leaf type is
// serializable when our archives can write and read it (a user serialize,
// cereal's own support, or the bitwise fallback); the standard containers
// and wrappers are serializable when their elements are. The leaf rule asks
// cereal, so this header includes the archive. Everything here is
// compile-time only.
#pragma once

#include <array>
#include <chrono>
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

#include "coexec/detail/codec/archive.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec::detail {

// Leaf rule: our archives can write and read T (user serialize/save/load,
// cereal's own support, or the bitwise fallback). Containers are handled by
// the specializations of serializable_impl, which recurse into element types
// (cereal's container functions accept any element type).
template <class T>
inline constexpr bool leaf_serializable =
    !std::is_pointer_v<T> && !std::is_member_pointer_v<T> && !std::is_null_pointer_v<T> &&
    !std::is_function_v<T> &&
    cereal::traits::is_output_serializable<T, binary_output_archive>::value &&
    cereal::traits::is_input_serializable<T, binary_input_archive>::value;

template <class T>
struct serializable_impl : std::bool_constant<leaf_serializable<T>> {};

template <class... Ts>
inline constexpr bool all_serializable = (serializable_impl<std::remove_cv_t<Ts>>::value && ...);

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

template <class C, class Tr, class A>
struct serializable_impl<std::basic_string<C, Tr, A>>
    : std::bool_constant<std::is_arithmetic_v<C>> {};
template <class T, class A>
struct serializable_impl<std::vector<T, A>> : std::bool_constant<all_serializable<T>> {};
template <class T, class A>
struct serializable_impl<std::deque<T, A>> : std::bool_constant<all_serializable<T>> {};
template <class T, class A>
struct serializable_impl<std::list<T, A>> : std::bool_constant<all_serializable<T>> {};
template <class T, class A>
struct serializable_impl<std::forward_list<T, A>> : std::bool_constant<all_serializable<T>> {};
template <class T, std::size_t N>
struct serializable_impl<std::array<T, N>> : std::bool_constant<all_serializable<T>> {};
template <class K, class C, class A>
struct serializable_impl<std::set<K, C, A>> : std::bool_constant<all_serializable<K>> {};
template <class K, class C, class A>
struct serializable_impl<std::multiset<K, C, A>> : std::bool_constant<all_serializable<K>> {};
template <class K, class H, class E, class A>
struct serializable_impl<std::unordered_set<K, H, E, A>> : std::bool_constant<all_serializable<K>> {
};
template <class K, class H, class E, class A>
struct serializable_impl<std::unordered_multiset<K, H, E, A>>
    : std::bool_constant<all_serializable<K>> {};
template <class K, class V, class C, class A>
struct serializable_impl<std::map<K, V, C, A>> : std::bool_constant<all_serializable<K, V>> {};
template <class K, class V, class C, class A>
struct serializable_impl<std::multimap<K, V, C, A>> : std::bool_constant<all_serializable<K, V>> {};
template <class K, class V, class H, class E, class A>
struct serializable_impl<std::unordered_map<K, V, H, E, A>>
    : std::bool_constant<all_serializable<K, V>> {};
template <class K, class V, class H, class E, class A>
struct serializable_impl<std::unordered_multimap<K, V, H, E, A>>
    : std::bool_constant<all_serializable<K, V>> {};
template <class T, class C>
struct serializable_impl<std::queue<T, C>> : std::bool_constant<all_serializable<C>> {};
template <class T, class C, class Cmp>
struct serializable_impl<std::priority_queue<T, C, Cmp>> : std::bool_constant<all_serializable<C>> {
};
template <class T, class C>
struct serializable_impl<std::stack<T, C>> : std::bool_constant<all_serializable<C>> {};
template <class T>
struct serializable_impl<std::optional<T>> : std::bool_constant<all_serializable<T>> {};
template <class... Ts>
struct serializable_impl<std::variant<Ts...>> : std::bool_constant<all_serializable<Ts...>> {};
template <class A, class B>
struct serializable_impl<std::pair<A, B>> : std::bool_constant<all_serializable<A, B>> {};
template <class... Ts>
struct serializable_impl<std::tuple<Ts...>> : std::bool_constant<all_serializable<Ts...>> {};
template <class R, class P>
struct serializable_impl<std::chrono::duration<R, P>> : std::bool_constant<all_serializable<R>> {};
template <class C, class D>
struct serializable_impl<std::chrono::time_point<C, D>> : std::bool_constant<all_serializable<D>> {
};

/// The trait behind coexec::serializable (coexec/serializable.hpp).
/// References are not serializable: a value crosses the boundary, not an object.
template <class T>
inline constexpr bool is_serializable_v =
    !std::is_reference_v<T> && serializable_impl<std::remove_cv_t<T>>::value;

/// Fails to compile, with one line naming the problem, unless T is
/// serializable; the "required from" note names T.
template <class T>
consteval void require_serializable() {
    static_assert(is_serializable_v<T>,
                  "coexec: argument/result type T is not serializable: give it `template <class "
                  "Ar> void serialize(Ar&)` or use a trivially copyable type");
}

}  // namespace coexec::detail
