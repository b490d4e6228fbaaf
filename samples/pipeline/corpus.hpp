// samples/pipeline/corpus.hpp — a generated text corpus to compress.
#pragma once

#include <cstdint>
#include <filesystem>

/// Writes `files` files of mixed text (words with a skewed distribution,
/// sentences, numbers) totalling about `total_bytes` under `dir`, in nested
/// directories. Deterministic. Does nothing if `dir` already has the corpus.
void ensure_corpus(const std::filesystem::path& dir, std::uint64_t total_bytes, int files);
