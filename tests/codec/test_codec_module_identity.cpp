// Tests for naming functions by module build-id (the form mpi_pool sends to
// other hosts): the module list, the round trip, refusals, the scope that
// selects the form, and a process worker decoding it.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <string>
#include <thread>

#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/module_identity.hpp"
#include "coexec/errors.hpp"
#include "coexec/process_pool.hpp"

namespace cd = coexec::detail;
using namespace std::chrono_literals;

namespace {

int triple(int x) {
    return 3 * x;
}

const void* address_of(int (*f)(int)) {
    return std::bit_cast<const void*>(f);
}

}  // namespace

TEST_CASE("loaded_modules lists the program first, with its path and build-id", "[codec]") {
    auto modules = cd::loaded_modules();
    REQUIRE(modules.size() >= 2);  // the program and at least libc
    char exe[4096] = {};
    REQUIRE(::readlink("/proc/self/exe", exe, sizeof exe - 1) > 0);
    CHECK(modules[0].path == exe);
    // Debian's toolchain links every module with --build-id (20 bytes of SHA-1).
    CHECK(modules[0].build_id.size() == 40);
    for (const auto& m : modules)
        CHECK(m.path.find("linux-vdso") == std::string::npos);  // the kernel's: left out
}

TEST_CASE("a function named by build-id decodes to the same function", "[codec]") {
    const auto fn = address_of(&triple);
    const std::uint64_t encoded = cd::encode_code_address_by_build_id(fn);
    CHECK((encoded & cd::build_id_address_tag) != 0);
    CHECK(cd::decode_code_address_by_build_id(encoded) == fn);
    CHECK(cd::decode_code_address(encoded) == fn);  // the general decoder takes both forms
    // A function in a shared library (libc) too, named by libc's build-id.
    const auto lib = std::bit_cast<const void*>(&::getpid);
    const std::uint64_t lib_encoded = cd::encode_code_address_by_build_id(lib);
    CHECK((lib_encoded >> 36) != (encoded >> 36));
    CHECK(cd::decode_code_address(lib_encoded) == lib);
}

TEST_CASE("a build-id-form address of a module not loaded here is refused", "[codec]") {
    const std::uint64_t encoded = cd::encode_code_address_by_build_id(address_of(&triple));
    // Another module hash (almost surely nobody's), same offset.
    const std::uint64_t foreign = encoded ^ (std::uint64_t{0x5a5a5a5} << 36);
    try {
        cd::decode_code_address(foreign);
        FAIL("a foreign build-id decoded");
    } catch (const coexec::serialization_error& e) {
        CHECK(std::string(e.what()).find("does not run the same program") != std::string::npos);
    }
    int on_stack = 0;
    CHECK_THROWS_AS(cd::encode_code_address_by_build_id(&on_stack), coexec::serialization_error);
}

TEST_CASE("code_address_scope selects the build-id form on its thread only", "[codec]") {
    const auto fn = address_of(&triple);
    const std::uint64_t plain = cd::encode_code_address(fn);
    CHECK((plain & cd::build_id_address_tag) == 0);
    {
        cd::code_address_scope scope(cd::code_address_form::build_id);
        CHECK((cd::encode_code_address(fn) & cd::build_id_address_tag) != 0);
        std::uint64_t other_thread = 0;
        std::thread([&] { other_thread = cd::encode_code_address(fn); }).join();
        CHECK(other_thread == plain);
    }
    CHECK(cd::encode_code_address(fn) == plain);
}

TEST_CASE("a process worker runs a function sent by build-id", "[codec][process_pool]") {
    coexec::process_pool pool{{.max_workers = 1}};
    cd::code_address_scope scope(cd::code_address_form::build_id);
    // The function pointer argument is encoded in the build-id form here and
    // decoded by the worker.
    CHECK(pool.submit(&triple, 14).get_for(30s) == 42);
}
