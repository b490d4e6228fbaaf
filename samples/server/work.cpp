// samples/server/work.cpp — CPU-bound functions (see work.hpp).
#include "work.hpp"

#include <cctype>

namespace server {
namespace {

bool is_prime(std::int64_t n) {
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    for (std::int64_t i = 3; i * i <= n; i += 2) {
        if (n % i == 0) return false;
    }
    return true;
}

}  // namespace

std::int64_t count_primes_below(std::int64_t n) {
    std::int64_t count = 0;
    for (std::int64_t i = 2; i < n; ++i)
        count += is_prime(i) ? 1 : 0;
    return count;
}

std::uint64_t count_words(const std::string& text) {
    std::uint64_t words = 0;
    bool in_word = false;
    for (char c : text) {
        const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
        if (!space && !in_word) ++words;
        in_word = !space;
    }
    return words;
}

}  // namespace server
