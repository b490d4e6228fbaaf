// Tests for exceptions across the process boundary: standard, library and
// coexec types come back as the same type with the same what(); others as
// remote_error.
#include <catch2/catch.hpp>

#include <cerrno>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <ios>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <typeinfo>
#include <variant>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/errors.hpp"

namespace cd = coexec::detail;

namespace {

struct custom_error : std::exception {
    const char* what() const noexcept override { return "custom failure"; }
};

struct derived_logic : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

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

}  // namespace

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
