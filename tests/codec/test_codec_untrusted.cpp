// Tests for decoding bytes written by an untrusted process: element counts are
// checked against the bytes that remain before anything is allocated, and no
// decoded value has an invalid representation (a bool of 2, a variant index
// out of range, an optional flag of 7, a struct holding either).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <forward_list>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/errors.hpp"
#include "coexec/serializable.hpp"

namespace cd = coexec::detail;

namespace {

// Counts the bytes containers using it allocate, so a test can see an
// allocation made for a count that the input cannot back.
inline std::size_t g_allocated = 0;

template <class T>
struct counting_allocator {
    using value_type = T;
    counting_allocator() = default;
    template <class U>
    counting_allocator(const counting_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        g_allocated += n * sizeof(T);
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
    friend bool operator==(counting_allocator, counting_allocator) { return true; }
};

// A message that claims `count` elements and then holds only a few bytes.
std::vector<std::byte> claim(std::uint64_t count, std::size_t bytes_after = 8) {
    std::vector<std::byte> bytes(sizeof count + bytes_after, std::byte{1});
    std::memcpy(bytes.data(), &count, sizeof count);
    return bytes;
}

// Decodes T from a message claiming `count` elements; returns the bytes the
// container allocated (via counting_allocator) before decoding failed.
template <class T>
std::size_t allocated_for_claim(std::uint64_t count) {
    const auto bytes = claim(count);
    g_allocated = 0;
    cd::byte_reader r(bytes);
    CHECK_THROWS_AS(cd::decode<T>(r), coexec::serialization_error);
    return g_allocated;
}

template <class T>
using counted_vector = std::vector<T, counting_allocator<T>>;
using counted_string = std::basic_string<char, std::char_traits<char>, counting_allocator<char>>;

template <class T>
std::vector<std::byte> encoded(const T& value) {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    cd::encode(w, value);
    return bytes;
}

bool valid_bool(bool b) {
    return std::bit_cast<std::uint8_t>(b) <= 1;
}

// Overwrites each byte of a valid encoding of `value` with each of a few bad
// values; every result must either fail to decode with serialization_error or
// decode into a value `valid` accepts. Returns how many variants were rejected.
template <class T, class Valid>
int corrupt_each_byte(const T& value, Valid valid) {
    const auto good = encoded(value);
    int rejected = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (const std::uint8_t bad : {2, 7, 0x80, 0xff}) {
            auto bytes = good;
            bytes[i] = std::byte{bad};
            cd::byte_reader r(bytes);
            try {
                const T out = cd::decode<T>(r);
                INFO("byte " << i << " set to " << int(bad));
                CHECK(valid(out));
            } catch (const coexec::serialization_error&) {
                ++rejected;
            }
        }
    }
    return rejected;
}

struct flags {
    int id;
    bool on;
    bool visible;
};

struct point {
    int x;
    double y;
};

struct with_array {
    bool bits[3];
    float weights[2];
};

struct nested {
    point at;
    flags f;
    std::optional<int> maybe;
};

struct has_pointer {
    int* p;
    int size;
};

class opaque {
  public:
    explicit opaque(int v) : m_value(v) {}
    int value() const { return m_value; }

  private:
    int m_value;
};

enum loose { loose_a, loose_b };          // no fixed underlying type
enum fixed_small : std::uint8_t { f_a };  // fixed: every uint8_t is a value
enum class flag_enum : bool { no, yes };  // fixed, but bool

union number {
    int i;
    float f;
};

// A union with its own serialization says which member is active.
union tagged_by_user {
    int i;
    float f;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(i);
    }
};

}  // namespace

// --- What may be copied as bytes, and what is checked field by field ---------
static_assert(cd::bitwise_serializable<int>);
static_assert(cd::bitwise_serializable<point>);
static_assert(cd::bitwise_serializable<std::array<point, 4>>);
static_assert(cd::bitwise_serializable<fixed_small>);
static_assert(!cd::bitwise_serializable<bool>);
static_assert(!cd::bitwise_serializable<flags>);
static_assert(!cd::bitwise_serializable<with_array>);
static_assert(!cd::bitwise_serializable<std::optional<int>>);
static_assert(!cd::bitwise_serializable<std::variant<int, float>>);
static_assert(!cd::bitwise_serializable<flag_enum>);
static_assert(coexec::serializable<flags>);
static_assert(coexec::serializable<with_array>);
static_assert(coexec::serializable<nested>);
static_assert(coexec::serializable<flag_enum>);
// Refused: a pointer field, an opaque class, an enum whose valid values the
// codec cannot know, a union.
static_assert(!coexec::serializable<has_pointer>);
static_assert(!coexec::serializable<std::vector<has_pointer>>);
static_assert(!coexec::serializable<opaque>);
static_assert(!coexec::serializable<loose>);
static_assert(!coexec::serializable<number>);
static_assert(coexec::serializable<tagged_by_user>);
static_assert(std::is_same_v<cd::culprit_t<std::vector<has_pointer>>, int*>);

// --- Counts ----------------------------------------------------------------------
TEST_CASE("a count of 2^33 elements fails fast with serialization_error", "[codec][untrusted]") {
    const std::uint64_t huge = std::uint64_t{1} << 33;
    auto rejects = [&]<class T>(std::type_identity<T>) {
        const auto bytes = claim(huge);
        cd::byte_reader r(bytes);
        CHECK_THROWS_AS(cd::decode<T>(r), coexec::serialization_error);
    };
    rejects(std::type_identity<std::string>{});
    rejects(std::type_identity<std::vector<std::uint64_t>>{});
    rejects(std::type_identity<std::vector<std::string>>{});
    rejects(std::type_identity<std::vector<bool>>{});
    rejects(std::type_identity<std::deque<double>>{});
    rejects(std::type_identity<std::list<int>>{});
    rejects(std::type_identity<std::forward_list<int>>{});
    rejects(std::type_identity<std::map<int, int>>{});
    rejects(std::type_identity<std::set<int>>{});
    rejects(std::type_identity<std::unordered_map<int, int>>{});
    rejects(std::type_identity<std::unordered_set<int>>{});
    rejects(std::type_identity<std::vector<flags>>{});
}

TEST_CASE("no container allocates for elements the input cannot hold", "[codec][untrusted]") {
    const std::uint64_t many = std::uint64_t{1} << 20;
    // 8 bytes follow the count: a few elements at most, never a million.
    CHECK(allocated_for_claim<counted_string>(many) < 1024);
    CHECK(allocated_for_claim<counted_vector<int>>(many) < 1024);
    CHECK(allocated_for_claim<counted_vector<std::string>>(many) < 1024);
    CHECK(allocated_for_claim<counted_vector<flags>>(many) < 1024);
    CHECK(allocated_for_claim<std::deque<int, counting_allocator<int>>>(many) < 1024);
    CHECK(allocated_for_claim<std::list<int, counting_allocator<int>>>(many) < 1024);
    CHECK(allocated_for_claim<std::forward_list<int, counting_allocator<int>>>(many) < 1024);
    using counted_set =
        std::unordered_set<int, std::hash<int>, std::equal_to<int>, counting_allocator<int>>;
    CHECK(allocated_for_claim<counted_set>(many) < 1024);
}

TEST_CASE("a count the remaining bytes can hold still decodes", "[codec][untrusted]") {
    // The check is exact: n elements of sizeof(T) bytes with nothing after them.
    const std::vector<double> doubles(1000, 2.5);
    const auto bytes = encoded(doubles);
    cd::byte_reader r(bytes);
    CHECK(cd::decode<std::vector<double>>(r) == doubles);
    const std::vector<std::string> empties(100);
    const auto more = encoded(empties);
    cd::byte_reader r2(more);
    CHECK(cd::decode<std::vector<std::string>>(r2) == empties);
}

// --- Representations -----------------------------------------------------------
TEST_CASE("a bool that is not 0 or 1 is rejected", "[codec][untrusted]") {
    CHECK(corrupt_each_byte(true, valid_bool) > 0);
    const std::vector<std::byte> two{std::byte{2}};
    cd::byte_reader r(two);
    CHECK_THROWS_WITH(cd::decode<bool>(r), Catch::Contains("bool"));
}

TEST_CASE("an optional's engaged flag is checked", "[codec][untrusted]") {
    auto valid = [](const std::optional<int>& o) { return valid_bool(o.has_value()); };
    CHECK(corrupt_each_byte(std::optional<int>(42), valid) > 0);
    CHECK(corrupt_each_byte(std::optional<int>(), valid) > 0);
}

TEST_CASE("a variant index out of range is rejected", "[codec][untrusted]") {
    using v = std::variant<int, float>;
    auto valid = [](const v& x) { return x.index() < 2; };
    CHECK(corrupt_each_byte(v(1.5f), valid) > 0);
    CHECK(corrupt_each_byte(std::vector<v>{v(1), v(2.0f)}, [&](const std::vector<v>& xs) {
              return std::all_of(xs.begin(), xs.end(), valid);
          }) > 0);
}

TEST_CASE("a plain struct is decoded field by field when a field has invalid values",
          "[codec][untrusted]") {
    auto valid = [](const flags& f) { return valid_bool(f.on) && valid_bool(f.visible); };
    CHECK(corrupt_each_byte(flags{7, true, false}, valid) > 0);
    CHECK(corrupt_each_byte(with_array{{true, false, true}, {1.0f, 2.0f}}, [](const with_array& w) {
              return valid_bool(w.bits[0]) && valid_bool(w.bits[1]) && valid_bool(w.bits[2]);
          }) > 0);
    CHECK(corrupt_each_byte(std::array<bool, 3>{true, false, true}, [](const auto& a) {
              return valid_bool(a[0]) && valid_bool(a[1]) && valid_bool(a[2]);
          }) > 0);
}

TEST_CASE("an enum with a bool underlying type is checked", "[codec][untrusted]") {
    auto valid = [](flag_enum e) { return std::bit_cast<std::uint8_t>(e) <= 1; };
    CHECK(corrupt_each_byte(flag_enum::yes, valid) > 0);
}

TEST_CASE("structs round-trip field by field, nested ones too", "[codec][untrusted]") {
    const nested n{{3, 4.5}, {9, true, false}, 17};
    const auto bytes = encoded(n);
    cd::byte_reader r(bytes);
    const auto out = cd::decode<nested>(r);
    CHECK(r.at_end());
    CHECK(out.at.x == 3);
    CHECK(out.at.y == 4.5);
    CHECK(out.f.id == 9);
    CHECK(out.f.on);
    CHECK_FALSE(out.f.visible);
    CHECK(out.maybe == 17);
    const with_array w{{true, false, true}, {0.5f, 1.5f}};
    const auto wb = encoded(std::vector<with_array>{w, w});
    cd::byte_reader wr(wb);
    const auto ws = cd::decode<std::vector<with_array>>(wr);
    REQUIRE(ws.size() == 2);
    CHECK(ws[1].bits[2]);
    CHECK(ws[1].weights[1] == 1.5f);
}

TEST_CASE("vectors of plain structs stay one block of bytes", "[codec][untrusted]") {
    const std::vector<point> points(100, point{1, 2.0});
    CHECK(encoded(points).size() == sizeof(std::uint64_t) + 100 * sizeof(point));
    const std::vector<fixed_small> small(10, f_a);
    CHECK(encoded(small).size() == sizeof(std::uint64_t) + 10);
}

TEST_CASE("a bitset accepts only the encoding coexec writes", "[codec][untrusted]") {
    const std::bitset<12> bits(0xa5c);
    auto bytes = encoded(bits);
    cd::byte_reader r(bytes);
    CHECK(cd::decode<std::bitset<12>>(r) == bits);
    // cereal's other representations, such as a string of '0'/'1' that
    // std::bitset parses (and throws std::invalid_argument on), are malformed here.
    std::vector<std::byte> text{std::byte{2}};  // cereal's tag for the string form
    const auto letters = encoded(std::string("not-01-bits!"));
    text.insert(text.end(), letters.begin(), letters.end());
    cd::byte_reader bad(text);
    CHECK_THROWS_AS(cd::decode<std::bitset<12>>(bad), coexec::serialization_error);
}
