// coexec/serializable.hpp — which types can cross a process boundary.
#pragma once

#include "coexec/detail/codec/traits.hpp"

namespace coexec {

/// True for types a process_pool can send as an argument or result:
/// - arithmetic types, enums with a fixed underlying type (`enum class`, or
///   `enum e : int`), empty classes, and plain structs (aggregates: public
///   fields, no constructors, no base class, at most 32 fields) whose fields
///   are serializable (sent field by field, or as bytes when any bytes are a
///   valid value, e.g. numbers and arrays of numbers);
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
/// also as struct fields; references, string_view/span/reference_wrapper
/// (they point into this process), std::function and lambdas with captures,
/// unions, enums without a fixed underlying type, and types with none of the
/// above. These need an explicit serialize(): a trivially copyable class that
/// is not a plain struct (constructors or private fields: coexec cannot check
/// its invariants when a worker sends it, so it does not copy its bytes), and
/// one with a deleted copy assignment (how a capturing lambda looks, but also
/// a struct with a const member).
template <class T>
concept serializable = detail::is_serializable_v<T>;

// For a one-line error at an API boundary, call
// coexec::detail::require_serializable<T>() (coexec/detail/codec/traits.hpp): its
// static_assert says "coexec: argument/result type T is not serializable: <why>"
// and the compiler's instantiation note names T and the culprit inside it.

}  // namespace coexec
