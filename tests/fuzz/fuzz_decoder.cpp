// libFuzzer harness for the parent's side of the codec: every record a worker
// can write into a result message, for every kind of value the codec sends.
//
// Input: byte 0 picks the value type (the list below), byte 1 the record:
//   0  a bare value (decode<T>)
//   1  a task result: status byte, then the value or an exception record
//      (decode_result<T>)
//   2  a map chunk's result, byte 2 saying how many elements the parent
//      expects, 0..4 (decode_chunk_result<T>)
//   3  an exception record alone (decode_exception)
// and the rest is the message. It is decoded with a fake descriptor table of
// two shared_buffers this harness made: a decoded shared_buffer may refer to
// them by index, never to anything else.
//
// Findings are crashes: ASan, UBSan (an invalid bool or enum load included),
// libstdc++ assertions, an allocation above -malloc_limit_mb, and these
// oracles (__builtin_trap when they fail):
// - a bare value either decodes or throws serialization_error, nothing else
//   (std::bad_alloc, std::length_error, std::invalid_argument are findings);
// - a decoded value re-encodes, and that encoding decodes to the same value
//   (compared as encodings, or with == where the order of an unordered
//   container may legitimately change);
// - a decoded exception re-encodes and decodes the same way.
//
// Built with COEXEC_FUZZ_SEED_WRITER it is instead a program that writes the
// seed corpus (real encodings of each type and record) into the directory
// given as its argument.
#include <unistd.h>

#include <array>
#include <bitset>
#include <cerrno>
#include <chrono>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <forward_list>
#include <fstream>
#include <functional>
#include <future>
#include <ios>
#include <iterator>
#include <list>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <span>
#include <stack>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/errors.hpp"
#include "coexec/shared_buffer.hpp"

namespace cd = coexec::detail;

namespace {

enum class color : std::uint8_t { red, green, blue };
enum class toggle : bool { off, on };

struct point {
    int x;
    double y;
};

// Copied field by field: a bool, enums, an optional, a variant, C arrays.
struct record {
    std::int16_t id;
    bool active;
    color tint;
    toggle mode;
    std::optional<std::uint32_t> limit;
    std::variant<std::int8_t, float, color> choice;
    bool flags[3];
    point corners[2];
    std::array<bool, 2> pair;
};

struct nested {
    point origin;
    record inner;
    std::chrono::milliseconds delay;
};

struct person {
    std::string name;
    std::vector<int> scores;
    std::optional<point> home;
    std::map<std::string, bool> tags;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(name, scores, home, tags);
    }
};

// A plain struct that is not trivially copyable: field by field, no serialize().
struct order {
    std::string id;
    std::vector<record> lines;
    std::optional<point> where;
    std::vector<person> buyers;
    std::vector<std::optional<bool>> notes;
    bool urgent;
};

using time_point = std::chrono::system_clock::time_point;

// The types byte 0 chooses from. Append only: the corpus refers to them by index.
using value_types = cd::type_list<
    void, int, std::uint64_t, double, bool, char, color, toggle, std::string, std::u16string,
    std::vector<int>, std::vector<double>, std::vector<bool>, std::vector<std::string>,
    std::vector<std::vector<std::string>>, std::deque<std::string>, std::list<int>,
    std::forward_list<std::int64_t>, std::map<std::string, std::vector<int>>,
    std::multimap<int, int>, std::set<std::string>, std::multiset<int>,
    std::unordered_map<int, std::string>, std::unordered_set<std::string>,
    std::unordered_multimap<int, int>, std::unordered_multiset<int>, std::optional<int>,
    std::optional<std::string>, std::variant<int, std::string, std::vector<double>>,
    std::variant<std::monostate, bool, color>, std::pair<std::string, int>,
    std::tuple<int, bool, std::optional<double>>, std::array<int, 4>, std::array<bool, 3>,
    std::chrono::milliseconds, time_point, std::complex<double>, std::bitset<20>, point, record,
    nested, std::vector<point>, std::vector<record>, person, std::vector<person>,
    coexec::shared_buffer, std::vector<coexec::shared_buffer>, std::optional<coexec::shared_buffer>,
    std::queue<int>, std::stack<std::string>, std::priority_queue<int>, std::vector<std::byte>,
    std::vector<std::optional<bool>>, order, std::vector<order>>;

template <class List>
struct list_size;
template <class... Ts>
struct list_size<cd::type_list<Ts...>> : std::integral_constant<std::size_t, sizeof...(Ts)> {};
constexpr std::size_t type_count = list_size<value_types>::value;

template <std::size_t I, class List>
struct nth;
template <class T, class... Ts>
struct nth<0, cd::type_list<T, Ts...>> {
    using type = T;
};
template <std::size_t I, class T, class... Ts>
struct nth<I, cd::type_list<T, Ts...>> : nth<I - 1, cd::type_list<Ts...>> {};
template <std::size_t I>
using nth_type = typename nth<I, value_types>::type;

// [[maybe_unused]]: the seed writer (COEXEC_FUZZ_SEED_WRITER) does not check.
template <class T>
[[maybe_unused]] inline constexpr bool unordered = false;
template <class K, class V>
inline constexpr bool unordered<std::unordered_map<K, V>> = true;
template <class K>
inline constexpr bool unordered<std::unordered_set<K>> = true;
template <class K, class V>
inline constexpr bool unordered<std::unordered_multimap<K, V>> = true;
template <class K>
inline constexpr bool unordered<std::unordered_multiset<K>> = true;

// Calls f.template operator()<T>() for the index-th type.
template <class F, std::size_t... I>
void with_type_impl(std::size_t index, F&& f, std::index_sequence<I...>) {
    ((index == I ? (f.template operator()<nth_type<I>>(), 0) : 0), ...);
}
template <class F>
void with_type(std::size_t index, F&& f) {
    with_type_impl(index % type_count, f, std::make_index_sequence<type_count>{});
}

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "fuzz_decoder: %s\n", what);
    __builtin_trap();
}

// The fake descriptor table: two buffers this process made.
[[maybe_unused]] std::span<const int> descriptor_table() {
    static const coexec::shared_buffer small(4096);
    static const coexec::shared_buffer large(8192);
    static const std::array<int, 2> fds{small.fd(), large.fd()};
    return fds;
}

struct encoding {
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    encoding() = default;
    encoding(const encoding&) = delete;
    encoding& operator=(const encoding&) = delete;
    ~encoding() { cd::close_fds(fds); }
};

template <class T>
void encode_into(encoding& e, const T& value) {
    cd::byte_writer w(e.bytes, &e.fds);
    cd::encode(w, value);
}

template <class T>
[[maybe_unused]] inline constexpr bool is_std_array_type = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array_type<std::array<T, N>> = true;

// Equality of values copied as bytes, ignoring padding (a copy of a struct
// need not keep its padding bytes; NaNs compare by their bits).
template <class T>
bool same_bits(const T& a, const T& b) {
    if constexpr (std::has_unique_object_representations_v<T> || std::is_floating_point_v<T> ||
                  std::is_enum_v<T>) {
        return std::memcmp(&a, &b, sizeof(T)) == 0;
    } else if constexpr (std::is_array_v<T> || is_std_array_type<T>) {
        for (std::size_t i = 0; i < std::size(a); ++i)
            if (!same_bits(a[i], b[i])) return false;
        return true;
    } else if constexpr (std::is_same_v<T, std::complex<double>>) {
        return same_bits(a.real(), b.real()) && same_bits(a.imag(), b.imag());
    } else if constexpr (requires { a.time_since_epoch(); }) {
        return a == b;
    } else if constexpr (requires { a.count(); }) {
        return a.count() == b.count();
    } else if constexpr (std::is_empty_v<T>) {
        return true;
    } else {
        return cd::visit_fields(a, [&](const auto&... fa) {
            return cd::visit_fields(b,
                                    [&](const auto&... fb) { return (same_bits(fa, fb) && ...); });
        });
    }
}

// Re-encodes a decoded value and checks that the encoding decodes to it.
template <class T>
void check_value(const T& value) {
    encoding first;
    encode_into(first, value);
    cd::byte_reader r(first.bytes, first.fds);
    T again = cd::decode<T>(r);  // a throw here is a finding too (uncaught)
    if (!r.at_end()) finding("a re-encoded value left bytes unread");
    if constexpr (unordered<T>) {
        if (!(again == value)) finding("a re-encoded value decoded differently");
    } else if constexpr (cd::bitwise_serializable<T>) {
        if (!same_bits(again, value)) finding("a re-encoded value decoded differently");
    } else {
        encoding second;
        encode_into(second, again);
        if (second.bytes != first.bytes) finding("a re-encoded value decoded differently");
    }
}

[[maybe_unused]] void check_exception(const std::exception_ptr& e) {
    std::vector<std::byte> first;
    cd::byte_writer w1(first);
    cd::encode_exception(w1, e);
    cd::byte_reader r(first);
    const std::exception_ptr again = cd::decode_exception(r);
    std::vector<std::byte> second;
    cd::byte_writer w2(second);
    cd::encode_exception(w2, again);
    if (second != first) finding("a re-encoded exception decoded differently");
}

template <class T>
void fuzz_value(cd::byte_reader& r) {
    if constexpr (!std::is_void_v<T>) {
        std::optional<T> value;
        try {
            value.emplace(cd::decode<T>(r));
        } catch (const coexec::serialization_error&) {
            return;
        } catch (...) {
            finding("decoding a value threw something other than serialization_error");
        }
        check_value(*value);
    }
}

template <class T>
void fuzz_result(cd::byte_reader& r) {
    if constexpr (std::is_void_v<T>) {
        try {
            cd::decode_result<void>(r);
        } catch (...) {
            check_exception(std::current_exception());
        }
    } else {
        std::optional<T> value;
        try {
            value.emplace(cd::decode_result<T>(r));
        } catch (...) {
            // The task's exception, or serialization_error: both must survive a round trip.
            check_exception(std::current_exception());
            return;
        }
        check_value(*value);
    }
}

template <class T>
void fuzz_chunk(cd::byte_reader& r, std::size_t expected) {
    std::vector<cd::outcome<T>> outcomes;
    try {
        outcomes = cd::decode_chunk_result<T>(r, expected);
    } catch (const coexec::serialization_error&) {
        return;
    }
    if (outcomes.size() != expected) finding("a chunk decoded to the wrong number of outcomes");
    for (auto& o : outcomes) {
        if (o.has_exception()) {
            check_exception(o.exception());
        } else if constexpr (!std::is_void_v<T>) {
            if (!o.has_value()) finding("a chunk left an outcome empty");
            check_value(o.value());
        }
    }
}

}  // namespace

#ifndef COEXEC_FUZZ_SEED_WRITER

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return -1;
    const std::size_t type = data[0];
    const std::uint8_t record = data[1] % 4;
    const std::size_t header = record == 2 ? 3 : 2;
    const auto* body = reinterpret_cast<const std::byte*>(data) + header;
    cd::byte_reader r(std::span<const std::byte>(body, size - header), descriptor_table());
    switch (record) {
        case 0:
            with_type(type, [&]<class T>() { fuzz_value<T>(r); });
            break;
        case 1:
            with_type(type, [&]<class T>() { fuzz_result<T>(r); });
            break;
        case 2:
            with_type(type, [&]<class T>() { fuzz_chunk<T>(r, data[2] % 5); });
            break;
        default:
            try {
                check_exception(cd::decode_exception(r));
            } catch (const coexec::serialization_error&) {
            }
            break;
    }
    return 0;
}

#else  // COEXEC_FUZZ_SEED_WRITER: real encodings of every type and record

namespace {

template <class T>
inline constexpr bool is_optional = false;
template <class T>
inline constexpr bool is_optional<std::optional<T>> = true;
template <class T>
inline constexpr bool is_variant = false;
template <class... Ts>
inline constexpr bool is_variant<std::variant<Ts...>> = true;
template <class T>
inline constexpr bool is_pair_or_tuple = false;
template <class A, class B>
inline constexpr bool is_pair_or_tuple<std::pair<A, B>> = true;
template <class... Ts>
inline constexpr bool is_pair_or_tuple<std::tuple<Ts...>> = true;
template <class T>
inline constexpr bool is_std_array = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array<std::array<T, N>> = true;
template <class T>
inline constexpr bool is_duration = false;
template <class R, class P>
inline constexpr bool is_duration<std::chrono::duration<R, P>> = true;
template <class T>
inline constexpr bool is_complex = false;
template <class T>
inline constexpr bool is_complex<std::complex<T>> = true;
template <class T>
inline constexpr bool is_bitset = false;
template <std::size_t N>
inline constexpr bool is_bitset<std::bitset<N>> = true;

template <class V, std::size_t... I>
V make_variant(int seed, std::index_sequence<I...>);

// A value of T that depends on seed (containers hold seed % 4 elements).
template <class T>
T make(int seed) {
    if constexpr (std::is_same_v<T, bool>) {
        return (seed & 1) != 0;
    } else if constexpr (std::is_arithmetic_v<T>) {
        return static_cast<T>(seed * 37 + 1) +
               static_cast<T>(std::is_floating_point_v<T> ? 0.5 : 0);
    } else if constexpr (std::is_same_v<T, color>) {
        return static_cast<color>(seed % 3);
    } else if constexpr (std::is_same_v<T, toggle>) {
        return static_cast<toggle>(seed & 1);
    } else if constexpr (std::is_same_v<T, std::monostate>) {
        return T{};
    } else if constexpr (std::is_same_v<T, std::byte>) {
        return static_cast<std::byte>(seed * 11);
    } else if constexpr (std::is_same_v<T, std::string>) {
        return std::string(static_cast<std::size_t>(seed % 5), static_cast<char>('a' + seed % 26));
    } else if constexpr (std::is_same_v<T, std::u16string>) {
        return std::u16string(static_cast<std::size_t>(seed % 4),
                              static_cast<char16_t>(0x3b1 + seed));
    } else if constexpr (is_optional<T>) {
        if (seed % 3 == 0) return T{};
        return T(make<typename T::value_type>(seed + 1));
    } else if constexpr (is_variant<T>) {
        return make_variant<T>(seed, std::make_index_sequence<std::variant_size_v<T>>{});
    } else if constexpr (is_pair_or_tuple<T>) {
        return std::apply([&](auto... parts) { return T(make<decltype(parts)>(seed + 1)...); },
                          T{});
    } else if constexpr (is_std_array<T>) {
        T a{};
        for (std::size_t i = 0; i < a.size(); ++i)
            a[i] = make<typename T::value_type>(seed + static_cast<int>(i));
        return a;
    } else if constexpr (is_duration<T>) {
        return T(seed * 1000 + 7);
    } else if constexpr (std::is_same_v<T, time_point>) {
        return time_point(std::chrono::seconds(1700000000 + seed));
    } else if constexpr (is_complex<T>) {
        return T(seed + 0.25, -seed - 0.75);
    } else if constexpr (is_bitset<T>) {
        return T(static_cast<unsigned long long>(seed) * 7919u);
    } else if constexpr (std::is_same_v<T, point>) {
        return point{seed, seed * 0.5};
    } else if constexpr (std::is_same_v<T, record>) {
        record r{};
        r.id = static_cast<std::int16_t>(seed);
        r.active = (seed & 1) != 0;
        r.tint = make<color>(seed);
        r.mode = make<toggle>(seed + 1);
        r.limit = make<std::optional<std::uint32_t>>(seed);
        r.choice = make<std::variant<std::int8_t, float, color>>(seed);
        r.flags[0] = true;
        r.flags[2] = (seed & 2) != 0;
        r.corners[1] = make<point>(seed);
        r.pair = {true, false};
        return r;
    } else if constexpr (std::is_same_v<T, nested>) {
        return nested{make<point>(seed), make<record>(seed + 1), std::chrono::milliseconds(seed)};
    } else if constexpr (std::is_same_v<T, person>) {
        return person{make<std::string>(seed + 3), make<std::vector<int>>(seed),
                      make<std::optional<point>>(seed), make<std::map<std::string, bool>>(seed)};
    } else if constexpr (std::is_same_v<T, order>) {
        return order{make<std::string>(seed),
                     make<std::vector<record>>(seed + 1),
                     make<std::optional<point>>(seed + 2),
                     make<std::vector<person>>(seed + 3),
                     make<std::vector<std::optional<bool>>>(seed + 4),
                     (seed & 1) != 0};
    } else if constexpr (requires {
                             typename T::container_type;
                         }) {  // queue, stack, priority_queue
        T q;
        for (int i = 0; i < seed % 4; ++i)
            q.push(make<typename T::value_type>(seed + i));
        return q;
    } else if constexpr (requires { typename T::mapped_type; }) {
        T m;
        for (int i = 0; i < seed % 4; ++i)
            m.emplace(make<typename T::key_type>(seed + i),
                      make<typename T::mapped_type>(seed - i));
        return m;
    } else if constexpr (
        requires(T c) { c.push_front(c.front()); } && !requires(T c) { c.push_back(c.front()); }) {
        T l;  // forward_list
        for (int i = 0; i < seed % 4; ++i)
            l.push_front(make<typename T::value_type>(seed + i));
        return l;
    } else if constexpr (requires(T c) { c.push_back(c.front()); }) {
        T v;
        for (int i = 0; i < seed % 4; ++i)
            v.push_back(make<typename T::value_type>(seed + i));
        return v;
    } else {
        static_assert(requires(T c) { c.insert(c.begin(), *c.begin()); });  // sets
        T s;
        for (int i = 0; i < seed % 4; ++i)
            s.insert(make<typename T::value_type>(seed + i));
        return s;
    }
}

template <class V, std::size_t... I>
V make_variant(int seed, std::index_sequence<I...>) {
    V v;
    const std::size_t pick = static_cast<std::size_t>(seed) % sizeof...(I);
    ((pick == I ? (v.template emplace<I>(make<std::variant_alternative_t<I, V>>(seed)), 0) : 0),
     ...);
    return v;
}

class seed_files {
  public:
    explicit seed_files(std::filesystem::path dir) : m_dir(std::move(dir)) {
        std::filesystem::create_directories(m_dir);
    }
    void write(const std::vector<std::byte>& bytes) {
        char name[32];
        std::snprintf(name, sizeof name, "seed-%04zu", m_count++);
        std::ofstream out(m_dir / name, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()),
                  static_cast<std::streamsize>(bytes.size()));
    }
    std::size_t count() const { return m_count; }

  private:
    std::filesystem::path m_dir;
    std::size_t m_count = 0;
};

std::vector<std::byte> header(std::size_t type, std::uint8_t record) {
    return {static_cast<std::byte>(type), static_cast<std::byte>(record)};
}

// The samples of T: generated ones, or shared_buffers that match the fake
// descriptor table by index (4096 bytes at 0, 8192 at 1).
template <class T>
std::vector<T> samples() {
    using coexec::shared_buffer;
    if constexpr (std::is_same_v<T, shared_buffer>) {
        return {shared_buffer(4096), shared_buffer()};
    } else if constexpr (std::is_same_v<T, std::vector<shared_buffer>>) {
        return {{shared_buffer(4096), shared_buffer(8192)}, {}};
    } else if constexpr (std::is_same_v<T, std::optional<shared_buffer>>) {
        return {shared_buffer(4096), std::nullopt};
    } else {
        return {make<T>(0), make<T>(1), make<T>(3), make<T>(6)};
    }
}

// Appends the values' encodings as the parent receives them; the descriptors
// they dup are closed (the harness has its own table).
template <class T>
void append_values(std::vector<std::byte>& bytes, const T& value) {
    std::vector<int> fds;
    cd::byte_writer w(bytes, &fds);
    cd::encode(w, value);
    cd::close_fds(fds);
}

template <class T>
void write_type_seeds(seed_files& out, std::size_t index) {
    if constexpr (!std::is_void_v<T>) {
        for (const T& v : samples<T>()) {
            auto bare = header(index, 0);
            append_values(bare, v);
            out.write(bare);
            auto result = header(index, 1);
            result.push_back(std::byte{cd::status_value});
            append_values(result, v);
            out.write(result);
        }
    } else {
        auto result = header(index, 1);
        result.push_back(std::byte{cd::status_value});
        out.write(result);
    }
    // A chunk of three: a value, an exception, a value (what remote_invoke_chunk writes).
    auto chunk = header(index, 2);
    chunk.push_back(std::byte{3});
    {
        std::vector<int> fds;
        cd::byte_writer w(chunk, &fds);
        w.put(cd::status_value);
        w.put_u64(3);
        for (int i = 0; i < 3; ++i) {
            cd::encode_outcome<T>(w, [&]() -> T {
                if (i == 1) throw std::out_of_range("element 1");
                if constexpr (!std::is_void_v<T>) return samples<T>()[0];
            });
        }
        cd::close_fds(fds);
    }
    out.write(chunk);
}

struct unknown_failure : std::exception {
    const char* what() const noexcept override {
        return "an exception type the codec does not know";
    }
};

std::vector<std::exception_ptr> sample_exceptions() {
    using std::make_exception_ptr;
    std::vector<std::exception_ptr> all{
        make_exception_ptr(std::exception()),
        make_exception_ptr(std::logic_error("logic")),
        make_exception_ptr(std::invalid_argument("invalid")),
        make_exception_ptr(std::domain_error("domain")),
        make_exception_ptr(std::length_error("length")),
        make_exception_ptr(std::out_of_range("range")),
        make_exception_ptr(std::runtime_error("runtime")),
        make_exception_ptr(std::range_error("range error")),
        make_exception_ptr(std::overflow_error("overflow")),
        make_exception_ptr(std::underflow_error("underflow")),
        make_exception_ptr(std::bad_alloc()),
        make_exception_ptr(std::bad_array_new_length()),
        make_exception_ptr(std::bad_cast()),
        make_exception_ptr(std::bad_typeid()),
        make_exception_ptr(std::bad_function_call()),
        make_exception_ptr(std::bad_optional_access()),
        make_exception_ptr(std::bad_variant_access()),
        make_exception_ptr(std::bad_exception()),
        make_exception_ptr(
            std::system_error(std::make_error_code(std::errc::no_such_file_or_directory), "open")),
        make_exception_ptr(std::system_error(EPIPE, std::system_category())),
        make_exception_ptr(
            std::ios_base::failure("stream", std::make_error_code(std::io_errc::stream))),
        make_exception_ptr(std::filesystem::filesystem_error(
            "copy", "/a/b", "/c", std::make_error_code(std::errc::file_exists))),
        make_exception_ptr(std::filesystem::filesystem_error(
            "stat", "/x", std::make_error_code(std::errc::permission_denied))),
        make_exception_ptr(std::future_error(std::future_errc::broken_promise)),
        make_exception_ptr(coexec::error("coexec error")),
        make_exception_ptr(coexec::cancelled_error()),
        make_exception_ptr(coexec::timeout_error("timed out")),
        make_exception_ptr(coexec::executor_shutdown("shut down")),
        make_exception_ptr(coexec::worker_died(1234, 9, 0, "task f(1)")),
        make_exception_ptr(coexec::broken_pool("broken")),
        make_exception_ptr(coexec::deadline_exceeded("deadline")),
        make_exception_ptr(coexec::remote_error("ns::custom", "custom what")),
        make_exception_ptr(coexec::serialization_error("cannot decode")),
        make_exception_ptr(unknown_failure()),
        make_exception_ptr(42),
    };
    // A nested exception travels as its outer type (the codec keeps no chain).
    try {
        try {
            throw std::runtime_error("inner");
        } catch (...) {
            std::throw_with_nested(std::logic_error("outer"));
        }
    } catch (...) {
        all.push_back(std::current_exception());
    }
    return all;
}

template <std::size_t... I>
void write_all_types(seed_files& out, std::index_sequence<I...>) {
    (write_type_seeds<nth_type<I>>(out, I), ...);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    seed_files out(argv[1]);
    write_all_types(out, std::make_index_sequence<type_count>{});
    for (const auto& e : sample_exceptions()) {
        auto alone = header(0, 3);
        cd::byte_writer w(alone);
        cd::encode_exception(w, e);
        out.write(alone);
        auto result = header(1, 1);  // an int task that threw
        result.push_back(std::byte{cd::status_exception});
        cd::byte_writer wr(result);
        cd::encode_exception(wr, e);
        out.write(result);
    }
    std::printf("wrote %zu seeds\n", out.count());
    return 0;
}

#endif
