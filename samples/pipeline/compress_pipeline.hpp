// samples/pipeline/compress_pipeline.hpp — the work of the headline sample,
// shared with bench/pipeline: read → compress → write, as a coexec pipeline
// or serially.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "codec.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/thread_pool.hpp"

struct run_stats {
    std::size_t files = 0;
    std::uint64_t original = 0;    // bytes read
    std::uint64_t compressed = 0;  // bytes written
    double seconds = 0;
    double stage_done[3] = {0, 0, 0};  // when read / compress / write finished (pipeline only)
};

/// Reads every file under `input` on `io` (coexec::io), compresses it on
/// `cpu`, writes it under `output` on `io`; stages overlap, bounded buffers.
run_stats run_pipeline(const std::filesystem::path& input, const std::filesystem::path& output,
                       const compressor& transform, coexec::thread_pool& io,
                       coexec::process_pool& cpu);

/// The same work, one file at a time on the calling thread.
run_stats run_serial(const std::filesystem::path& input, const std::filesystem::path& output,
                     const compressor& transform);
