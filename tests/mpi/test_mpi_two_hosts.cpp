// The two-host check (hidden from the 3-rank runs): tests/mpi/two_hosts.sh
// runs it as a job of 2 ranks, rank 0 and rank 1 in different network
// namespaces that reach each other over TCP through a bridge.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "coexec/mpi_pool.hpp"
#include "mpi_test_env.hpp"

using namespace std::chrono_literals;

namespace {

// Which network namespace this process is in ("net:[inode]").
std::string net_namespace() {
    char buf[128] = {};
    const ssize_t n = ::readlink("/proc/self/ns/net", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("?");
}
long cube(long x) {
    return x * x * x;
}
int refuse(int x) {
    if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
    return x;
}
std::string reversed(std::string s) {
    return {s.rbegin(), s.rend()};
}
int crash() {
    ::raise(SIGSEGV);
    return 0;
}

}  // namespace

TEST_CASE("two hosts: tasks run on the other host and their results come back", "[.][two_hosts]") {
    REQUIRE(coexec_test::mpi().size() == 2);
    const std::string here = net_namespace();
    for (auto isolation : {coexec::mpi_isolation::process, coexec::mpi_isolation::thread}) {
        coexec::mpi_pool pool{coexec_test::mpi(), {.slots_per_rank = 2, .isolation = isolation}};
        const std::string there = pool.submit(net_namespace).get_for(60s);
        INFO("rank 0 in " << here << ", the task in " << there);
        REQUIRE(there != here);
        std::vector<long> in(500);
        for (long i = 0; i < 500; ++i)
            in[static_cast<std::size_t>(i)] = i;
        auto out = pool.map(cube, in, {.chunksize = 25}).to_vector();
        REQUIRE(out.size() == 500);
        for (long i = 0; i < 500; ++i)
            REQUIRE(out[static_cast<std::size_t>(i)] == i * i * i);
        REQUIRE(pool.submit(mpi_test_lib_triple, 7L).get_for(60s) == 21);
        std::string big(8u << 20, 'a');
        big.back() = 'z';
        const std::string back = pool.submit(reversed, big).get_for(60s);  // over TCP, both ways
        REQUIRE(back.size() == big.size());
        REQUIRE(back.front() == 'z');
        REQUIRE_THROWS_WITH(pool.submit(refuse, -3).get_for(60s), "negative: -3");
    }
    coexec::mpi_pool pool{coexec_test::mpi(), {.slots_per_rank = 1}};
    auto died = coexec_test::require_error<coexec::worker_died>(pool.submit(crash));
    REQUIRE(died.signal() == SIGSEGV);
    REQUIRE(pool.submit(refuse, 5).get_for(60s) == 5);
}
