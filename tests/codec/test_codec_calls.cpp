// Tests for calls across the process boundary: code addresses, the
// compile-time callable check, remote_invoke and map chunks (all in one
// process here: encode as the caller, run the trampoline, decode the reply).
#include <unistd.h>

#include <catch2/catch.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/remote_call.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/detail/outcome.hpp"
#include "coexec/errors.hpp"
#include "coexec/shared_buffer.hpp"

namespace cd = coexec::detail;

namespace {

// A stateful, serializable function object.
struct multiply_by {
    int factor = 1;
    int operator()(int x) const { return x * factor; }
    template <class Ar>
    void serialize(Ar& ar) {
        ar(factor);
    }
};

// A type the codec does not know: it comes back as remote_error.
struct unknown_error : std::exception {
    const char* what() const noexcept override { return "unknown failure"; }
};

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

// A chunk of reciprocal_percent through remote_invoke_chunk, and the bytes
// encode_outcome writes for the same elements one by one.
struct chunk_replies {
    std::vector<std::byte> reply;
    std::vector<std::byte> expected;
};
chunk_replies reciprocal_chunk(const std::vector<int>& inputs) {
    chunk_replies out;
    std::vector<std::byte> request;
    cd::byte_writer w(request);
    cd::encode_chunk(w, &reciprocal_percent, inputs);
    cd::byte_reader in(request);
    cd::byte_writer reply(out.reply);
    cd::remote_invoke_chunk<int (*)(int), int>(in, reply);
    cd::byte_writer e(out.expected);
    e.put(cd::status_value);
    e.put_u64(inputs.size());
    for (int x : inputs)
        cd::encode_outcome<int>(e, [&] { return reciprocal_percent(x); });
    return out;
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

// A capturing lambda cannot be sent; a captureless one is default-constructed.
[[maybe_unused]] auto capturing = [n = 1](int x) { return x + n; };
[[maybe_unused]] auto captureless = [](int x) { return x + 1; };

}  // namespace

// The callable check accepts exactly the sendable kinds.
static_assert(cd::is_remote_callable_v<decltype(captureless), int>);
static_assert(cd::is_remote_callable_v<int (*)(int, int), int, int>);
static_assert(cd::is_remote_callable_v<decltype(&twice), int>);
static_assert(cd::is_remote_callable_v<multiply_by, int>);
static_assert(!cd::is_remote_callable_v<decltype(capturing), int>);
static_assert(!cd::is_remote_callable_v<int (*)(int), int*>);
static_assert(!cd::is_remote_callable_v<int* (*)(int), int>);
static_assert(!cd::is_remote_callable_v<int (*)(int), std::string>);

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
    auto thrower = [](int) -> int { throw unknown_error(); };
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

TEST_CASE("a chunk of byte-copied results is written and read as per element outcomes", "[codec]") {
    // The bulk writer and reader (encode_bitwise_outcomes, decode_bitwise_values)
    // against the per-element encoding: failures first, last, in a row and
    // alone, in a chunk large enough for the output to grow between them.
    std::vector<int> inputs(5000);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        inputs[i] = static_cast<int>(i % 7 == 3 ? 0 : i + 1);
    inputs.front() = 0;
    inputs.back() = 0;
    inputs[100] = inputs[101] = inputs[102] = 0;
    const auto [reply, expected] = reciprocal_chunk(inputs);
    CHECK(reply == expected);

    cd::byte_reader r(reply);
    auto outcomes = cd::decode_chunk_result<int>(r, inputs.size());
    CHECK(r.at_end());
    REQUIRE(outcomes.size() == inputs.size());
    std::size_t failed = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i] == 0) {
            ++failed;
            CHECK_THROWS_AS(std::move(outcomes[i]).get(), std::domain_error);
        } else {
            CHECK(std::move(outcomes[i]).get() == 100 / inputs[i]);
        }
    }
    CHECK(failed > 700);

    // 50 values: a status byte that is neither value nor exception after a
    // run of them, or the input cut short inside the run, is refused.
    std::vector<std::byte> values;
    cd::byte_writer v(values);
    v.put(cd::status_value);
    v.put_u64(50);
    for (int x = 1; x <= 50; ++x)
        cd::encode_outcome<int>(v, [&] { return x; });
    const auto header = 1 + sizeof(std::uint64_t);
    const auto each = 1 + sizeof(int);
    std::vector<std::byte> bad(values.begin(), values.begin() + header + 2 * each);
    bad.push_back(std::byte{7});
    cd::byte_reader br(bad);
    CHECK_THROWS_AS(cd::decode_chunk_result<int>(br, 50), coexec::serialization_error);
    std::vector<std::byte> cut(values.begin(), values.begin() + header + 40 * each + 2);
    cd::byte_reader cr(cut);
    CHECK_THROWS_AS(cd::decode_chunk_result<int>(cr, 50), coexec::serialization_error);
    cd::byte_reader whole(values);
    auto all = cd::decode_chunk_result<int>(whole, 50);
    CHECK(whole.at_end());
    CHECK(std::move(all[49]).get() == 50);
    // Bytes after the last outcome that look like more values are left unread.
    std::vector<std::byte> longer = values;
    for (int k = 0; k < 20; ++k)
        longer.insert(longer.end(), each, std::byte{0});
    cd::byte_reader lr(longer);
    auto fifty = cd::decode_chunk_result<int>(lr, 50);
    CHECK(fifty.size() == 50);
    CHECK(lr.remaining() == 20 * each);
}

TEST_CASE("a chunk whose every element throws is written as per element outcomes", "[codec]") {
    std::vector<int> zeros(3000, 0);
    const auto [reply, expected] = reciprocal_chunk(zeros);
    CHECK(reply == expected);
    cd::byte_reader r(reply);
    auto outcomes = cd::decode_chunk_result<int>(r, zeros.size());
    CHECK(r.at_end());
    for (auto& o : outcomes)
        REQUIRE(o.has_exception());
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
