// samples/pipeline/codec.hpp — the CPU stage: compress one file's bytes.
#pragma once

#include <cstdint>
#include <string>

#include "coexec/shared_buffer.hpp"

enum class codec_kind : std::uint8_t { zstd, zlib };

/// One input file, read on the thread pool into shared memory: the process
/// worker maps the same pages instead of receiving a copy.
struct file_blob {
    std::string path;  // relative to the input directory
    coexec::shared_buffer data;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(path, data);
    }
};

/// One compressed file: `data` holds `size` bytes (the buffer is sized for
/// the worst case, so the worker writes into it directly).
struct compressed_blob {
    std::string path;
    std::uint64_t original_size = 0;
    std::uint64_t size = 0;
    coexec::shared_buffer data;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(path, original_size, size, data);
    }
};

/// The transform, as a serializable function object: its settings travel to
/// the worker with each task (a capturing lambda could not).
struct compressor {
    codec_kind codec = codec_kind::zstd;
    int level = 9;
    compressed_blob operator()(const file_blob& in) const;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(codec, level);
    }
};

std::string codec_name(codec_kind codec);
