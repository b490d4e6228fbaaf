// samples/pipeline — the headline sample: fetch on threads, transform in processes.
//
// Walks a directory tree, reads every file on a thread_pool with coexec::io
// (io_uring: a read in flight holds no thread), compresses each file on a
// process_pool (crash-isolated workers; the bytes travel as shared memory,
// not copies), writes the results on the thread pool, and compares with the
// same work done serially. It is the seeds' "thread pool for fetch, process
// pool for heavy transform" advice as one bounded pipeline.
//
//   pipeline [--input DIR] [--output DIR] [--codec zstd|zlib] [--level N]
//            [--corpus-mb N] [--io-workers N] [--cpu-workers N] [--no-serial]
//
// Without --input it generates a corpus of mixed text (--corpus-mb, default
// 256) under ./pipeline-corpus on first run.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ranges>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "codec.hpp"
#include "coexec/io.hpp"
#include "coexec/pipeline.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/thread_pool.hpp"
#include "corpus.hpp"

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
    fs::path input;
    fs::path output = "pipeline-out";
    compressor transform;
    std::uint64_t corpus_mb = 256;
    std::size_t io_workers = 4;
    std::size_t cpu_workers = 0;  // 0: one per core
    bool serial = true;
};

settings parse(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "pipeline: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--input") {
            s.input = value();
        } else if (a == "--output") {
            s.output = value();
        } else if (a == "--codec" || a.rfind("--codec=", 0) == 0) {
            std::string c = a == "--codec" ? value() : a.substr(8);
            if (c != "zstd" && c != "zlib") {
                std::fprintf(stderr, "pipeline: --codec must be zstd or zlib\n");
                std::exit(2);
            }
            s.transform.codec = c == "zstd" ? codec_kind::zstd : codec_kind::zlib;
            if (c == "zlib" && s.transform.level > 9) s.transform.level = 9;
        } else if (a == "--level") {
            s.transform.level = std::atoi(value().c_str());
        } else if (a == "--corpus-mb") {
            s.corpus_mb = std::strtoull(value().c_str(), nullptr, 10);
        } else if (a == "--io-workers") {
            s.io_workers = std::strtoull(value().c_str(), nullptr, 10);
        } else if (a == "--cpu-workers") {
            s.cpu_workers = std::strtoull(value().c_str(), nullptr, 10);
        } else if (a == "--no-serial") {
            s.serial = false;
        } else {
            std::fprintf(stderr, "pipeline: unknown flag %s\n", a.c_str());
            std::exit(2);
        }
    }
    return s;
}

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

/// The same work, one file at a time on this thread, for the speed-up figure.
written run_serial(const settings& s) {
    written total;
    for (const std::string& rel : walk(s.input)) {
        std::ifstream in(s.input / rel, std::ios::binary);
        file_blob blob{rel, coexec::shared_buffer(fs::file_size(s.input / rel))};
        in.read(reinterpret_cast<char*>(blob.data.data()),
                static_cast<std::streamsize>(blob.data.size()));
        compressed_blob c = s.transform(blob);
        fs::path path = fs::path(s.output.string() + "-serial") / c.path;
        fs::create_directories(path.parent_path());
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(c.data.data()),
                   static_cast<std::streamsize>(c.size));
        total.original += c.original_size;
        total.compressed += c.size;
    }
    return total;
}

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}
double mib(std::uint64_t bytes) {
    return static_cast<double>(bytes) / (1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
    // Make the process pool's zygote while this program has one thread: every
    // worker is forked from it, never from the multithreaded program.
    coexec::process_pool::prepare();
    settings s = parse(argc, argv);
    if (s.input.empty()) {
        s.input = "pipeline-corpus";
        if (!fs::exists(s.input / ".complete")) {
            std::printf("generating a %llu MiB text corpus in %s ...\n",
                        static_cast<unsigned long long>(s.corpus_mb), s.input.c_str());
        }
        ensure_corpus(s.input, s.corpus_mb << 20, static_cast<int>(s.corpus_mb * 2));
    }

    coexec::thread_pool io{{.max_workers = s.io_workers, .thread_name_prefix = "io"}};
    coexec::process_pool cpu{{.max_workers = s.cpu_workers}};
    std::printf("input %s, output %s, %s level %d; io backend %s\n", s.input.c_str(),
                s.output.c_str(), codec_name(s.transform.codec).c_str(), s.transform.level,
                std::string(coexec::io::backend_name()).c_str());

    // Per-stage finish times, from the stages' progress reports.
    std::vector<double> finished(3, 0.0);
    auto start = clock_type::now();
    auto stage_done = [&](std::size_t k) {
        return [&, k](const coexec::progress_info& p) {
            if (p.input_exhausted && p.done == p.total) finished[k] = seconds_since(start);
        };
    };
    fs::path in_root = s.input, out_root = s.output;
    auto result =
        coexec::pipeline(walk(s.input))
            .then(io, [in_root](std::string rel) { return read_file(in_root, std::move(rel)); },
                  {.concurrency = 16, .progress = stage_done(0), .name = "read"})
            .then(cpu, s.transform,
                  {.concurrency = cpu.max_workers() + 1,
                   .ordered = false,
                   .progress = stage_done(1),
                   .name = "compress"})
            .then(io, [out_root](compressed_blob c) { return write_file(out_root, std::move(c)); },
                  {.concurrency = 16, .ordered = false, .progress = stage_done(2), .name = "write"})
            .collect();
    double wall = seconds_since(start);

    written total;
    for (const written& w : result) {
        total.original += w.original;
        total.compressed += w.compressed;
    }
    std::printf(
        "\ncoexec pipeline: %zu files, %.1f MiB -> %.1f MiB (ratio %.2f) in %.2f s, %.1f MiB/s\n",
        result.size(), mib(total.original), mib(total.compressed),
        static_cast<double>(total.original) /
            static_cast<double>(std::max<std::uint64_t>(1, total.compressed)),
        wall, mib(total.original) / wall);
    const char* names[] = {"read     (thread_pool, coexec::io)", "compress (process_pool)",
                           "write    (thread_pool, coexec::io)"};
    std::size_t workers[] = {io.max_workers(), cpu.max_workers(), io.max_workers()};
    for (std::size_t k = 0; k < 3; ++k) {
        std::printf("  stage %-36s x%-2zu done at %5.2f s  %7.1f MiB/s\n", names[k], workers[k],
                    finished[k], mib(total.original) / std::max(finished[k], 1e-9));
    }

    if (s.serial) {
        auto t0 = clock_type::now();
        written serial = run_serial(s);
        double serial_wall = seconds_since(t0);
        std::printf("serial (one thread, same work): %.1f MiB in %.2f s, %.1f MiB/s\n",
                    mib(serial.original), serial_wall, mib(serial.original) / serial_wall);
        std::printf("speed-up over serial: %.2fx with %zu process workers\n", serial_wall / wall,
                    cpu.max_workers());
        if (serial.compressed != total.compressed) {
            std::printf(
                "warning: serial and pipeline outputs differ in size (%llu vs %llu bytes)\n",
                static_cast<unsigned long long>(serial.compressed),
                static_cast<unsigned long long>(total.compressed));
            return 1;
        }
    }
    return 0;
}
