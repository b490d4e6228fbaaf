// Tests for the codec's values: which types are serializable, and how
// values encode and decode (bytes or cereal, containers, user types, bad input).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/errors.hpp"
#include "coexec/serializable.hpp"
#include "coexec/shared_buffer.hpp"

namespace cd = coexec::detail;

namespace {

struct point {
    int x;
    double y;
    friend bool operator==(const point&, const point&) = default;
};

struct person {
    std::string name;
    std::vector<int> scores;
    std::optional<point> home;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(name, scores, home);
    }
    friend bool operator==(const person&, const person&) = default;
};

// A user serialize() is respected even for a trivially copyable type: only
// `kept` crosses, so the byte copy fast path must not be used.
struct partial {
    int kept = 0;
    int dropped = 0;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(kept);
    }
};

// Trivially copyable but not a plain struct: coexec cannot check its fields,
// so it needs a serialize() (copying its bytes would accept any bit pattern).
struct no_default {
    explicit no_default(int v) : value(v) {}
    int value;
};

enum class color : std::uint8_t { red, green, blue };

// A class with constructors and private fields, no serialize().
class not_serializable {
  public:
    explicit not_serializable(std::string t) : text(std::move(t)) {}

  private:
    std::string text;
};

// A plain struct of fields that are not trivially copyable: field by field.
struct order {
    std::string id;
    std::vector<double> prices;
    std::optional<point> where;
    std::unordered_map<std::string, int> tags;
    bool urgent = false;
    friend bool operator==(const order&, const order&) = default;
};

// A field whose own layout is not standard (std::map, std::set, std::list,
// std::tuple in libstdc++) makes the struct look like one with base classes,
// which coexec does not take apart: it needs a serialize().
struct with_map_field {
    std::map<int, int> m;
};

// A stateful function object with serialize() is a serializable value.
struct multiply_by {
    int factor = 1;
    int operator()(int x) const { return x * factor; }
    template <class Ar>
    void serialize(Ar& ar) {
        ar(factor);
    }
};

[[maybe_unused]] auto capturing = [n = 1](int x) { return x + n; };

// Encodes values, decodes one T from the result.
template <class T, class... Ts>
T round_trip(const Ts&... values) {
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    cd::byte_writer w(bytes, &fds);
    cd::encode(w, values...);
    cd::byte_reader r(bytes, fds);
    T out = cd::decode<T>(r);
    CHECK(r.at_end());
    cd::close_fds(fds);
    return out;
}

}  // namespace

// --- The serializable concept -------------------------------------------------------
static_assert(coexec::serializable<int>);
static_assert(coexec::serializable<const double>);
static_assert(coexec::serializable<color>);
static_assert(coexec::serializable<point>);
static_assert(coexec::serializable<person>);
static_assert(coexec::serializable<void>);
static_assert(coexec::serializable<std::string>);
static_assert(coexec::serializable<std::vector<std::map<std::string, std::vector<point>>>>);
static_assert(coexec::serializable<std::unordered_map<int, std::string>>);
static_assert(coexec::serializable<std::optional<std::variant<int, std::string>>>);
static_assert(coexec::serializable<std::tuple<int, std::string, std::pair<int, double>>>);
static_assert(coexec::serializable<std::array<point, 3>>);
static_assert(coexec::serializable<std::chrono::milliseconds>);
static_assert(coexec::serializable<std::chrono::system_clock::time_point>);
static_assert(coexec::serializable<coexec::shared_buffer>);
static_assert(coexec::serializable<std::vector<coexec::shared_buffer>>);
static_assert(coexec::serializable<multiply_by>);
static_assert(coexec::serializable<order>);
static_assert(coexec::serializable<std::vector<order>>);
static_assert(!cd::bitwise_serializable<order>);
static_assert(!coexec::serializable<with_map_field>);
static_assert(!coexec::serializable<int*>);
static_assert(!coexec::serializable<const char*>);
static_assert(!coexec::serializable<int point::*>);
static_assert(!coexec::serializable<int&>);
static_assert(!coexec::serializable<std::string_view>);
static_assert(!coexec::serializable<std::function<int(int)>>);
static_assert(!coexec::serializable<not_serializable>);
static_assert(!coexec::serializable<std::vector<int*>>);
static_assert(!coexec::serializable<std::map<int, not_serializable>>);
static_assert(!coexec::serializable<std::optional<std::vector<std::string_view>>>);
static_assert(!coexec::serializable<std::array<int*, 2>>);
static_assert(!coexec::serializable<std::tuple<int, char*>>);
static_assert(!coexec::serializable<std::variant<int, not_serializable>>);
static_assert(!coexec::serializable<void (*)()>);
static_assert(!coexec::serializable<no_default>);
// A lambda with captures, even trivially copyable ones, is rejected.
static_assert(!coexec::serializable<decltype(capturing)>);
// Bytes or cereal: the fast path is chosen only when the bytes are the value.
static_assert(cd::bitwise_serializable<point>);
static_assert(cd::bitwise_serializable<std::array<int, 4>>);
static_assert(!cd::bitwise_serializable<partial>);
static_assert(!cd::bitwise_serializable<std::string>);

// --- Values -----------------------------------------------------------------------
TEST_CASE("arithmetic, enum and trivially copyable values round-trip", "[codec]") {
    CHECK(round_trip<int>(-42) == -42);
    CHECK(round_trip<double>(3.25) == 3.25);
    CHECK(round_trip<bool>(true));
    CHECK(round_trip<char>('z') == 'z');
    CHECK(round_trip<color>(color::blue) == color::blue);
    CHECK(round_trip<point>(point{7, -1.5}) == point{7, -1.5});
}

TEST_CASE("a trivially copyable value is encoded as exactly its bytes", "[codec]") {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    cd::encode(w, point{1, 2.0});
    CHECK(bytes.size() == sizeof(point));
}

TEST_CASE("several values encode in order and decode one by one", "[codec]") {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    cd::encode(w, 1, std::string("two"), point{3, 3.5}, std::vector<int>{4, 4});
    cd::byte_reader r(bytes);
    CHECK(cd::decode<int>(r) == 1);
    CHECK(cd::decode<std::string>(r) == "two");
    CHECK(cd::decode<point>(r) == point{3, 3.5});
    CHECK(cd::decode<std::vector<int>>(r) == std::vector<int>{4, 4});
    CHECK(r.at_end());
}

TEST_CASE("strings and containers round-trip, nested ones too", "[codec]") {
    CHECK(round_trip<std::string>(std::string("hello\0world", 11)) ==
          std::string("hello\0world", 11));
    CHECK(round_trip<std::string>(std::string()).empty());
    std::vector<std::vector<std::string>> nested{{"a", "bb"}, {}, {"ccc"}};
    CHECK(round_trip<decltype(nested)>(nested) == nested);
    std::map<std::string, std::vector<point>> m{{"origin", {{0, 0}}}, {"pair", {{1, 1}, {2, 2}}}};
    CHECK(round_trip<decltype(m)>(m) == m);
    std::unordered_map<int, std::string> um{{1, "one"}, {2, "two"}};
    CHECK(round_trip<decltype(um)>(um) == um);
    std::set<int> s{3, 1, 2};
    CHECK(round_trip<decltype(s)>(s) == s);
    std::deque<double> d{1.5, 2.5};
    CHECK(round_trip<decltype(d)>(d) == d);
    std::list<std::string> l{"x", "y"};
    CHECK(round_trip<decltype(l)>(l) == l);
    std::vector<bool> bits{true, false, true};
    CHECK(round_trip<decltype(bits)>(bits) == bits);
    std::vector<point> points{{1, 1.0}, {2, 2.0}, {3, 3.0}};
    CHECK(round_trip<decltype(points)>(points) == points);
    std::array<point, 2> ap{point{5, 5.0}, point{6, 6.0}};
    CHECK(round_trip<decltype(ap)>(ap) == ap);
}

TEST_CASE("equal keys of a multimap and a multiset keep their order", "[codec]") {
    const std::multimap<int, std::string> m{{1, "first"}, {1, "second"}, {0, "x"}, {1, "third"}};
    const auto out = round_trip<std::multimap<int, std::string>>(m);
    CHECK(std::equal(out.begin(), out.end(), m.begin(), m.end()));
    struct by_tens {
        bool operator()(int a, int b) const { return a / 10 < b / 10; }
    };
    const std::multiset<int, by_tens> s{11, 12, 3, 13};
    const auto out_s = round_trip<std::multiset<int, by_tens>>(s);
    CHECK(std::vector<int>(out_s.begin(), out_s.end()) == std::vector<int>{3, 11, 12, 13});
}

TEST_CASE("optional, variant, pair and tuple round-trip", "[codec]") {
    CHECK(round_trip<std::optional<std::string>>(std::optional<std::string>("x")) == "x");
    CHECK_FALSE(round_trip<std::optional<std::string>>(std::optional<std::string>()).has_value());
    using v = std::variant<int, std::string, std::vector<int>>;
    CHECK(round_trip<v>(v(std::string("alt"))) == v(std::string("alt")));
    CHECK(round_trip<v>(v(std::vector<int>{1, 2})) == v(std::vector<int>{1, 2}));
    CHECK(round_trip<v>(v(5)) == v(5));
    using p = std::pair<std::string, int>;
    CHECK(round_trip<p>(p("k", 1)) == p("k", 1));
    using t = std::tuple<int, std::string, std::optional<double>>;
    CHECK(round_trip<t>(t(1, "s", 2.5)) == t(1, "s", 2.5));
}

TEST_CASE("chrono durations and time points round-trip", "[codec]") {
    using namespace std::chrono_literals;
    CHECK(round_trip<std::chrono::milliseconds>(1500ms) == 1500ms);
    std::vector<std::chrono::nanoseconds> ds{1ns, 2s, 3min};
    CHECK(round_trip<decltype(ds)>(ds) == ds);
    auto now = std::chrono::system_clock::now();
    CHECK(round_trip<std::chrono::system_clock::time_point>(now) == now);
}

TEST_CASE("a user type with serialize round-trips", "[codec]") {
    person alice{"alice", {90, 85}, point{4, 2.0}};
    CHECK(round_trip<person>(alice) == alice);
    std::vector<person> people{alice, person{"bob", {}, std::nullopt}};
    CHECK(round_trip<std::vector<person>>(people) == people);
}

TEST_CASE("a plain struct of strings and containers round-trips field by field", "[codec]") {
    order o{"A-17", {1.5, 2.25}, point{3, 4.5}, {{"rush", 1}, {"gift", 0}}, true};
    CHECK(round_trip<order>(o) == o);
    std::vector<order> many{o, order{}, order{"B", {}, std::nullopt, {}, false}};
    CHECK(round_trip<std::vector<order>>(many) == many);
    // Each field is checked as it would be alone: a bool byte of 2 is refused.
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    cd::byte_writer w(bytes, &fds);
    cd::encode(w, order{"x", {}, std::nullopt, {}, true});
    REQUIRE(bytes.back() == std::byte{1});  // `urgent`, the last field
    bytes.back() = std::byte{2};
    cd::byte_reader r(bytes, fds);
    CHECK_THROWS_AS(cd::decode<order>(r), coexec::serialization_error);
}

TEST_CASE("a user serialize is respected even for a trivially copyable type", "[codec]") {
    partial out = round_trip<partial>(partial{1, 2});
    CHECK(out.kept == 1);
    CHECK(out.dropped == 0);
}

TEST_CASE("truncated input throws serialization_error", "[codec]") {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    cd::encode(w, person{"carol", {1, 2, 3}, point{1, 1.0}});
    for (std::size_t cut : {std::size_t{0}, std::size_t{3}, bytes.size() / 2, bytes.size() - 1}) {
        INFO("cut at " << cut);
        cd::byte_reader r(std::span<const std::byte>(bytes).first(cut));
        CHECK_THROWS_AS(cd::decode<person>(r), coexec::serialization_error);
    }
    cd::byte_reader r(std::span<const std::byte>(bytes).first(2));
    CHECK_THROWS_WITH(cd::decode<int>(r), Catch::Contains("truncated"));
}

TEST_CASE("a corrupt element count throws instead of allocating", "[codec]") {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    w.put_u64(std::uint64_t{1} << 40);  // claims 2^40 points
    cd::byte_reader r(bytes);
    CHECK_THROWS_AS(cd::decode<std::vector<point>>(r), coexec::serialization_error);
}

TEST_CASE("large byte and word containers round-trip through the bulk path", "[codec]") {
    // Above detail::bulk_fill_bytes the loaders reserve, advise huge pages
    // and copy once; the bytes must be the same, also for unaligned input.
    const std::size_t n = cd::bulk_fill_bytes + 4097;
    std::vector<unsigned char> bytes_in(n);
    for (std::size_t i = 0; i < n; ++i)
        bytes_in[i] = static_cast<unsigned char>(i * 131 + 7);
    std::vector<std::uint32_t> words_in(n / 4 + 3);
    for (std::size_t i = 0; i < words_in.size(); ++i)
        words_in[i] = static_cast<std::uint32_t>(i * 2654435761u);
    std::string text_in(n, 'x');
    text_in[n / 2] = '\0';
    std::vector<std::byte> wire;
    cd::byte_writer w(wire);
    cd::encode(w, char{1}, bytes_in, words_in, text_in);  // one leading byte: nothing aligned
    cd::byte_reader r(wire);
    CHECK(cd::decode<char>(r) == 1);
    CHECK(cd::decode<std::vector<unsigned char>>(r) == bytes_in);
    CHECK(cd::decode<std::vector<std::uint32_t>>(r) == words_in);
    CHECK(cd::decode<std::string>(r) == text_in);
    CHECK(r.at_end());
}

TEST_CASE("a large container cut short throws serialization_error", "[codec]") {
    const std::vector<unsigned char> in(cd::bulk_fill_bytes * 2, 0x5a);
    std::vector<std::byte> wire;
    cd::byte_writer w(wire);
    cd::encode(w, in);
    for (std::size_t cut : {wire.size() - 1, wire.size() / 2, std::size_t{9}}) {
        INFO("cut at " << cut);
        cd::byte_reader r(std::span<const std::byte>(wire).first(cut));
        CHECK_THROWS_AS(cd::decode<std::vector<unsigned char>>(r), coexec::serialization_error);
        cd::byte_reader s(std::span<const std::byte>(wire).first(cut));
        CHECK_THROWS_AS(cd::decode<std::string>(s), coexec::serialization_error);
    }
}
