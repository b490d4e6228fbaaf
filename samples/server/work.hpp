// samples/server/work.hpp — the CPU-bound work the server hands to its CPU executor.
//
// These are plain functions on purpose: a process_pool worker runs the same
// program image, so what crosses to it is a function address plus serialized
// arguments. A function pointer (or a captureless lambda) is valid in the
// worker; a capturing lambda is not, and process_pool::submit refuses one at
// compile time. Arguments and results are integers and std::string, which
// coexec serializes; the thread and inline executors take them as they are.
#pragma once

#include <cstdint>
#include <string>

namespace server {

/// How many primes are below `n` (trial division: deliberately CPU-bound).
std::int64_t count_primes_below(std::int64_t n);

/// Whitespace-separated words in `text`.
std::uint64_t count_words(const std::string& text);

}  // namespace server
