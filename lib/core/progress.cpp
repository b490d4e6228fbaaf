#include "coexec/detail/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace coexec::detail {

progress_reporter::progress_reporter(
    const std::variant<bool, std::function<void(const progress_info&)>>& setting, std::string label)
    : m_label(std::move(label)) {
    if (const auto* cb = std::get_if<1>(&setting)) {
        m_callback = *cb;
    } else if (std::get<0>(setting)) {
        m_bar = ::isatty(STDERR_FILENO) == 1;
    }
}

void progress_reporter::update(const progress_info& info) {
    if (m_callback) m_callback(info);
    if (m_bar) {
        auto now = std::chrono::steady_clock::now();
        if (now - m_last_draw >= std::chrono::milliseconds(100)) {
            m_last_draw = now;
            draw(info, false);
        }
    }
}

void progress_reporter::finish(const progress_info& info) {
    if (m_callback) m_callback(info);
    if (m_bar) draw(info, true);
}

void progress_reporter::draw(const progress_info& info, bool final) {
    constexpr int width = 30;
    int filled = 0;
    if (info.total > 0) filled = static_cast<int>(width * info.done / info.total);
    char bar[width + 1];
    for (int i = 0; i < width; ++i)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    std::fprintf(stderr, "\r%s [%s] %llu/%llu%s%s", m_label.c_str(), bar,
                 static_cast<unsigned long long>(info.done),
                 static_cast<unsigned long long>(info.total), info.input_exhausted ? "" : "+",
                 final ? "\n" : "");
    std::fflush(stderr);
}

}  // namespace coexec::detail
