// coexec/serializable.hpp — which types can cross a process boundary.
#pragma once

#include "coexec/detail/codec/traits.hpp"

namespace coexec {

/// True for types a process_pool can send as an argument or result:
/// - arithmetic, enum and trivially copyable types (copied as bytes);
/// - std::string, the standard containers (vector, deque, list, forward_list,
///   map, multimap, set, multiset, the unordered ones, queue, stack,
///   priority_queue), optional, variant, pair, tuple, array, complex, bitset,
///   std::chrono::duration and time_point — when their elements are
///   serializable (std::vector<X> is serializable only if X is);
/// - coexec::shared_buffer (sent as a handle to the same memory);
/// - void (a result that carries nothing);
/// - user types with cereal serialization: a member
///   `template <class Ar> void serialize(Ar&)`, or member/free save and load,
///   or a free serialize.
///
/// Rejected: pointers and member pointers (meaningless in another process),
/// references, string_view/span/reference_wrapper (they point into this
/// process), std::function and lambdas with captures, and types with none of
/// the above. A trivially copyable class with a deleted copy assignment (how
/// a capturing lambda looks, but also a struct with a const member) needs an
/// explicit serialize().
///
/// Note that a trivially copyable struct is copied byte for byte: if it holds a
/// raw pointer, give it a serialize() that does not.
template <class T>
concept serializable = detail::is_serializable_v<T>;

// For a one-line error at an API boundary, call
// coexec::detail::require_serializable<T>() (coexec/detail/codec/traits.hpp): its
// static_assert says "coexec: argument/result type T is not serializable: ..."
// and the compiler's "required from" note names T.

}  // namespace coexec
