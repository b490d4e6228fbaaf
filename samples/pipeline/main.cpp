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
//            [--corpus-mb N] [--io-workers N] [--cpu-workers N] [--no-serial] [--keep]
//            [--trace out.json]
//
// --trace (or COEXEC_TRACE=out.json) records the pipelined run as a timeline
// for ui.perfetto.dev: the read/compress/write stages, every worker thread and
// process, flows from submit to completion (docs/trace.md).
//
// Without --input it generates a corpus of mixed text (--corpus-mb, default
// 256). What the run writes — that corpus, and the outputs unless --output is
// given — goes to a fresh directory under the system's temporary directory
// ($TMPDIR, else /tmp), removed when the program ends (--keep leaves it and
// says where). Nothing is written to the current directory.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "codec.hpp"
#include "coexec/io.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/thread_pool.hpp"
#include "coexec/trace.hpp"
#include "compress_pipeline.hpp"
#include "corpus.hpp"

namespace fs = std::filesystem;

namespace {

struct settings {
    fs::path input;
    fs::path output;  // empty: <scratch>/out
    compressor transform;
    std::uint64_t corpus_mb = 256;
    std::size_t io_workers = 4;
    std::size_t cpu_workers = 0;  // 0: one per core
    bool serial = true;
    std::string trace;  // --trace: the timeline's file
    bool keep = false;
};

// A fresh directory for what this run writes; removed at the end unless kept.
class scratch_dir {
  public:
    explicit scratch_dir(bool keep) : m_keep(keep) {
        std::string pattern = (fs::temp_directory_path() / "coexec-pipeline-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
        }
        m_path = pattern;
    }
    ~scratch_dir() {
        if (m_keep) {
            std::printf("kept %s\n", m_path.c_str());
            return;
        }
        std::error_code ignored;
        fs::remove_all(m_path, ignored);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    const fs::path& path() const { return m_path; }

  private:
    fs::path m_path;
    bool m_keep;
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
        } else if (a == "--trace") {
            s.trace = value();
        } else if (a == "--no-serial") {
            s.serial = false;
        } else if (a == "--keep") {
            s.keep = true;
        } else {
            std::fprintf(stderr, "pipeline: unknown flag %s\n", a.c_str());
            std::exit(2);
        }
    }
    return s;
}

double mib(std::uint64_t bytes) {
    return static_cast<double>(bytes) / (1 << 20);
}

// Runs the pipeline (and the serial comparison) over s.input; 0 on success.
int run(const settings& s) {
    if (!s.trace.empty() && !coexec::trace::recording()) coexec::trace::start(s.trace);
    coexec::thread_pool io{{.max_workers = s.io_workers, .thread_name_prefix = "io"}};
    coexec::process_pool cpu{{.max_workers = s.cpu_workers}};
    std::printf("input %s, output %s, %s level %d; io backend %s\n", s.input.c_str(),
                s.output.c_str(), codec_name(s.transform.codec).c_str(), s.transform.level,
                std::string(coexec::io::backend_name()).c_str());

    run_stats p = run_pipeline(s.input, s.output, s.transform, io, cpu);
    if (coexec::trace::recording()) {  // the pipelined run only, not the serial one
        coexec::trace::stop();
        std::printf("trace written to %s (open it in ui.perfetto.dev)\n",
                    coexec::trace::path().c_str());
    }
    std::printf(
        "\ncoexec pipeline: %zu files, %.1f MiB -> %.1f MiB (ratio %.2f) in %.2f s, %.1f MiB/s\n",
        p.files, mib(p.original), mib(p.compressed),
        static_cast<double>(p.original) /
            static_cast<double>(std::max<std::uint64_t>(1, p.compressed)),
        p.seconds, mib(p.original) / p.seconds);
    const char* names[] = {"read     (thread_pool, coexec::io)", "compress (process_pool)",
                           "write    (thread_pool, coexec::io)"};
    std::size_t workers[] = {io.max_workers(), cpu.max_workers(), io.max_workers()};
    for (std::size_t k = 0; k < 3; ++k) {
        std::printf("  stage %-36s x%-2zu done at %5.2f s  %7.1f MiB/s\n", names[k], workers[k],
                    p.stage_done[k], mib(p.original) / std::max(p.stage_done[k], 1e-9));
    }

    if (s.serial) {
        run_stats serial =
            run_serial(s.input, fs::path(s.output.string() + "-serial"), s.transform);
        std::printf("serial (one thread, same work): %.1f MiB in %.2f s, %.1f MiB/s\n",
                    mib(serial.original), serial.seconds, mib(serial.original) / serial.seconds);
        std::printf("speed-up over serial: %.2fx with %zu process workers\n",
                    serial.seconds / p.seconds, cpu.max_workers());
        if (serial.compressed != p.compressed) {
            std::printf(
                "warning: serial and pipeline outputs differ in size (%llu vs %llu bytes)\n",
                static_cast<unsigned long long>(serial.compressed),
                static_cast<unsigned long long>(p.compressed));
            return 1;
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Make the process pool's fork server while this program has one thread: every
    // worker is forked from it, never from the multithreaded program.
    coexec::process_pool::prepare();
    settings s = parse(argc, argv);
    try {
        scratch_dir scratch(s.keep);  // removed on every way out of this block
        if (s.output.empty()) s.output = scratch.path() / "out";
        if (s.input.empty()) {
            s.input = scratch.path() / "corpus";
            std::printf("generating a %llu MiB text corpus in %s ...\n",
                        static_cast<unsigned long long>(s.corpus_mb), s.input.c_str());
            ensure_corpus(s.input, s.corpus_mb << 20, static_cast<int>(s.corpus_mb * 2));
        }
        return run(s);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pipeline: %s\n", e.what());
        return 1;
    }
}
