// The start-up check's judgement (lib/mpi/handshake.hpp), without MPI: which
// differences between rank 0 and another rank refuse the job, and what the
// refusal says.
#include <catch2/catch.hpp>
#include <string>

#include "coexec/errors.hpp"
#include "mpi/handshake.hpp"

namespace cm = coexec::detail::mpi;

namespace {

cm::rank_identity sample() {
    cm::rank_identity id;
    id.thread_level = 3;
    id.pid = 100;
    id.host = "node-a";
    id.modules = {{"/opt/app/bin/app", "aa11"},
                  {"/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "bb22"},
                  {"/usr/lib/x86_64-linux-gnu/libc.so.6", "cc33"}};
    return id;
}

bool says(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("ranks with the same modules pass, whatever their paths and hosts", "[mpi]") {
    auto other = sample();
    other.host = "node-b";
    other.pid = 7;
    other.modules[0].path = "/scratch/copy/of/app";  // the same build, elsewhere
    CHECK(cm::describe_mismatch(sample(), 1, other).empty());
}

TEST_CASE("another program on a rank is refused naming both programs", "[mpi]") {
    auto other = sample();
    other.host = "node-b";
    other.modules[0] = {"/opt/app/bin/other", "dd44"};
    const auto why = cm::describe_mismatch(sample(), 2, other);
    CHECK(says(why, "rank 2 (host node-b"));
    CHECK(says(why, "/opt/app/bin/other (build-id dd44)"));
    CHECK(says(why, "/opt/app/bin/app (build-id aa11)"));
    CHECK(says(why, "every rank must run the same program"));
}

TEST_CASE("a library with another build-id, a missing or an extra one is refused", "[mpi]") {
    auto changed = sample();
    changed.modules[2].build_id = "ee55";
    CHECK(says(cm::describe_mismatch(sample(), 1, changed),
               "loads /usr/lib/x86_64-linux-gnu/libc.so.6 (build-id ee55) where rank 0"));
    auto missing = sample();
    missing.modules.pop_back();
    CHECK(says(cm::describe_mismatch(sample(), 1, missing),
               "lacks /usr/lib/x86_64-linux-gnu/libc.so.6"));
    auto extra = sample();
    extra.modules.push_back({"/usr/lib/libz.so.1", "ff66"});
    CHECK(says(cm::describe_mismatch(sample(), 1, extra), "also loads /usr/lib/libz.so.1"));
}

TEST_CASE("a rank identity survives encoding and a truncated one is refused", "[mpi]") {
    const auto bytes = cm::encode_identity(sample());
    const auto back = cm::decode_identity(bytes);
    CHECK(back.thread_level == 3);
    CHECK(back.pid == 100);
    CHECK(back.host == "node-a");
    REQUIRE(back.modules.size() == 3);
    CHECK(back.modules[1].path == "/usr/lib/x86_64-linux-gnu/libstdc++.so.6");
    CHECK(back.modules[1].build_id == "bb22");
    CHECK_THROWS_AS(cm::decode_identity(std::span(bytes).first(bytes.size() - 3)),
                    coexec::serialization_error);
}
