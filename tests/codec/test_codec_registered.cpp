// Registered user exception types through the exception codec, in one process.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/register_exception.hpp"

namespace cd = coexec::detail;

namespace {

std::exception_ptr round_trip(std::exception_ptr e) {
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    cd::encode_exception(w, e);
    cd::byte_reader r(bytes);
    auto out = cd::decode_exception(r);
    CHECK(r.at_end());
    return out;
}

struct quota_error : std::runtime_error {
    using std::runtime_error::runtime_error;
    long used = 0;
    std::string user;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(used, user);
    }
};

// Only default constructible: what() is computed from the members.
struct code_error : std::exception {
    int code = 0;
    const char* what() const noexcept override { return code == 42 ? "code 42" : "another code"; }
    template <class Ar>
    void serialize(Ar& ar) {
        ar(code);
    }
};

// A runtime_error whose only string-taking constructor needs more: default-made
// on arrival, its message put back in its base.
struct budget_error : std::runtime_error {
    int limit = 0;
    budget_error() : std::runtime_error("") {}
    budget_error(const std::string& what, int l) : std::runtime_error(what), limit(l) {}
    template <class Ar>
    void serialize(Ar& ar) {
        ar(limit);
    }
};

// Its members refuse to be encoded: it must still arrive, by the standard mapping.
struct stubborn_error : std::runtime_error {
    using std::runtime_error::runtime_error;
    template <class Ar>
    void save(Ar&) const {
        throw std::runtime_error("cannot save");
    }
    template <class Ar>
    void load(Ar&) {}
};

}  // namespace

TEST_CASE("a registered exception round-trips as its own type with its members",
          "[codec][exceptions]") {
    coexec::register_exception<quota_error>();
    coexec::register_exception<quota_error>();  // idempotent
    quota_error original("over quota");
    original.used = 1234;
    original.user = "ada";
    try {
        std::rethrow_exception(round_trip(std::make_exception_ptr(original)));
    } catch (const quota_error& x) {
        CHECK(typeid(x) == typeid(quota_error));
        CHECK(std::string(x.what()) == "over quota");
        CHECK(x.used == 1234);
        CHECK(x.user == "ada");
        return;
    } catch (...) {
    }
    FAIL("the registered type did not arrive as itself");
}

TEST_CASE("a registered type without a string constructor is default-made then filled",
          "[codec][exceptions]") {
    coexec::register_exception<code_error>();
    code_error original;
    original.code = 42;
    CHECK_THROWS_WITH(std::rethrow_exception(round_trip(std::make_exception_ptr(original))),
                      "code 42");
    CHECK_THROWS_AS(std::rethrow_exception(round_trip(std::make_exception_ptr(original))),
                    code_error);
}

TEST_CASE("a default-made registered runtime_error keeps its what() and members",
          "[codec][exceptions]") {
    coexec::register_exception<budget_error>();
    try {
        std::rethrow_exception(
            round_trip(std::make_exception_ptr(budget_error("over budget: 10 of 10", 10))));
    } catch (const budget_error& e) {
        CHECK(std::string(e.what()) == "over budget: 10 of 10");
        CHECK(e.limit == 10);
        return;
    }
    FAIL("did not arrive as budget_error");
}

TEST_CASE("a registered type whose members cannot be encoded falls back to its standard base",
          "[codec][exceptions]") {
    coexec::register_exception<stubborn_error>();
    try {
        std::rethrow_exception(round_trip(std::make_exception_ptr(stubborn_error("stubborn"))));
    } catch (const stubborn_error&) {
        FAIL("arrived as itself although its members could not be encoded");
    } catch (const std::runtime_error& x) {
        CHECK(typeid(x) == typeid(std::runtime_error));
        CHECK(std::string(x.what()) == "stubborn");
        return;
    }
    FAIL("no exception");
}

TEST_CASE("truncated members of a registered type are a serialization_error",
          "[codec][exceptions]") {
    coexec::register_exception<quota_error>();
    quota_error original("q");
    original.user = "a long enough user name";
    std::vector<std::byte> bytes;
    cd::byte_writer w(bytes);
    cd::encode_exception(w, std::make_exception_ptr(original));
    // The member block (long, then the string) is the last length-prefixed field:
    // cut 4 bytes off it and fix its length, so only the members are short.
    const std::uint64_t members = sizeof(long) + sizeof(std::uint64_t) + original.user.size();
    const std::size_t prefix_at = bytes.size() - members - sizeof(std::uint64_t);
    std::uint64_t stored = 0;
    std::memcpy(&stored, bytes.data() + prefix_at, sizeof stored);
    REQUIRE(stored == members);
    stored -= 4;
    std::memcpy(bytes.data() + prefix_at, &stored, sizeof stored);
    bytes.resize(bytes.size() - 4);
    cd::byte_reader r(bytes);
    CHECK_THROWS_AS(cd::decode_exception(r), coexec::serialization_error);
}
