#include "corpus.hpp"

#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

void ensure_corpus(const fs::path& dir, std::uint64_t total_bytes, int files) {
    fs::path marker = dir / ".complete";
    if (fs::exists(marker)) return;
    fs::create_directories(dir);
    std::mt19937_64 rng(20261122);
    std::vector<std::string> vocab;
    for (int i = 0; i < 8000; ++i) {
        std::string w;
        int len = 2 + static_cast<int>(rng() % 10);
        for (int k = 0; k < len; ++k)
            w += static_cast<char>('a' + rng() % 26);
        vocab.push_back(std::move(w));
    }
    const std::uint64_t per_file = total_bytes / static_cast<std::uint64_t>(files);
    std::string text;
    for (int f = 0; f < files; ++f) {
        fs::path sub = dir / ("part" + std::to_string(f % 16));
        fs::create_directories(sub);
        text.clear();
        text.reserve(per_file + 64);
        // Some files are noisier than others, so compression ratios differ.
        const unsigned noise = 1 + static_cast<unsigned>(f % 7);
        while (text.size() < per_file) {
            auto r = static_cast<std::uint64_t>(rng() % vocab.size());
            text += vocab[r * r / vocab.size()];  // skewed: short common words dominate
            auto roll = rng() % 97;
            if (roll < noise) {
                text += ' ';
                text += std::to_string(rng() % 100000);
            }
            text += roll % 13 == 0 ? ".\n" : " ";
        }
        std::ofstream(sub / ("doc" + std::to_string(f) + ".txt"), std::ios::binary) << text;
    }
    std::ofstream(marker) << "ok\n";
}
