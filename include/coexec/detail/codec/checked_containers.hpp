// coexec/detail/codec/checked_containers.hpp — container loaders that distrust the input.
//
// cereal's loaders resize a container to the element count read from the
// input before reading any element: 8 bytes could make the parent allocate
// (and zero) 2^33 elements. These replace them for binary_input_archive,
// writing nothing new on the wire (the savers are cereal's, except where a
// block copy is faster):
// - a count is checked against the bytes that remain before anything grows:
//   elements that may be bit-copied need sizeof(T) bytes each, any other
//   element at least one;
// - containers of elements that may be bit-copied are sized once and read
//   as one block (std::vector<double> of 64 MiB stays one memcpy);
// - other elements are read one by one into a container that grows as they
//   arrive, after a reservation no larger than the bytes that remain, so
//   memory follows the bytes actually decoded, not the count claimed;
// - std::array, C arrays and std::bitset are read element by element unless
//   their elements may be bit-copied (cereal copies bool arrays as bytes).
//
// Included by archive.hpp only. Reentrant.
#pragma once

#include <algorithm>
#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <forward_list>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "coexec/errors.hpp"

namespace coexec::detail {

/// The fewest bytes one T can take on the wire, as far as the loaders rely on.
template <class T>
inline constexpr std::size_t min_encoded_size = every_bit_pattern_valid<T> ? sizeof(T) : 1;

// Reads a size tag (checked against the remaining bytes by the SizeTag loader)
// then checks it again for elements of at least `min_bytes_each`.
inline std::uint64_t load_count(binary_input_archive& ar, std::size_t min_bytes_each) {
    cereal::size_type n = 0;
    ar(cereal::make_size_tag(n));
    ar.check_count(static_cast<std::uint64_t>(n), min_bytes_each);
    return static_cast<std::uint64_t>(n);
}

// Fills `c` (empty, of bit-copyable elements) with `n` elements straight
// from the input: storage reserved and advised first (advise_bulk_fill) so a
// large payload is faulted in huge pages, then one copy (no zero-fill pass
// when the elements are bytes).
template <class C>
void load_bulk(binary_input_archive& ar, C& c, std::uint64_t n) {
    using T = typename C::value_type;
    const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(T);
    // Only storage this call allocates is advised: memory the container
    // already held may share its pages with other objects of the program.
    const bool fresh = c.capacity() < static_cast<std::size_t>(n);
    c.reserve(static_cast<std::size_t>(n));
    if constexpr (std::is_same_v<typename C::allocator_type, std::allocator<T>>) {
        if (fresh && bytes >= bulk_fill_bytes) advise_bulk_fill(c.data(), bytes);
    }
    if constexpr (alignof(T) == 1) {
        const std::span<const std::byte> in = ar.reader().take(bytes);
        const auto* first = reinterpret_cast<const T*>(in.data());
        c.insert(c.end(), first, first + n);
    } else {
        c.resize(static_cast<std::size_t>(n));
        ar.loadBinary(c.data(), bytes);
    }
}

// A reservation that costs no more memory than the bytes that remain.
template <class T>
std::size_t bounded_reservation(const binary_input_archive& ar, std::uint64_t count) {
    const std::uint64_t affordable = ar.reader().remaining() / sizeof(T);
    return static_cast<std::size_t>(std::min(count, affordable));
}

// --- strings ----------------------------------------------------------------

template <class C, class Tr, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::basic_string<C, Tr, A>& s) {
    static_assert(every_bit_pattern_valid<C>,
                  "coexec: a string of this character type is not sent");
    const std::uint64_t n = load_count(ar, sizeof(C));
    s.clear();
    load_bulk(ar, s, n);
}

// --- sequences ----------------------------------------------------------------

template <class T, class A>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const std::vector<T, A>& v) {
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(v.size())));
    if constexpr (every_bit_pattern_valid<T>) {
        ar.saveBinary(v.data(), v.size() * sizeof(T));
    } else {
        for (const auto& e : v)
            ar(e);
    }
}
template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::vector<T, A>& v) {
    const std::uint64_t n = load_count(ar, min_encoded_size<T>);
    v.clear();
    if constexpr (every_bit_pattern_valid<T>) {
        load_bulk(ar, v, n);
    } else {
        v.reserve(bounded_reservation<T>(ar, n));
        for (std::uint64_t i = 0; i < n; ++i)
            ar(v.emplace_back());
    }
}
// vector<bool> has its own overloads in cereal; these are more specialized
// than both. One byte per bool, as cereal writes them.
template <class A>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const std::vector<bool, A>& v) {
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(v.size())));
    for (const bool b : v)
        ar(b);
}
template <class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::vector<bool, A>& v) {
    const std::uint64_t n = load_count(ar, 1);
    v.clear();
    v.reserve(static_cast<std::size_t>(n));  // n bits for n bytes
    for (std::uint64_t i = 0; i < n; ++i)
        v.push_back(load_bool(ar.reader()));
}

template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::deque<T, A>& d) {
    const std::uint64_t n = load_count(ar, min_encoded_size<T>);
    d.clear();
    if constexpr (every_bit_pattern_valid<T>) {
        d.resize(static_cast<std::size_t>(n));
        for (auto& e : d)
            ar.loadBinary(std::addressof(e), sizeof(T));
    } else {
        for (std::uint64_t i = 0; i < n; ++i)
            ar(d.emplace_back());
    }
}

template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::list<T, A>& l) {
    const std::uint64_t n = load_count(ar, min_encoded_size<T>);
    l.clear();
    for (std::uint64_t i = 0; i < n; ++i)
        ar(l.emplace_back());
}

template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::forward_list<T, A>& l) {
    const std::uint64_t n = load_count(ar, min_encoded_size<T>);
    l.clear();
    auto last = l.before_begin();
    for (std::uint64_t i = 0; i < n; ++i) {
        last = l.emplace_after(last);
        ar(*last);
    }
}

// --- associative containers ---------------------------------------------------

template <class Map>
void load_map(binary_input_archive& ar, Map& m) {
    using K = typename Map::key_type;
    using V = typename Map::mapped_type;
    const std::uint64_t n = load_count(ar, min_encoded_size<K> + min_encoded_size<V>);
    m.clear();
    if constexpr (requires { m.reserve(std::size_t{}); }) m.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n; ++i) {
        K key{};
        V value{};
        ar(cereal::make_map_item(key, value));
        // end(): elements arrive sorted, and equal keys of a multimap keep
        // their order (cereal's hint, the last insertion, reversed them).
        m.emplace_hint(m.end(), std::move(key), std::move(value));
    }
}

template <class Set>
void load_set(binary_input_archive& ar, Set& s) {
    using K = typename Set::key_type;
    const std::uint64_t n = load_count(ar, min_encoded_size<K>);
    s.clear();
    if constexpr (requires { s.reserve(std::size_t{}); }) s.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n; ++i) {
        K key{};
        ar(key);
        s.emplace_hint(s.end(), std::move(key));
    }
}

template <class K, class V, class C, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::map<K, V, C, A>& m) {
    load_map(ar, m);
}
template <class K, class V, class C, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::multimap<K, V, C, A>& m) {
    load_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::unordered_map<K, V, H, E, A>& m) {
    load_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar,
                               std::unordered_multimap<K, V, H, E, A>& m) {
    load_map(ar, m);
}
template <class K, class C, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::set<K, C, A>& s) {
    load_set(ar, s);
}
template <class K, class C, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::multiset<K, C, A>& s) {
    load_set(ar, s);
}
template <class K, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::unordered_set<K, H, E, A>& s) {
    load_set(ar, s);
}
template <class K, class H, class E, class A>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::unordered_multiset<K, H, E, A>& s) {
    load_set(ar, s);
}

// --- fixed-size arrays ----------------------------------------------------------

template <class T, std::size_t N>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const std::array<T, N>& a) {
    if constexpr (every_bit_pattern_valid<T>) {
        ar.saveBinary(a.data(), N * sizeof(T));
    } else {
        for (const auto& e : a)
            ar(e);
    }
}
template <class T, std::size_t N>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::array<T, N>& a) {
    if constexpr (every_bit_pattern_valid<T>) {
        ar.loadBinary(a.data(), N * sizeof(T));
    } else {
        for (auto& e : a)
            ar(e);
    }
}
// C arrays (fields of plain structs, or named in a user serialize()). cereal
// writes them as a block when the elements are arithmetic, bool included;
// one bool per byte either way, so reading them one by one matches.
template <class T, std::size_t N>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_input_archive& ar, T (&a)[N]) {
    if constexpr (every_bit_pattern_valid<T>) {
        ar.loadBinary(a, sizeof a);
    } else {
        for (auto& e : a)
            ar(e);
    }
}

// cereal saves a bitset as its representation tag then N bits in bytes (our
// output archive supports binary data, so always the `bits` representation);
// its loader also accepts a string of '0'/'1' that std::bitset parses and
// throws std::invalid_argument on. Only what we write is accepted here.
template <std::size_t N>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, std::bitset<N>& bits) {
    constexpr auto bits_tag = static_cast<std::uint8_t>(cereal::bitset_detail::type::bits);
    if (ar.reader().get() != bits_tag) {
        throw serialization_error("coexec: malformed std::bitset encoding");
    }
    bits.reset();
    std::uint8_t chunk = 0;
    for (std::size_t i = 0; i < N; ++i) {
        if (i % 8 == 0) chunk = ar.reader().get();
        if (chunk & (0x80u >> (i % 8))) bits.set(i);
    }
}

}  // namespace coexec::detail
