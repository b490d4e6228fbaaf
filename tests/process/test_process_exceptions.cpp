// User exception types across the process boundary: registered ones arrive as
// themselves with their members, on every start method; unregistered ones keep
// the standard mapping.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "coexec/process_pool.hpp"

namespace app {

/// A registered type with serializable members.
struct http_error : std::runtime_error {
    using std::runtime_error::runtime_error;
    http_error(int s, std::vector<std::string> h, const std::string& what)
        : std::runtime_error(what), status(s), headers(std::move(h)) {}
    int status = 0;
    std::vector<std::string> headers;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(status, headers);
    }
};

/// Registered, no members, not derived from a standard base but std::exception.
struct plain_error : std::exception {
    const char* what() const noexcept override { return "plain failure"; }
};

/// Derived from a registered type but not registered itself.
struct http_subclass : http_error {
    using http_error::http_error;
};

/// Not registered.
struct other_error : std::logic_error {
    using std::logic_error::logic_error;
};

}  // namespace app

COEXEC_REGISTER_EXCEPTION(app::http_error);
COEXEC_REGISTER_EXCEPTION(app::plain_error)  // the `;` may be left out

namespace {

int throw_http(int status) {
    throw app::http_error(status, {"Retry-After: 5", "X-Id: 7"},
                          "status " + std::to_string(status));
}
int throw_plain() {
    throw app::plain_error();
}
int throw_subclass() {
    throw app::http_subclass(500, {}, "sub");
}
int throw_other() {
    throw app::other_error("other");
}

}  // namespace

TEST_CASE("a registered exception type arrives as itself with its members on every start method",
          "[process_pool][exceptions]") {
    for (auto m : {coexec::start_method::fork_server, coexec::start_method::fork,
                   coexec::start_method::spawn}) {
        coexec::process_pool pool{{.max_workers = 1, .start = m}};
        auto f = pool.submit(throw_http, 503);
        try {
            f.get();
            FAIL("no exception");
        } catch (const app::http_error& e) {
            CHECK(std::string(e.what()) == "status 503");
            CHECK(e.status == 503);
            CHECK(e.headers == std::vector<std::string>{"Retry-After: 5", "X-Id: 7"});
        }
    }
}

TEST_CASE("a registered exception without members arrives as itself",
          "[process_pool][exceptions]") {
    coexec::process_pool pool{{.max_workers = 1}};
    CHECK_THROWS_AS(pool.submit(throw_plain).get(), app::plain_error);
    CHECK_THROWS_WITH(pool.submit(throw_plain).get(), "plain failure");
}

TEST_CASE("a map element's registered exception arrives as itself", "[process_pool][exceptions]") {
    coexec::process_pool pool{{.max_workers = 2}};
    auto results = pool.map(throw_http, std::vector<int>{400, 404}, {.chunksize = 1});
    for (int expected : {400, 404}) {
        try {
            (void)results.next_blocking();
            FAIL("no exception");
        } catch (const app::http_error& e) {
            CHECK(e.status == expected);
        }
    }
}

TEST_CASE("unregistered exception types keep the standard mapping", "[process_pool][exceptions]") {
    coexec::process_pool pool{{.max_workers = 1}};
    // Only the exact type is matched: a subclass of a registered type is not it.
    try {
        pool.submit(throw_subclass).get();
        FAIL("no exception");
    } catch (const app::http_error&) {
        FAIL("an unregistered subclass arrived as its registered base");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "sub");
    }
    try {
        pool.submit(throw_other).get();
        FAIL("no exception");
    } catch (const app::other_error&) {
        FAIL("an unregistered type arrived as itself");
    } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()) == "other");
    }
}
