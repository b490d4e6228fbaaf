// coexec/detail/codec/archive.hpp — cereal binary archives over our byte buffers.
//
// Values that are not plain bytes go through binary_output_archive /
// binary_input_archive, so the `serialize(Ar&)` convention users know works
// unchanged. On top of what cereal knows, these archives copy as bytes the
// trivially copyable class types nobody wrote serialization for (the bitwise
// fallback), and send a shared_buffer as a descriptor index.
//
// This is the one header of coexec that includes cereal, with every cereal
// type header the codec supports: which of them are visible changes what the
// serializable trait answers and how a value is encoded, so every translation
// unit must see the same set. Include it only where values are serialized.
#pragma once

#include <concepts>
#include <cstddef>
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

  private:
    byte_reader& m_reader;
};

// The save/load functions below are found by cereal through ADL on the archive
// type, which lives in this namespace.

template <class T>
    requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const T& t) {
    ar.saveBinary(std::addressof(t), sizeof t);
}
template <class T>
    requires std::is_arithmetic_v<T>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, T& t) {
    ar.loadBinary(std::addressof(t), sizeof t);
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
template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(binary_input_archive& ar, cereal::SizeTag<T>& t) {
    ar(t.size);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const cereal::BinaryData<T>& bd) {
    ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, cereal::BinaryData<T>& bd) {
    ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}

// Does cereal (or the user, for cereal) already provide serialization for T?
// Probed with cereal's own binary archives so that the answer does not depend
// on the bitwise fallback defined below for our archives (no recursion).
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

// Trivially copyable class types nobody wrote serialization for: copied as bytes.
template <class T>
concept bitwise_fallback =
    (std::is_class_v<T> || std::is_union_v<T>)&&std::is_trivially_copyable_v<T> &&
    !looks_like_closure<T> && !cereal_knows<T>;

template <class T>
    requires bitwise_fallback<T>
void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar, const T& t) {
    ar.saveBinary(std::addressof(t), sizeof(T));
}
template <class T>
    requires bitwise_fallback<T>
void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar, T& t) {
    ar.loadBinary(std::addressof(t), sizeof(T));
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

CEREAL_REGISTER_ARCHIVE(coexec::detail::binary_output_archive)
CEREAL_REGISTER_ARCHIVE(coexec::detail::binary_input_archive)
CEREAL_SETUP_ARCHIVE_TRAITS(coexec::detail::binary_input_archive,
                            coexec::detail::binary_output_archive)
