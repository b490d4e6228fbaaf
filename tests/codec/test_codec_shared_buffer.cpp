// Tests for shared_buffer and the codec: a handle that shares memory, sent
// as a descriptor beside the bytes, also to a forked child.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/remote_call.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/errors.hpp"
#include "coexec/shared_buffer.hpp"

namespace cd = coexec::detail;

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
