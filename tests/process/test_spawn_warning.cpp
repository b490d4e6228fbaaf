// The one-time warning when a pool that wants a fork server falls back to
// spawn (prepare() not called in time), checked on a helper program's stderr.
#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace {

struct run_result {
    int status = -1;
    std::string err;  // the helper's stderr
};

run_result run_probe(const std::string& env, const char* mode) {
    // Only stderr is captured (stdout goes nowhere): the warning is on stderr.
    const std::string cmd =
        "env " + env + " " COEXEC_SPAWN_WARNING_PROBE " " + mode + " 2>&1 >/dev/null";
    run_result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
        r.err.append(buf.data(), n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1))
        ++n;
    return n;
}

const std::string warning = "coexec: warning: process_pool starts its workers with";

}  // namespace

TEST_CASE("a pool that falls back to spawn because prepare() was late warns once on stderr",
          "[process_pool][start]") {
    auto r = run_probe("-u COEXEC_NO_SPAWN_WARNING", "late");
    CHECK(r.status == 0);
    CHECK(count(r.err, warning) == 1);  // two pools, one warning
    CHECK_THAT(r.err, Catch::Contains("several threads"));
    CHECK_THAT(r.err, Catch::Contains("coexec::process_pool::prepare()"));
    CHECK_THAT(r.err, Catch::Contains("COEXEC_NO_SPAWN_WARNING=1"));
}

TEST_CASE("COEXEC_NO_SPAWN_WARNING=1 silences the spawn fallback warning",
          "[process_pool][start]") {
    auto r = run_probe("COEXEC_NO_SPAWN_WARNING=1", "late");
    CHECK(r.status == 0);
    CHECK(count(r.err, warning) == 0);
}

TEST_CASE("no spawn warning when prepare() was called in time or spawn was chosen",
          "[process_pool][start]") {
    auto prepared = run_probe("-u COEXEC_NO_SPAWN_WARNING", "prepared");
    CHECK(prepared.status == 0);
    CHECK(count(prepared.err, warning) == 0);
    auto chosen = run_probe("-u COEXEC_NO_SPAWN_WARNING", "explicit");
    CHECK(chosen.status == 0);
    CHECK(count(chosen.err, warning) == 0);
}
