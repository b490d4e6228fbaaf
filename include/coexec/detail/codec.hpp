// coexec/detail/codec.hpp — how values, exceptions and calls cross a process boundary.
//
// A process worker runs the same program image as the caller, so a task is
// sent as: which function (a module-relative code address, or nothing for a
// captureless lambda, which the worker default-constructs), then its encoded
// arguments. The worker runs remote_invoke<F, Args...> — a per-type
// trampoline — which decodes them, calls F and encodes a status byte plus the
// result or the exception.
//
// Encoding: trivially copyable values are copied as bytes; everything else
// goes through a cereal binary archive (binary_output_archive /
// binary_input_archive) over our own byte buffers, so the `serialize(Ar&)`
// convention users know works unchanged. Sizes are uint64, native byte order:
// both ends are the same binary on the same machine.
//
// File descriptors (shared_buffer) travel beside the bytes:
// - Writer side: encoding a shared_buffer appends a dup() of its descriptor to
//   the byte_writer's `fds` vector. Whoever holds that vector owns those
//   descriptors and must close them once sent (close_fds), also on failure.
// - Reader side: the descriptors in a byte_reader are borrowed. Decoding a
//   shared_buffer dup()s the one it refers to, so the receiver closes the
//   descriptors it received after decoding, whether decoding succeeded or not.
//
// Thread safety: all functions here are reentrant; a byte_writer/byte_reader
// is used by one thread at a time.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

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

#include "coexec/detail/outcome.hpp"
#include "coexec/errors.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec::detail {

// ---------------------------------------------------------------------------
// Byte buffers
// ---------------------------------------------------------------------------

/// Appends bytes (and optionally file descriptors) to caller-owned vectors.
/// Allocation: grows `bytes`; throws std::bad_alloc like std::vector.
class byte_writer {
  public:
    /// `fds` may be null when the transport cannot pass descriptors; encoding
    /// a shared_buffer then throws serialization_error.
    explicit byte_writer(std::vector<std::byte>& bytes, std::vector<int>* fds = nullptr) noexcept
        : m_bytes(&bytes), m_fds(fds) {}

    void write(const void* data, std::size_t size) {
        if (size == 0) return;
        const std::size_t old = m_bytes->size();
        m_bytes->resize(old + size);
        std::memcpy(m_bytes->data() + old, data, size);
    }
    void put(std::uint8_t b) { m_bytes->push_back(static_cast<std::byte>(b)); }
    void put_u64(std::uint64_t v) { write(&v, sizeof v); }
    void put_string(std::string_view s) {
        put_u64(s.size());
        write(s.data(), s.size());
    }

    /// Takes ownership of `fd` (it goes into the fds vector) and returns its
    /// index there. Throws serialization_error (after closing fd) if this
    /// writer has no fds vector.
    std::size_t add_fd(int fd);

    std::vector<std::byte>& bytes() const noexcept { return *m_bytes; }
    std::vector<int>* fds() const noexcept { return m_fds; }
    std::size_t size() const noexcept { return m_bytes->size(); }

    /// A position to roll back to if encoding fails half-way.
    struct mark {
        std::size_t bytes;
        std::size_t fds;
    };
    mark position() const noexcept { return {m_bytes->size(), m_fds ? m_fds->size() : 0}; }
    /// Drops what was written after `m`, closing the descriptors added since.
    void rollback(mark m) noexcept;

  private:
    std::vector<std::byte>* m_bytes;
    std::vector<int>* m_fds;
};

/// Reads from a byte span; every read past the end throws serialization_error.
class byte_reader {
  public:
    explicit byte_reader(std::span<const std::byte> bytes, std::span<const int> fds = {}) noexcept
        : m_bytes(bytes), m_fds(fds) {}

    void read(void* out, std::size_t size) {
        if (size > remaining()) throw_truncated(size);
        if (size != 0) std::memcpy(out, m_bytes.data() + m_pos, size);
        m_pos += size;
    }
    std::uint8_t get() {
        std::uint8_t b;
        read(&b, 1);
        return b;
    }
    std::uint64_t get_u64() {
        std::uint64_t v;
        read(&v, sizeof v);
        return v;
    }
    std::string get_string() {
        const std::uint64_t n = get_u64();
        if (n > remaining()) throw_truncated(n);
        std::string s(reinterpret_cast<const char*>(m_bytes.data() + m_pos), n);
        m_pos += n;
        return s;
    }

    /// The index-th received descriptor (borrowed). Throws serialization_error if absent.
    int fd(std::size_t index) const;

    std::size_t remaining() const noexcept { return m_bytes.size() - m_pos; }
    std::size_t position() const noexcept { return m_pos; }
    bool at_end() const noexcept { return m_pos == m_bytes.size(); }

  private:
    [[noreturn]] void throw_truncated(std::size_t wanted) const;

    std::span<const std::byte> m_bytes;
    std::span<const int> m_fds;
    std::size_t m_pos = 0;
};

/// Closes every descriptor in `fds` (ignoring errors); for the owner of a
/// byte_writer's fds vector after sending, and for a receiver after decoding.
void close_fds(std::span<const int> fds) noexcept;

// ---------------------------------------------------------------------------
// cereal archives over byte_writer / byte_reader
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Which types are serializable
// ---------------------------------------------------------------------------

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
concept bitwise_fallback = (std::is_class_v<T> ||
                            std::is_union_v<T>)&&std::is_trivially_copyable_v<T> &&
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

// Standard templates whose bytes are their value when they are trivially
// copyable (cereal knows them, but copying the bytes is equivalent and faster).
template <class T>
inline constexpr bool is_plain_std = false;
template <class T, std::size_t N>
inline constexpr bool is_plain_std<std::array<T, N>> = true;
template <class R, class P>
inline constexpr bool is_plain_std<std::chrono::duration<R, P>> = true;
template <class C, class D>
inline constexpr bool is_plain_std<std::chrono::time_point<C, D>> = true;
template <class A, class B>
inline constexpr bool is_plain_std<std::pair<A, B>> = true;
template <class... Ts>
inline constexpr bool is_plain_std<std::tuple<Ts...>> = true;
template <class T>
inline constexpr bool is_plain_std<std::optional<T>> = true;
template <class... Ts>
inline constexpr bool is_plain_std<std::variant<Ts...>> = true;
template <class T>
inline constexpr bool is_plain_std<std::complex<T>> = true;

/// Types encoded as their raw bytes (memcpy fast path): trivially copyable,
/// serializable, and without a user serialize() whose format we must respect.
template <class T>
concept bitwise_serializable = std::is_trivially_copyable_v<T> && is_serializable_v<T> &&
    (std::is_arithmetic_v<T> || std::is_enum_v<T> || is_plain_std<T> || !cereal_knows<T>);

// Memcpy fast path for vectors and arrays of trivially copyable class types
// (cereal already block-copies arithmetic elements and strings, but would go
// element by element here). More specialized than cereal's generic overloads
// in the archive parameter, so overload resolution prefers these.
template <class T, class A>
requires bitwise_serializable<T> &&
    (!std::is_arithmetic_v<T>)void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar,
                                                             const std::vector<T, A>& v) {
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(v.size())));
    ar.saveBinary(v.data(), v.size() * sizeof(T));
}
template <class T, class A>
requires bitwise_serializable<T> &&
    (!std::is_arithmetic_v<T>)&&std::default_initializable<T> void CEREAL_LOAD_FUNCTION_NAME(
        binary_input_archive& ar, std::vector<T, A>& v) {
    cereal::size_type n;
    ar(cereal::make_size_tag(n));
    // Check before resizing so a corrupt size cannot trigger a huge allocation.
    if (n > ar.reader().remaining() / sizeof(T)) {
        throw serialization_error("coexec: truncated input: a vector claims " + std::to_string(n) +
                                  " elements but only " + std::to_string(ar.reader().remaining()) +
                                  " bytes remain");
    }
    v.resize(static_cast<std::size_t>(n));
    ar.loadBinary(v.data(), v.size() * sizeof(T));
}
template <class T, std::size_t N>
requires bitwise_serializable<T> &&
    (!std::is_arithmetic_v<T>)void CEREAL_SAVE_FUNCTION_NAME(binary_output_archive& ar,
                                                             const std::array<T, N>& a) {
    ar.saveBinary(a.data(), sizeof a);
}
template <class T, std::size_t N>
requires bitwise_serializable<T> &&
    (!std::is_arithmetic_v<T>)void CEREAL_LOAD_FUNCTION_NAME(binary_input_archive& ar,
                                                             std::array<T, N>& a) {
    ar.loadBinary(a.data(), sizeof a);
}

// ---------------------------------------------------------------------------
// encode / decode
// ---------------------------------------------------------------------------

/// Fails to compile, with one line naming the problem, unless T is
/// serializable; the "required from" note names T.
template <class T>
consteval void require_serializable() {
    static_assert(is_serializable_v<T>,
                  "coexec: argument/result type T is not serializable: give it `template <class "
                  "Ar> void serialize(Ar&)` or use a trivially copyable type");
}

template <class T>
void encode_one(byte_writer& w, binary_output_archive* ar, const T& value) {
    if constexpr (bitwise_serializable<T>) {
        w.write(std::addressof(value), sizeof(T));
    } else {
        (*ar)(value);
    }
}

/// Appends the encoding of each value, in order. Throws serialization_error
/// (e.g. a shared_buffer and no fds vector), std::bad_alloc, or whatever a
/// user serialize() throws; on throw, the writer may hold a partial encoding
/// (use byte_writer::position/rollback to undo it).
template <class... Ts>
void encode(byte_writer& w, const Ts&... values) {
    (require_serializable<Ts>(), ...);
    if constexpr ((bitwise_serializable<Ts> && ...)) {
        (encode_one(w, nullptr, values), ...);
    } else {
        binary_output_archive ar(w);
        (encode_one(w, &ar, values), ...);
    }
}

/// Reads one T written by encode. Trivially copyable T need not be default
/// constructible; other types must be. Throws serialization_error when the
/// input is truncated or malformed.
template <class T>
T decode(byte_reader& r) {
    require_serializable<T>();
    if constexpr (std::is_void_v<T>) {
        return;
    } else if constexpr (bitwise_serializable<T>) {
        std::array<std::byte, sizeof(T)> raw;
        r.read(raw.data(), raw.size());
        return std::bit_cast<T>(raw);
    } else {
        static_assert(std::is_default_constructible_v<T>,
                      "coexec: a type that is not trivially copyable must be default "
                      "constructible to be decoded");
        binary_input_archive ar(r);
        T value{};
        try {
            ar(value);
        } catch (const cereal::Exception& e) {
            throw serialization_error(std::string("coexec: cannot decode a value: ") + e.what());
        }
        return value;
    }
}

// ---------------------------------------------------------------------------
// Exceptions
// ---------------------------------------------------------------------------

/// Encodes the exception in `e` (must not be null: throws serialization_error).
/// Standard and coexec exception types are recorded so that decode_exception
/// re-creates the same type with the same what(); any other type is recorded
/// by its demangled name and what() and comes back as remote_error.
void encode_exception(byte_writer& w, std::exception_ptr e);

/// Re-creates an exception written by encode_exception. Throws
/// serialization_error if the input is truncated or malformed.
std::exception_ptr decode_exception(byte_reader& r);

/// The demangled name of the exception currently being handled ("int" for
/// `throw 42`); must be called inside a catch block.
std::string current_exception_type_name();

// ---------------------------------------------------------------------------
// Function identity
// ---------------------------------------------------------------------------

/// Encodes a code address as (module index in dl_iterate_phdr order) << 48 |
/// offset from the module's load address, so it means the same function in
/// another process running the same binary with the same startup libraries,
/// even under ASLR. Throws serialization_error if `fn` lies in no loaded module.
std::uint64_t encode_code_address(const void* fn);

/// The inverse of encode_code_address in this process. Throws
/// serialization_error if the module does not exist or the address falls
/// outside its loaded segments.
const void* decode_code_address(std::uint64_t encoded);

// ---------------------------------------------------------------------------
// Remote calls
// ---------------------------------------------------------------------------

template <class F>
inline constexpr bool is_function_pointer_v =
    std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

/// Captureless lambdas and other stateless function objects: not sent at all,
/// default-constructed in the worker.
template <class F>
inline constexpr bool is_stateless_callable_v =
    std::is_class_v<F>&& std::is_empty_v<F>&& std::is_default_constructible_v<F>;

template <class F>
inline constexpr bool is_sendable_callable_v =
    is_function_pointer_v<F> || is_stateless_callable_v<F> || is_serializable_v<F>;

// Callables whose first parameter is std::stop_token get a default one: a
// process task is cancelled by killing its worker, not cooperatively.
template <class F, class... Args>
inline constexpr bool remote_takes_stop_token_v = std::is_invocable_v<F&, std::stop_token, Args...>;

template <class F, class... Args>
struct remote_call_traits {
    static constexpr bool invocable =
        remote_takes_stop_token_v<F, Args...> || std::is_invocable_v<F&, Args...>;
};

template <class F, class... Args>
decltype(auto) invoke_remote(F& f, Args&&... args) {
    if constexpr (remote_takes_stop_token_v<F, Args...>) {
        return std::invoke(f, std::stop_token{}, std::forward<Args>(args)...);
    } else {
        return std::invoke(f, std::forward<Args>(args)...);
    }
}

template <class F, class... Args>
struct remote_result {
    using type = void;
};
template <class F, class... Args>
requires remote_call_traits<F, Args...>::invocable struct remote_result<F, Args...> {
    using type =
        std::remove_cvref_t<decltype(invoke_remote(std::declval<F&>(), std::declval<Args>()...))>;
};

/// What the caller receives for F(Args...) run remotely (decayed: a value is
/// sent back, never a reference). F and Args are the decayed types.
template <class F, class... Args>
using remote_result_t = typename remote_result<std::decay_t<F>, std::decay_t<Args>...>::type;

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};

// For map: a tuple element is spread over the parameters, anything else is
// the single argument.
template <class F, class Arg>
struct chunk_result {
    using type = remote_result_t<F, Arg>;
};
template <class F, class... Ts>
struct chunk_result<F, std::tuple<Ts...>> {
    using type = remote_result_t<F, Ts...>;
};
/// The per-element result of remote_invoke_chunk<F, Arg>.
template <class F, class Arg>
using chunk_result_t = typename chunk_result<std::decay_t<F>, std::decay_t<Arg>>::type;

template <class T>
inline constexpr bool dependent_false = false;

template <class T>
consteval void require_serializable_argument() {
    static_assert(is_serializable_v<T>,
                  "coexec::process_pool: an argument type is not serializable (see the type in "
                  "the 'required from' note): give it `template <class Ar> void serialize(Ar&)` "
                  "or use a trivially copyable type; pointers and references cannot be sent");
}

template <class R>
consteval void require_serializable_result() {
    static_assert(is_serializable_v<R>,
                  "coexec::process_pool: the result type is not serializable (see the type in "
                  "the 'required from' note): give it `template <class Ar> void serialize(Ar&)` "
                  "or return a trivially copyable type; pointers and references cannot be sent");
}

/// Compile-time checks for sending F(Args...) to a process worker, in this
/// order, stopping at the first failure so that one readable error is shown:
/// the callable kind, each argument type, invocability, the result type.
/// F and Args may be given undecayed (as deduced by submit).
template <class F, class... Args>
consteval void check_remote_callable() {
    using Fn = std::decay_t<F>;
    if constexpr (!is_sendable_callable_v<Fn>) {
        static_assert(dependent_false<F>,
                      "coexec::process_pool: the callable must be a function pointer, a "
                      "captureless lambda or a serializable function object (a capturing "
                      "lambda's captures cannot be sent to another process)");
    } else if constexpr (!all_serializable<std::decay_t<Args>...>) {
        (require_serializable_argument<std::decay_t<Args>>(), ...);
    } else if constexpr (!remote_call_traits<Fn, std::decay_t<Args>...>::invocable) {
        static_assert(dependent_false<F>,
                      "coexec::process_pool: the callable cannot be invoked with these "
                      "arguments (after decay: they are sent by value)");
    } else {
        require_serializable_result<remote_result_t<F, Args...>>();
    }
}

template <class F, class... Args>
inline constexpr bool is_remote_callable_v =
    is_sendable_callable_v<std::decay_t<F>>&& all_serializable<std::decay_t<Args>...>&&
        remote_call_traits<std::decay_t<F>, std::decay_t<Args>...>::invocable&&
            is_serializable_v<remote_result_t<F, Args...>>;

template <class Fn>
void encode_callable(byte_writer& w, const Fn& f) {
    if constexpr (is_function_pointer_v<Fn>) {
        // bit_cast: converting a function pointer to void* is only conditionally supported.
        encode(w, encode_code_address(std::bit_cast<const void*>(f)));
    } else if constexpr (is_stateless_callable_v<Fn>) {
        // Nothing to send: the worker default-constructs the same closure type.
    } else {
        encode(w, f);
    }
}

template <class Fn>
Fn decode_callable(byte_reader& r) {
    if constexpr (is_function_pointer_v<Fn>) {
        return std::bit_cast<Fn>(decode_code_address(decode<std::uint64_t>(r)));
    } else if constexpr (is_stateless_callable_v<Fn>) {
        return Fn{};
    } else {
        return decode<Fn>(r);
    }
}

inline constexpr std::uint8_t status_value = 0;
inline constexpr std::uint8_t status_exception = 1;

// Runs `produce` and appends status + result; if anything throws (including
// encoding the result), rolls back and appends status + exception instead.
template <class R, class Produce>
void encode_outcome(byte_writer& out, Produce&& produce) {
    const auto mark = out.position();
    try {
        if constexpr (std::is_void_v<R>) {
            std::forward<Produce>(produce)();
            out.put(status_value);
        } else {
            decltype(auto) result = std::forward<Produce>(produce)();
            out.put(status_value);
            encode(out, static_cast<const R&>(result));
        }
    } catch (...) {
        out.rollback(mark);
        out.put(status_exception);
        encode_exception(out, std::current_exception());
    }
}

/// Caller side: writes what remote_invoke<decay_t<F>, decay_t<Args>...> reads.
/// Throws what encode throws.
template <class F, class... Args>
void encode_call(byte_writer& w, const F& f, const Args&... args) {
    check_remote_callable<F, Args...>();
    if constexpr (is_remote_callable_v<F, Args...>) {
        encode_callable<std::decay_t<F>>(w, f);
        encode(w, static_cast<const std::decay_t<Args>&>(args)...);
    }
}

/// Worker side: the trampoline. Reads the callable and the arguments from
/// `in`, calls, and appends to `out` a status byte (0: value, 1: exception)
/// then the encoded result (nothing for void) or the encoded exception.
/// Never throws for a failure of the task or of decoding (those are encoded);
/// only if encoding the exception itself fails (std::bad_alloc).
template <class F, class... Args>
void remote_invoke(byte_reader& in, byte_writer& out) {
    check_remote_callable<F, Args...>();
    if constexpr (is_remote_callable_v<F, Args...>) {
        using Fn = std::decay_t<F>;
        using R = remote_result_t<F, Args...>;
        encode_outcome<R>(out, [&]() -> decltype(auto) {
            Fn f = decode_callable<Fn>(in);
            // Braced initialization evaluates left to right: arguments decode in order.
            std::tuple<std::decay_t<Args>...> args{decode<std::decay_t<Args>>(in)...};
            return std::apply([&](auto&... a) -> R { return invoke_remote(f, std::move(a)...); },
                              args);
        });
    }
}

/// Caller side: returns the result written by remote_invoke, or rethrows the
/// task's exception (re-created by decode_exception). Throws
/// serialization_error on malformed input.
template <class R>
R decode_result(byte_reader& in) {
    const std::uint8_t status = in.get();
    if (status == status_exception) std::rethrow_exception(decode_exception(in));
    if (status != status_value) {
        throw serialization_error("coexec: malformed task result (status byte " +
                                  std::to_string(status) + ")");
    }
    return decode<R>(in);
}

template <class Fn, class Arg>
decltype(auto) invoke_element(Fn& f, Arg&& element) {
    if constexpr (is_tuple<std::decay_t<Arg>>::value) {
        return std::apply(
            [&](auto&&... a) -> decltype(auto) { return invoke_remote(f, std::move(a)...); },
            element);
    } else {
        return invoke_remote(f, std::move(element));
    }
}

template <class F, class Arg>
inline constexpr bool is_remote_chunk_callable_v = false;
template <class F, class Arg>
requires(
    !is_tuple<std::decay_t<Arg>>::value) inline constexpr bool is_remote_chunk_callable_v<F, Arg> =
    is_remote_callable_v<F, Arg>;
template <class F, class... Ts>
inline constexpr bool is_remote_chunk_callable_v<F, std::tuple<Ts...>> =
    is_remote_callable_v<F, Ts...>;

template <class F, class Arg>
consteval void check_remote_chunk_callable() {
    if constexpr (is_tuple<std::decay_t<Arg>>::value) {
        []<class... Ts>(std::type_identity<std::tuple<Ts...>>) {
            check_remote_callable<F, Ts...>();
        }(std::type_identity<std::decay_t<Arg>>{});
    } else {
        check_remote_callable<F, Arg>();
    }
}

/// Caller side of map: writes what remote_invoke_chunk<decay_t<F>, Arg> reads.
template <class F, class Arg>
void encode_chunk(byte_writer& w, const F& f, const std::vector<Arg>& elements) {
    check_remote_chunk_callable<F, Arg>();
    if constexpr (is_remote_chunk_callable_v<std::decay_t<F>, Arg>) {
        encode_callable<std::decay_t<F>>(w, f);
        encode(w, elements);
    }
}

/// Worker side of map: reads the callable then a std::vector<Arg>, calls F on
/// each element (a std::tuple element is applied as the argument list) and
/// writes a status byte: 0 then the count and, per element, status + value or
/// exception, so one failure does not lose the others; or 1 then one
/// exception if the chunk itself could not be decoded.
template <class F, class Arg>
void remote_invoke_chunk(byte_reader& in, byte_writer& out) {
    check_remote_chunk_callable<F, Arg>();
    if constexpr (is_remote_chunk_callable_v<std::decay_t<F>, Arg>) {
        using Fn = std::decay_t<F>;
        using R = chunk_result_t<F, Arg>;
        const auto mark = out.position();
        std::vector<Arg> elements;
        std::optional<Fn> f;
        try {
            f.emplace(decode_callable<Fn>(in));
            elements = decode<std::vector<Arg>>(in);
        } catch (...) {
            out.rollback(mark);
            out.put(status_exception);
            encode_exception(out, std::current_exception());
            return;
        }
        out.put(status_value);
        out.put_u64(elements.size());
        for (auto& element : elements) {
            encode_outcome<R>(out, [&]() -> decltype(auto) {
                if constexpr (std::is_void_v<R>) {
                    invoke_element(*f, std::move(element));
                } else {
                    return R(invoke_element(*f, std::move(element)));
                }
            });
        }
    }
}

/// Caller side of map: the outcomes written by remote_invoke_chunk, one per
/// element sent (`expected` of them). If the worker could not decode the
/// chunk, every element holds that exception. Throws serialization_error on
/// malformed input or a count other than `expected`.
template <class R>
std::vector<outcome<R>> decode_chunk_result(byte_reader& in, std::size_t expected) {
    std::vector<outcome<R>> outcomes(expected);
    const std::uint8_t status = in.get();
    auto store_exception = [](outcome<R>& o, std::exception_ptr e) {
        if constexpr (std::is_void_v<R>) {
            o.error = std::move(e);
        } else {
            o.result.template emplace<2>(std::move(e));
        }
    };
    if (status == status_exception) {
        auto e = decode_exception(in);
        for (auto& o : outcomes)
            store_exception(o, e);
        return outcomes;
    }
    if (status != status_value) {
        throw serialization_error("coexec: malformed map chunk result (status byte " +
                                  std::to_string(status) + ")");
    }
    const std::uint64_t count = in.get_u64();
    if (count != expected) {
        throw serialization_error("coexec: a map chunk returned " + std::to_string(count) +
                                  " results for " + std::to_string(expected) + " inputs");
    }
    for (auto& o : outcomes) {
        const std::uint8_t s = in.get();
        if (s == status_exception) {
            store_exception(o, decode_exception(in));
        } else if (s != status_value) {
            throw serialization_error("coexec: malformed map element result (status byte " +
                                      std::to_string(s) + ")");
        } else if constexpr (!std::is_void_v<R>) {
            o.result.template emplace<1>(decode<R>(in));
        }
    }
    return outcomes;
}

}  // namespace coexec::detail

CEREAL_REGISTER_ARCHIVE(coexec::detail::binary_output_archive)
CEREAL_REGISTER_ARCHIVE(coexec::detail::binary_input_archive)
CEREAL_SETUP_ARCHIVE_TRAITS(coexec::detail::binary_input_archive,
                            coexec::detail::binary_output_archive)
