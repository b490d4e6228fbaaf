// Tests for the process-boundary codec: values, exceptions, calls, shared_buffer.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <ios>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>
#include <unordered_map>
#include <variant>
#include <vector>

#include "coexec/detail/codec.hpp"
#include "coexec/detail/outcome.hpp"
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

struct no_default {
    explicit no_default(int v) : value(v) {}
    int value;
};

enum class color : std::uint8_t { red, green, blue };

struct not_serializable {
    std::string text;  // not trivially copyable, and no serialize()
};

struct holds_pointer_member {
    int* p;
};

// A stateful, serializable function object.
struct multiply_by {
    int factor = 1;
    int operator()(int x) const { return x * factor; }
    template <class Ar>
    void serialize(Ar& ar) {
        ar(factor);
    }
};

struct custom_error : std::exception {
    const char* what() const noexcept override { return "custom failure"; }
};

struct derived_logic : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

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

std::exception_ptr exception_round_trip(std::exception_ptr e) {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    cd::encode_exception(w, e);
    cd::byte_reader r(bytes);
    auto out = cd::decode_exception(r);
    CHECK(r.at_end());
    return out;
}

// Throws the round-tripped copy of `original` and checks it has the same
// dynamic type and what() as the original.
template <class E>
void check_same_exception(const E& original) {
    auto copy = exception_round_trip(std::make_exception_ptr(original));
    try {
        std::rethrow_exception(copy);
    } catch (const std::exception& e) {
        INFO("type " << typeid(E).name() << ", what: " << original.what());
        CHECK(typeid(e) == typeid(E));
        CHECK(std::string(e.what()) == original.what());
    } catch (...) {
        FAIL("not a std::exception");
    }
}

int add(int a, int b) {
    return a + b;
}
int twice(int a) {
    return 2 * a;
}
void do_nothing(std::string) {}
int throws_out_of_range(int) {
    throw std::out_of_range("index 7 is past the end");
}
int takes_stop_token(std::stop_token st, int x) {
    return st.stop_possible() ? -1 : x + 1;
}

int reciprocal_percent(int x) {
    if (x == 0) throw std::domain_error("division by zero");
    return 100 / x;
}

// Runs one call through encode_call -> remote_invoke -> decode_result, as a
// process pool would (in one process here).
template <class R, class F, class... Args>
R call_remotely(const F& f, const Args&... args) {
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode_call(w, f, args...);
    cd::byte_reader in(request);
    std::vector<std::byte> reply;
    cd::byte_writer out(reply);
    cd::remote_invoke<std::decay_t<F>, Args...>(in, out);
    cd::byte_reader result(reply);
    return cd::decode_result<R>(result);
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
// A lambda with captures, even trivially copyable ones, is rejected...
inline auto capturing = [n = 1](int x) { return x + n; };
static_assert(!coexec::serializable<decltype(capturing)>);
// ...and the callable check accepts exactly the sendable kinds.
inline auto captureless = [](int x) { return x + 1; };
static_assert(cd::is_remote_callable_v<decltype(captureless), int>);
static_assert(cd::is_remote_callable_v<int (*)(int, int), int, int>);
static_assert(cd::is_remote_callable_v<decltype(&twice), int>);
static_assert(cd::is_remote_callable_v<multiply_by, int>);
static_assert(!cd::is_remote_callable_v<decltype(capturing), int>);
static_assert(!cd::is_remote_callable_v<int (*)(int), int*>);
static_assert(!cd::is_remote_callable_v<int* (*)(int), int>);
static_assert(!cd::is_remote_callable_v<int (*)(int), std::string>);
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

TEST_CASE("a trivially copyable type without a default constructor decodes", "[codec]") {
    static_assert(!std::is_default_constructible_v<no_default>);
    CHECK(round_trip<no_default>(no_default{99}).value == 99);
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

// --- Exceptions -------------------------------------------------------------------
TEST_CASE("every standard exception type round-trips as the same type and what()", "[codec]") {
    check_same_exception(std::exception());
    check_same_exception(std::logic_error("logic"));
    check_same_exception(std::invalid_argument("bad argument"));
    check_same_exception(std::domain_error("domain"));
    check_same_exception(std::length_error("length"));
    check_same_exception(std::out_of_range("out of range"));
    check_same_exception(std::runtime_error("runtime"));
    check_same_exception(std::range_error("range"));
    check_same_exception(std::overflow_error("overflow"));
    check_same_exception(std::underflow_error("underflow"));
    check_same_exception(std::bad_alloc());
    check_same_exception(std::bad_array_new_length());
    check_same_exception(std::bad_cast());
    check_same_exception(std::bad_typeid());
    check_same_exception(std::bad_function_call());
    check_same_exception(std::bad_optional_access());
    check_same_exception(std::bad_variant_access());
    check_same_exception(std::bad_exception());
    check_same_exception(
        std::system_error(std::make_error_code(std::errc::no_such_file_or_directory), "open"));
    check_same_exception(std::system_error(EPERM, std::system_category()));
    check_same_exception(std::ios_base::failure("stream broke"));
    check_same_exception(std::filesystem::filesystem_error(
        "cannot copy", "/a/b", "/c", std::make_error_code(std::errc::file_exists)));
    check_same_exception(std::future_error(std::future_errc::broken_promise));
}

TEST_CASE("exceptions thrown by the library keep their message", "[codec]") {
    // These carry library-internal messages no public constructor can produce.
    std::exception_ptr e;
    try {
        std::variant<int, std::string> v = 1;
        (void)std::get<std::string>(v);
    } catch (...) {
        e = std::current_exception();
    }
    std::string original;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        original = x.what();
    }
    try {
        std::rethrow_exception(exception_round_trip(e));
    } catch (const std::bad_variant_access& x) {
        CHECK(std::string(x.what()) == original);
    }
    try {
        (void)std::string("abc").at(10);
    } catch (...) {
        e = std::current_exception();
    }
    try {
        std::rethrow_exception(exception_round_trip(e));
    } catch (const std::out_of_range& x) {
        CHECK_THAT(x.what(), Catch::Contains("basic_string"));
    }
}

TEST_CASE("system_error keeps its code and category", "[codec]") {
    auto e = exception_round_trip(std::make_exception_ptr(
        std::system_error(ENOENT, std::system_category(), "open /nowhere")));
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& x) {
        CHECK(x.code() == std::error_code(ENOENT, std::system_category()));
        CHECK_THAT(x.what(), Catch::StartsWith("open /nowhere"));
    }
}

TEST_CASE("every coexec error round-trips as the same type with its details", "[codec]") {
    check_same_exception(coexec::cancelled_error());
    check_same_exception(coexec::timeout_error("waited 1s"));
    check_same_exception(coexec::executor_shutdown("submit after shutdown"));
    check_same_exception(coexec::broken_pool("pool is broken"));
    check_same_exception(coexec::deadline_exceeded("task ran past 30s"));
    check_same_exception(coexec::serialization_error("cannot encode"));
    check_same_exception(coexec::remote_error("my::error", "it failed"));
    check_same_exception(coexec::worker_died(1234, 9, 0, "task #5"));

    try {
        std::rethrow_exception(
            exception_round_trip(std::make_exception_ptr(coexec::worker_died(77, 0, 3, "f(1)"))));
    } catch (const coexec::worker_died& x) {
        CHECK(x.pid() == 77);
        CHECK(x.signal() == 0);
        CHECK(x.exit_code() == 3);
        CHECK(x.task() == "f(1)");
    }
    try {
        std::rethrow_exception(exception_round_trip(
            std::make_exception_ptr(coexec::remote_error("ns::oops", "bad thing"))));
    } catch (const coexec::remote_error& x) {
        CHECK(x.type_name() == "ns::oops");
        CHECK(x.original_what() == "bad thing");
    }
}

TEST_CASE("an unknown exception type becomes remote_error with its type name", "[codec]") {
    try {
        std::rethrow_exception(exception_round_trip(std::make_exception_ptr(custom_error())));
    } catch (const coexec::remote_error& x) {
        CHECK(x.type_name() == "(anonymous namespace)::custom_error");
        CHECK(x.original_what() == "custom failure");
        CHECK_THAT(x.what(), Catch::Contains("custom failure"));
    }
    try {
        std::rethrow_exception(exception_round_trip(std::make_exception_ptr(42)));
    } catch (const coexec::remote_error& x) {
        CHECK(x.type_name() == "int");
        CHECK(x.original_what() == "(not a std::exception)");
    }
}

TEST_CASE("a subclass of a standard exception arrives as that standard type", "[codec]") {
    try {
        std::rethrow_exception(
            exception_round_trip(std::make_exception_ptr(derived_logic("parse failed"))));
    } catch (const std::invalid_argument& x) {
        CHECK(typeid(x) == typeid(std::invalid_argument));
        CHECK(std::string(x.what()) == "parse failed");
    }
}

// --- Function identity --------------------------------------------------------------
TEST_CASE("a code address survives encoding", "[codec]") {
    auto fp = &twice;
    auto encoded = cd::encode_code_address(std::bit_cast<const void*>(fp));
    CHECK(cd::decode_code_address(encoded) == std::bit_cast<const void*>(fp));
    // A function in a shared library (libc) too.
    auto lib_fn = &::getpid;
    auto lib_encoded = cd::encode_code_address(std::bit_cast<const void*>(lib_fn));
    CHECK((lib_encoded >> 48) != (encoded >> 48));
    CHECK(cd::decode_code_address(lib_encoded) == std::bit_cast<const void*>(lib_fn));
}

TEST_CASE("an address outside every module cannot be encoded or decoded", "[codec]") {
    int on_heap_or_stack = 0;
    auto* heap = new int(0);
    CHECK_THROWS_AS(cd::encode_code_address(heap), coexec::serialization_error);
    CHECK_THROWS_AS(cd::encode_code_address(&on_heap_or_stack), coexec::serialization_error);
    delete heap;
    CHECK_THROWS_AS(cd::decode_code_address(std::uint64_t{0xfffe} << 48),
                    coexec::serialization_error);
}

// --- Remote calls -----------------------------------------------------------------
TEST_CASE("remote_invoke calls a function pointer", "[codec]") {
    CHECK(call_remotely<int>(&add, 2, 3) == 5);
    CHECK(call_remotely<int>(add, 40, 2) == 42);
}

TEST_CASE("remote_invoke default-constructs a captureless lambda and sends nothing", "[codec]") {
    auto lambda = [](const std::string& s, int n) {
        std::string out;
        for (int i = 0; i < n; ++i)
            out += s;
        return out;
    };
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode_call(w, lambda, std::string("ab"), 3);
    CHECK(request.size() == sizeof(std::uint64_t) + 2 + sizeof(int));  // only the arguments
    CHECK(call_remotely<std::string>(lambda, std::string("ab"), 3) == "ababab");
}

TEST_CASE("remote_invoke decodes a serializable function object", "[codec]") {
    CHECK(call_remotely<int>(multiply_by{7}, 6) == 42);
}

TEST_CASE("remote_invoke of a void function reports success", "[codec]") {
    CHECK_NOTHROW(call_remotely<void>(&do_nothing, std::string("x")));
}

TEST_CASE("remote_invoke passes a default stop_token to callables that take one", "[codec]") {
    CHECK(call_remotely<int>(&takes_stop_token, 1) == 2);
}

TEST_CASE("an exception thrown by a remote call is rethrown by decode_result", "[codec]") {
    CHECK_THROWS_MATCHES(call_remotely<int>(&throws_out_of_range, 1), std::out_of_range,
                         Catch::Message("index 7 is past the end"));
    auto thrower = [](int) -> int { throw custom_error(); };
    CHECK_THROWS_AS(call_remotely<int>(thrower, 1), coexec::remote_error);
}

TEST_CASE("a malformed request becomes an encoded serialization_error", "[codec]") {
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode(w, 1);  // add() needs two ints
    cd::byte_reader in(request);
    std::vector<std::byte> reply;
    cd::byte_writer out(reply);
    cd::remote_invoke<int (*)(int, int), int, int>(in, out);
    cd::byte_reader result(reply);
    CHECK_THROWS_AS(cd::decode_result<int>(result), coexec::serialization_error);
}

TEST_CASE("a result that cannot be encoded fails the task, not the worker", "[codec]") {
    // Returning a shared_buffer needs an fds channel; without one the reply
    // must roll back to a clean exception.
    auto make = [](int n) { return coexec::shared_buffer(static_cast<std::size_t>(n)); };
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode_call(w, make, 16);
    cd::byte_reader in(request);
    std::vector<std::byte> reply;
    cd::byte_writer out(reply);  // no fds vector
    cd::remote_invoke<decltype(make), int>(in, out);
    cd::byte_reader result(reply);
    CHECK_THROWS_WITH(cd::decode_result<coexec::shared_buffer>(result),
                      Catch::Contains("only be sent to a process worker"));
    CHECK(result.at_end());
}

TEST_CASE("a chunk with one failing element keeps the other results", "[codec]") {
    std::vector<int> inputs{1, 2, 0, 4, 5};
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode_chunk(w, &reciprocal_percent, inputs);
    cd::byte_reader in(request);
    std::vector<std::byte> reply;
    cd::byte_writer out(reply);
    cd::remote_invoke_chunk<int (*)(int), int>(in, out);
    cd::byte_reader r(reply);
    auto outcomes = cd::decode_chunk_result<int>(r, inputs.size());
    CHECK(r.at_end());
    REQUIRE(outcomes.size() == 5);
    CHECK(std::move(outcomes[0]).get() == 100);
    CHECK(std::move(outcomes[1]).get() == 50);
    CHECK(outcomes[2].has_exception());
    CHECK_THROWS_MATCHES(std::move(outcomes[2]).get(), std::domain_error,
                         Catch::Message("division by zero"));
    CHECK(std::move(outcomes[3]).get() == 25);
    CHECK(std::move(outcomes[4]).get() == 20);
}

TEST_CASE("a chunk of tuples applies each tuple as the argument list", "[codec]") {
    using args = std::tuple<int, int>;
    std::vector<args> inputs{{1, 2}, {3, 4}};
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode_chunk(w, &add, inputs);
    cd::byte_reader in(request);
    std::vector<std::byte> reply;
    cd::byte_writer out(reply);
    cd::remote_invoke_chunk<int (*)(int, int), args>(in, out);
    cd::byte_reader r(reply);
    auto outcomes = cd::decode_chunk_result<cd::chunk_result_t<int (*)(int, int), args>>(r, 2);
    CHECK(std::move(outcomes[0]).get() == 3);
    CHECK(std::move(outcomes[1]).get() == 7);
}

TEST_CASE("a void chunk reports per-element failures", "[codec]") {
    auto check_positive = [](int x) {
        if (x < 0) throw std::invalid_argument("negative");
    };
    std::vector<int> inputs{1, -1, 2};
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode_chunk(w, check_positive, inputs);
    cd::byte_reader in(request);
    std::vector<std::byte> reply;
    cd::byte_writer out(reply);
    cd::remote_invoke_chunk<decltype(check_positive), int>(in, out);
    cd::byte_reader r(reply);
    auto outcomes = cd::decode_chunk_result<void>(r, 3);
    CHECK(outcomes[0].has_value());
    CHECK_THROWS_AS(std::move(outcomes[1]).get(), std::invalid_argument);
    CHECK(outcomes[2].has_value());
}

TEST_CASE("an undecodable chunk fails every element with the same error", "[codec]") {
    std::vector<std::byte> request;  // empty: not even the function address
    cd::byte_reader in(request);
    std::vector<std::byte> reply;
    cd::byte_writer out(reply);
    cd::remote_invoke_chunk<int (*)(int), int>(in, out);
    cd::byte_reader r(reply);
    auto outcomes = cd::decode_chunk_result<int>(r, 2);
    REQUIRE(outcomes.size() == 2);
    CHECK_THROWS_AS(std::move(outcomes[0]).get(), coexec::serialization_error);
    CHECK_THROWS_AS(std::move(outcomes[1]).get(), coexec::serialization_error);
    CHECK_THROWS_AS(cd::decode_chunk_result<int>(r, 0), coexec::serialization_error);
}

TEST_CASE("an unfilled outcome refuses to produce a value", "[codec]") {
    cd::outcome<int> empty;
    CHECK_FALSE(empty.has_value());
    CHECK_THROWS_AS(std::move(empty).get(), std::logic_error);
}

// --- shared_buffer ----------------------------------------------------------------
TEST_CASE("copies of a shared_buffer share the same memory", "[codec][shared_buffer]") {
    coexec::shared_buffer a(4096);
    REQUIRE(a.valid());
    CHECK(a.size() == 4096);
    CHECK(a.fd() >= 0);
    CHECK(a.span()[0] == std::byte{0});  // zero-filled
    coexec::shared_buffer b = a;
    std::memcpy(b.data(), "shared", 7);
    CHECK(std::string(reinterpret_cast<const char*>(a.data())) == "shared");
    CHECK(a == b);
    coexec::shared_buffer empty;
    CHECK_FALSE(empty.valid());
    CHECK(empty.size() == 0);
    CHECK(empty.data() == nullptr);
    CHECK(empty.fd() == -1);
    coexec::shared_buffer zero(0);
    CHECK(zero.valid());
    CHECK(zero.size() == 0);
}

TEST_CASE("a shared_buffer sent through the codec shares memory with the original",
          "[codec][shared_buffer]") {
    coexec::shared_buffer original(1 << 20);
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    cd::byte_writer w(bytes, &fds);
    cd::encode(w, original, std::vector<coexec::shared_buffer>{original, {}});
    CHECK(fds.size() == 2);
    CHECK(bytes.size() < 100);  // a handle, not the megabyte
    cd::byte_reader r(bytes, fds);
    auto received = cd::decode<coexec::shared_buffer>(r);
    auto more = cd::decode<std::vector<coexec::shared_buffer>>(r);
    // Decoding dup()s: the message's descriptors are still ours to close.
    cd::close_fds(fds);
    REQUIRE(received.valid());
    CHECK(received.size() == original.size());
    CHECK(received.fd() != original.fd());
    received.data()[1000] = std::byte{0x5a};
    CHECK(original.data()[1000] == std::byte{0x5a});
    REQUIRE(more.size() == 2);
    CHECK(more[0].data()[1000] == std::byte{0x5a});
    CHECK_FALSE(more[1].valid());
}

TEST_CASE("encoding a shared_buffer without an fd channel throws", "[codec][shared_buffer]") {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    CHECK_THROWS_AS(cd::encode(w, coexec::shared_buffer(8)), coexec::serialization_error);
}

TEST_CASE("a message that lacks its descriptor fails to decode", "[codec][shared_buffer]") {
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    cd::byte_writer w(bytes, &fds);
    cd::encode(w, coexec::shared_buffer(8));
    cd::close_fds(fds);
    cd::byte_reader r(bytes);  // descriptors lost
    CHECK_THROWS_AS(cd::decode<coexec::shared_buffer>(r), coexec::serialization_error);
}

TEST_CASE("a forked child's writes to a shared_buffer are seen by the parent",
          "[codec][shared_buffer]") {
    coexec::shared_buffer buffer(64);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Child: no Catch2 here, just write and leave without running atexit handlers.
        std::memcpy(buffer.data(), "from the child", 15);
        ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(std::string(reinterpret_cast<const char*>(buffer.data())) == "from the child");
}

namespace {
// Fills the buffer with `value` and returns how many bytes it wrote.
std::size_t fill_buffer(coexec::shared_buffer buffer, std::uint8_t value) {
    std::memset(buffer.data(), value, buffer.size());
    return buffer.size();
}
}  // namespace

TEST_CASE("a call encoded in the parent runs in a forked child and its result comes back",
          "[codec][shared_buffer]") {
    coexec::shared_buffer buffer(256);
    std::vector<std::byte> request;
    std::vector<int> fds;
    cd::byte_writer w(request, &fds);
    cd::encode_call(w, &fill_buffer, buffer, std::uint8_t{0xab});
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Child (the worker): the descriptors were inherited; decode, run, reply.
        ::close(pipe_fds[0]);
        cd::byte_reader in(request, fds);
        std::vector<std::byte> reply;
        cd::byte_writer out(reply);
        cd::remote_invoke<decltype(&fill_buffer), coexec::shared_buffer, std::uint8_t>(in, out);
        cd::close_fds(fds);
        const bool ok =
            ::write(pipe_fds[1], reply.data(), reply.size()) == static_cast<ssize_t>(reply.size());
        ::_exit(ok ? 0 : 1);
    }
    ::close(pipe_fds[1]);
    cd::close_fds(fds);
    std::vector<std::byte> reply(64);
    const ssize_t n = ::read(pipe_fds[0], reply.data(), reply.size());
    ::close(pipe_fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    REQUIRE(n > 0);
    reply.resize(static_cast<std::size_t>(n));
    cd::byte_reader r(reply);
    CHECK(cd::decode_result<std::size_t>(r) == 256);
    CHECK(buffer.data()[0] == std::byte{0xab});
    CHECK(buffer.data()[255] == std::byte{0xab});
}
