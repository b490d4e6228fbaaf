// bench/pipeline — the headline sample's work three ways, in the same run:
// the coexec pipeline (read on thread_pool with coexec::io → zlib on
// process_pool → write), the same work serially, and the same two-pool
// design in Python (ThreadPoolExecutor fetch + ProcessPoolExecutor transform).
// All three use zlib level 6, so both languages do the same work.
#include <cstdio>
#include <filesystem>
#include <string>

#include "bench_report.hpp"
#include "compress_pipeline.hpp"
#include "corpus.hpp"
#include "python_peer.hpp"

namespace fs = std::filesystem;

int main() {
    coexec::process_pool::prepare();  // the fork server, while we are single-threaded
    const fs::path work = fs::temp_directory_path() / "coexec-bench-pipeline";
    const fs::path input = work / "corpus";
    constexpr std::uint64_t corpus_mib = 128;
    ensure_corpus(input, corpus_mib << 20, static_cast<int>(corpus_mib * 2));
    const compressor transform{codec_kind::zlib, 6};

    coexec::thread_pool io{{.max_workers = 4, .thread_name_prefix = "io"}};
    coexec::process_pool cpu;
    const std::size_t workers = cpu.max_workers();

    auto mib_per_s = [](const run_stats& s) {
        return static_cast<double>(s.original) / (1 << 20) / s.seconds;
    };
    fs::remove_all(work / "out-pipeline");
    run_stats pipe = run_pipeline(input, work / "out-pipeline", transform, io, cpu);
    fs::remove_all(work / "out-serial");
    run_stats serial = run_serial(input, work / "out-serial", transform);
    std::printf(
        "  coexec pipeline: %zu files, %.1f MiB in %.2f s (%.1f MiB/s), %zu process workers\n",
        pipe.files, static_cast<double>(pipe.original) / (1 << 20), pipe.seconds, mib_per_s(pipe),
        workers);
    std::printf("  serial:          %.2f s (%.1f MiB/s)\n", serial.seconds, mib_per_s(serial));

    const std::string bench = "pipeline read→zlib-6→write, " + std::to_string(corpus_mib) +
                              " MiB, " + std::to_string(workers) + " workers";
    coexec_bench::report(bench, mib_per_s(pipe), "MiB/s", "same work serially (1 thread)",
                         mib_per_s(serial), coexec_bench::better::higher);
    fs::remove_all(work / "out-python");
    auto py = coexec_bench::run_python(
        "pipeline_peer.py", "'" + input.string() + "' '" + (work / "out-python").string() + "' " +
                                std::to_string(workers) + " 6");
    if (py && py->count("seconds") && py->at("seconds") > 0) {
        double py_rate = py->at("mib") / py->at("seconds");
        coexec_bench::report(bench, mib_per_s(pipe), "MiB/s",
                             "Python ThreadPool fetch + ProcessPool zlib", py_rate,
                             coexec_bench::better::higher);
    }
    coexec_bench::note("pipeline: a generated text corpus (" + std::to_string(pipe.files) +
                       " files); zlib level 6 in all three versions; outputs under " +
                       work.string() + ".");
    fs::remove_all(work / "out-pipeline");
    fs::remove_all(work / "out-serial");
    fs::remove_all(work / "out-python");
    return 0;
}
