// coexec/detail/codec/archive.hpp — cereal binary archives over our byte buffers.
//
// Values that are not plain bytes go through binary_output_archive /
// binary_input_archive, so the `serialize(Ar&)` convention users know works
// unchanged. On top of what cereal knows, these archives encode plain structs
// field by field (type_rules.hpp), send a shared_buffer as a descriptor
// index, and decode as a parent must decode what an untrusted worker wrote:
// - nothing is allocated that the bytes remaining cannot justify: every
//   element count is checked against them before a container grows
//   (checked_containers.hpp replaces cereal's loaders, which resize first);
// - no value gets an invalid representation: a bool must be 0 or 1, a variant
//   index and an optional flag are checked (cereal's loaders read them
//   through our checked bool and int32), a struct is read field by field
//   unless every bit pattern is valid for it, and an enum without a fixed
//   underlying type is refused at compile time.
// Every violation throws serialization_error (or cereal::Exception, which
// decode turns into one).
//
// This is the one header of coexec that includes cereal, with every cereal
// type header the codec supports: which of them are visible changes what the
// serializable trait answers and how a value is encoded, so every translation
// unit must see the same set. Include it only where values are serialized.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

#include <cereal/archives/binary.hpp>  // only as a probe: which types cereal itself knows
#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/forward_list.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/queue.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/stack.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec::detail {

class binary_output_archive
    : public cereal::OutputArchive<binary_output_archive, cereal::AllowEmptyClassElision> {
  public:
    explicit binary_output_archive(byte_writer& writer)
        : cereal::OutputArchive<binary_output_archive, cereal::AllowEmptyClassElision>(this),
          m_writer(writer) {}
    void saveBinary(const void* data, std::size_t size) { m_writer.write(data, size); }
    byte_writer& writer() const noexcept { return m_writer; }

  private:
    byte_writer& m_writer;
};

class binary_input_archive
    : public cereal::InputArchive<binary_input_archive, cereal::AllowEmptyClassElision> {
  public:
    explicit binary_input_archive(byte_reader& reader)
        : cereal::InputArchive<binary_input_archive, cereal::AllowEmptyClassElision>(this),
          m_reader(reader) {}
    void loadBinary(void* data, std::size_t size) { m_reader.read(data, size); }
    byte_reader& reader() const noexcept { return m_reader; }

    /// Throws serialization_error unless `count` elements of at least
    /// `min_bytes_each` bytes fit in what remains; called before a container
    /// allocates for the count read from the input.
    void check_count(std::uint64_t count, std::size_t min_bytes_each) const {
        if (count > m_reader.remaining() / min_bytes_each) throw_bad_count(count, min_bytes_each);
    }

  private:
    [[noreturn]] void throw_bad_count(std::uint64_t count, std::size_t min_bytes_each) const;

    byte_reader& m_reader;
};

[[noreturn]] void throw_bad_bool(std::uint8_t byte);

/// A bool is one byte, 0 or 1 (anything else throws serialization_error).
inline bool load_bool(byte_reader& r) {
    static_assert(sizeof(bool) == 1);
    const std::uint8_t b = r.get();
    if (b > 1) throw_bad_bool(b);
    return b == 1;
}

}  // namespace coexec::detail

#include "coexec/detail/codec/type_rules.hpp"

namespace coexec::detail {

template <class>
inline constexpr bool always_false = false;

// The save/load functions below are found by cereal through ADL on the archive
// type, which lives in this namespace. Each is more specialized than cereal's
// generic one for the same type, so overload resolution prefers it.

template <class T>
    requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const T& t) {
    ar.saveBinary(std::addressof(t), sizeof t);
}
template <class T>
    requires std::is_arithmetic_v<T>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, T& t) {
    if constexpr (std::is_same_v<T, bool>) {
        t = load_bool(ar.reader());
    } else {
        ar.loadBinary(std::addressof(t), sizeof t);
    }
}
template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_output_archive& ar, cereal::NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_input_archive& ar, cereal::NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_output_archive& ar, cereal::SizeTag<T>& t) {
    ar(t.size);
}
// Every element takes at least one byte, so a count larger than the bytes
// that remain is malformed; checked before any loader can resize for it.
// (A container of a type whose encoding is empty, e.g. std::tuple<>, is thus
// limited to as many elements as bytes follow it.)
template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_input_archive& ar, cereal::SizeTag<T>& t) {
    ar(t.size);
    ar.check_count(static_cast<std::uint64_t>(t.size), 1);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const cereal::BinaryData<T>& bd) {
    ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, cereal::BinaryData<T>& bd) {
    ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}

// Plain structs and empty classes: one block of bytes when any bytes are a
// valid value, otherwise field by field, each field through the archive.
template <class T>
    requires field_by_field<T>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const T& t) {
    if constexpr (every_bit_pattern_valid<T>) {
        ar.saveBinary(std::addressof(t), sizeof(T));
    } else {
        visit_fields(t, [&](const auto&... fields) { ar(fields...); });
    }
}
template <class T>
    requires field_by_field<T>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, T& t) {
    if constexpr (every_bit_pattern_valid<T>) {
        ar.loadBinary(std::addressof(t), sizeof(T));
    } else {
        visit_fields(t, [&](auto&... fields) { ar(fields...); });
    }
}

// cereal loads an enum by casting the underlying value. That is safe for an
// enum with a fixed underlying type (the value was read through the archive,
// so a bool underlying type was checked); the others are refused, also when
// a user serialize() names one.
template <class T>
    requires cereal::common_detail::is_enum<T>::value &&
             (!has_fixed_underlying_type<typename cereal::common_detail::is_enum<T>::type>)
void CEREAL_LOAD_MINIMAL_FUNCTION_NAME(
    const binary_input_archive&, T&&,
    const typename cereal::common_detail::is_enum<T>::base_type&) {
    static_assert(always_false<T>,
                  "coexec: an enum without a fixed underlying type cannot be decoded safely (its "
                  "valid values are the range of its enumerators, which coexec cannot see): "
                  "declare one, e.g. `enum color : int {...}`");
}

// shared_buffer: a descriptor index plus the size, never the bytes.
void save_shared_buffer(byte_writer& w, const shared_buffer& b);
shared_buffer load_shared_buffer(byte_reader& r);

inline void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const shared_buffer& b) {
    save_shared_buffer(ar.writer(), b);
}
inline void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, shared_buffer& b) {
    b = load_shared_buffer(ar.reader());
}

}  // namespace coexec::detail

#include "coexec/detail/codec/checked_containers.hpp"

CEREAL_REGISTER_ARCHIVE(coexec::detail::binary_output_archive)
CEREAL_REGISTER_ARCHIVE(coexec::detail::binary_input_archive)
CEREAL_SETUP_ARCHIVE_TRAITS(coexec::detail::binary_input_archive,
                            coexec::detail::binary_output_archive)
