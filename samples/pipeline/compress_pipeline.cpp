#include "compress_pipeline.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <ranges>
#include <system_error>
#include <utility>

#include "coexec/io.hpp"
#include "coexec/pipeline.hpp"

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

/// Regular files under `root`, as paths relative to it; lazily, as the walk goes.
auto walk(const fs::path& root) {
    return std::ranges::subrange(fs::recursive_directory_iterator(root),
                                 fs::recursive_directory_iterator()) |
           std::views::filter([](const fs::directory_entry& e) {
               return e.is_regular_file() && e.path().filename().string()[0] != '.';
           }) |
           std::views::transform([root](const fs::directory_entry& e) {
               return fs::relative(e.path(), root).string();
           });
}

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

std::uint64_t file_size(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw std::system_error(errno, std::generic_category(), "fstat " + path);
    return static_cast<std::uint64_t>(st.st_size);
}

/// Stage 1 (thread_pool): read a whole file into shared memory with io_uring.
coexec::task<file_blob> read_file(fs::path root, std::string rel) {
    std::string full = (root / rel).string();
    int fd = co_await coexec::io::open(full, O_RDONLY | O_CLOEXEC);
    file_blob blob{rel, coexec::shared_buffer(file_size(fd, full))};
    std::uint64_t offset = 0;
    while (offset < blob.data.size()) {
        std::size_t want = std::min<std::uint64_t>(1 << 20, blob.data.size() - offset);
        std::size_t n = co_await coexec::io::read(fd, {blob.data.data() + offset, want}, offset);
        if (n == 0) break;  // the file shrank under us: keep what was there
        offset += n;
    }
    co_await coexec::io::close(fd);
    co_return blob;
}

struct written {
    std::uint64_t original = 0;
    std::uint64_t compressed = 0;
};

/// Stage 3 (thread_pool): write the compressed bytes with io_uring.
coexec::task<written> write_file(fs::path out_root, compressed_blob c) {
    fs::path path = out_root / c.path;
    fs::create_directories(path.parent_path());
    int fd =
        co_await coexec::io::open(path.string(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::uint64_t offset = 0;
    while (offset < c.size) {
        std::size_t n =
            co_await coexec::io::write(fd, {c.data.data() + offset, c.size - offset}, offset);
        offset += n;
    }
    co_await coexec::io::close(fd);
    co_return written{c.original_size, c.size};
}

}  // namespace

run_stats run_pipeline(const fs::path& input, const fs::path& output, const compressor& transform,
                       coexec::thread_pool& io, coexec::process_pool& cpu) {
    run_stats stats;
    auto start = clock_type::now();
    // Each stage reports when it has finished everything (progress callbacks
    // run on this, the consuming, thread).
    auto stage_done = [&](std::size_t k) {
        return [&stats, start, k](const coexec::progress_info& p) {
            if (p.input_exhausted && p.done == p.total) stats.stage_done[k] = seconds_since(start);
        };
    };
    fs::path in_root = input, out_root = output;
    auto result =
        coexec::pipeline(walk(input))
            .then(io, [in_root](std::string rel) { return read_file(in_root, std::move(rel)); },
                  {.concurrency = 16, .progress = stage_done(0), .name = "read"})
            .then(cpu, transform,
                  {.concurrency = cpu.max_workers() + 1,
                   .ordered = false,
                   .progress = stage_done(1),
                   .name = "compress"})
            .then(io, [out_root](compressed_blob c) { return write_file(out_root, std::move(c)); },
                  {.concurrency = 16, .ordered = false, .progress = stage_done(2), .name = "write"})
            .collect();
    stats.seconds = seconds_since(start);
    for (const written& w : result) {
        ++stats.files;
        stats.original += w.original;
        stats.compressed += w.compressed;
    }
    return stats;
}

run_stats run_serial(const fs::path& input, const fs::path& output, const compressor& transform) {
    run_stats stats;
    auto start = clock_type::now();
    for (const std::string& rel : walk(input)) {
        std::ifstream in(input / rel, std::ios::binary);
        file_blob blob{rel, coexec::shared_buffer(fs::file_size(input / rel))};
        in.read(reinterpret_cast<char*>(blob.data.data()),
                static_cast<std::streamsize>(blob.data.size()));
        compressed_blob c = transform(blob);
        fs::path path = output / c.path;
        fs::create_directories(path.parent_path());
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(c.data.data()),
                   static_cast<std::streamsize>(c.size));
        ++stats.files;
        stats.original += c.original_size;
        stats.compressed += c.size;
    }
    stats.seconds = seconds_since(start);
    return stats;
}
