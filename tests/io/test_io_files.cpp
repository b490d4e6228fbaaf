// coexec::io on files and pipes from thread_pool workers: positional reads
// and writes, many reads in flight, errors, and a pipe read that waits without
// holding its worker. Runs on both backends (see tests/CMakeLists.txt).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "coexec/io.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "io_helpers.hpp"

using namespace std::chrono_literals;
using coexec::task;
using coexec::thread_pool;
using namespace coexec_test;
namespace io = coexec::io;

namespace {
struct closing_fd {
    explicit closing_fd(int fd) : m_fd(fd) {}
    closing_fd(const closing_fd&) = delete;
    closing_fd& operator=(const closing_fd&) = delete;
    ~closing_fd() {
        if (m_fd >= 0) ::close(m_fd);
    }
    int get() const { return m_fd; }

  private:
    int m_fd;
};
}  // namespace

TEST_CASE("write and read at offsets round-trip, with short reads at end of file", "[io][file]") {
    temp_dir dir;
    thread_pool pool{{.max_workers = 2}};
    std::string path = dir.file("data.bin");
    struct result {
        std::size_t w1, w2, r_full, r_short, r_eof;
        std::string head, tail;
    };
    auto f = pool.submit([&]() -> task<result> {
        result r{};
        int fd = co_await io::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        std::string a(4096, 'a'), b = "tail-bytes";
        r.w1 = co_await io::write(fd, a, 0);
        r.w2 = co_await io::write(fd, b, 8192);  // leaves a hole from 4096 to 8192
        std::vector<char> buf(4096);
        r.r_full = co_await io::read(fd, buf, 0);
        r.head.assign(buf.data(), 4);
        r.r_short = co_await io::read(fd, buf, 8192);  // fewer bytes than asked
        r.tail.assign(buf.data(), r.r_short);
        r.r_eof = co_await io::read(fd, buf, 1 << 20);
        co_await io::close(fd);
        co_return r;
    });
    result r = f.get();
    CHECK(r.w1 == 4096);
    CHECK(r.w2 == 10);
    CHECK(r.r_full == 4096);
    CHECK(r.head == "aaaa");
    CHECK(r.r_short == 10);
    CHECK(r.tail == "tail-bytes");
    CHECK(r.r_eof == 0);
}

TEST_CASE("a large file is read back in parallel blocks, many in flight", "[io][file]") {
    temp_dir dir;
    thread_pool pool{{.max_workers = 2}};
    std::string path = dir.file("big.bin");
    constexpr std::size_t block = 64 * 1024, blocks = 64;
    std::vector<char> data(block * blocks);
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<char>(i * 131 % 251);
    int wfd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(::write(wfd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(wfd);

    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<char> back(data.size());
    std::vector<coexec::future<std::size_t>> fs;
    for (std::size_t i = 0; i < blocks; ++i) {
        fs.push_back(pool.submit([&, i]() -> task<std::size_t> {
            co_return co_await io::read(fd, io::mutable_buffer(back.data() + i * block, block),
                                        i * block);
        }));
    }
    std::size_t total = 0;
    for (auto& f : fs)
        total += f.get();
    ::close(fd);
    CHECK(total == data.size());
    CHECK(back == data);
}

TEST_CASE("file errors arrive as system_error naming the operation", "[io][file]") {
    temp_dir dir;
    thread_pool pool{{.max_workers = 1}};
    std::string missing = dir.file("missing");
    auto bad_read = pool.submit([]() -> task<std::size_t> {
        char buf[16];
        co_return co_await io::read(987654, buf, 0);
    });
    auto bad_write = pool.submit(
        []() -> task<std::size_t> { co_return co_await io::write(987654, std::string("x"), 0); });
    auto no_file =
        pool.submit([&]() -> task<int> { co_return co_await io::open(missing, O_RDONLY); });
    CHECK(error_of([&] { bad_read.get(); }) == EBADF);
    CHECK(error_of([&] { bad_write.get(); }) == EBADF);
    CHECK(error_of([&] { no_file.get(); }) == ENOENT);
    try {
        no_file.get();
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::no_such_file_or_directory);
        CHECK(std::string(e.what()).find("io::open") != std::string::npos);
    }
    try {
        bad_read.get();
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("io::read") != std::string::npos);
    }
}

TEST_CASE("offsets past off_t fail with EINVAL and a 4 GiB buffer takes what there is",
          "[io][file]") {
    temp_dir dir;
    thread_pool pool{{.max_workers = 1}};
    const std::string path = dir.file("five");
    {
        closing_fd fd(::open(path.c_str(), O_CREAT | O_WRONLY, 0600));
        REQUIRE(::write(fd.get(), "hello", 5) == 5);
    }
    closing_fd fd(::open(path.c_str(), O_RDONLY));
    REQUIRE(fd.get() >= 0);
    // Offsets above INT64_MAX are not the file position (-1): pread's EINVAL.
    for (std::uint64_t offset : {~std::uint64_t{0}, std::uint64_t{1} << 63}) {
        auto f = pool.submit([&, offset]() -> task<std::size_t> {
            char buf[8];
            co_return co_await io::read(fd.get(), buf, offset);
        });
        CHECK(error_of([&] { f.get_for(10s); }) == EINVAL);
    }
    // io_uring's length field is 32 bits: a 4 GiB + 5 buffer once became 5
    // bytes, and exactly 4 GiB became 0 ("end of file"). Reserved, not touched.
    for (std::size_t size : {std::size_t{1} << 32, (std::size_t{1} << 32) + 5}) {
        void* big = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (big == MAP_FAILED) {
            WARN("no 4 GiB of address space here: the large-buffer case is skipped");
            break;
        }
        auto f = pool.submit([&]() -> task<std::size_t> {
            co_return co_await io::read(fd.get(), io::mutable_buffer{big, size}, 0);
        });
        CHECK(f.get_for(10s) == 5);
        int pipe_fds[2];
        REQUIRE(::pipe(pipe_fds) == 0);
        closing_fd rd(pipe_fds[0]), wr(pipe_fds[1]);
        REQUIRE(::write(wr.get(), "0123456789", 10) == 10);
        auto g = pool.submit([&]() -> task<std::size_t> {
            co_return co_await io::read(rd.get(), io::mutable_buffer{big, size});
        });
        CHECK(g.get_for(10s) == 10);
        ::munmap(big, size);
    }
}

TEST_CASE("a read on a pipe waits for the writer without holding the worker", "[io][file]") {
    thread_pool pool{{.max_workers = 1}};
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    auto reader = pool.submit([&]() -> task<std::string> {
        char buf[64];
        std::size_t n = co_await io::read(p[0], buf);
        co_return std::string(buf, n);
    });
    // The only worker is free while the read waits: it runs this at once.
    auto other = pool.submit([] { return 5; });
    CHECK(other.get_for(5s) == 5);
    CHECK_FALSE(reader.done());
    REQUIRE(::write(p[1], "hello", 5) == 5);
    CHECK(reader.get_for(10s) == "hello");
    ::close(p[0]);
    ::close(p[1]);
}
