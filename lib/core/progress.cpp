#include "coexec/detail/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <vector>

namespace coexec::detail {

struct progress_line {
    std::string text;
    bool finished = false;
};

namespace {

// The block of progress lines on the terminal. Every bar alive has a line, in
// the order the bars were made; a redraw moves the cursor up to the block's
// first line and rewrites each line in place (clearing what was left of a
// longer old text), so stages of a pipeline never share a line. When every
// line is finished the block is left on screen and the next bar starts a new
// one below it.
class progress_board {
  public:
    static progress_board& instance() {
        static auto* b = new progress_board();  // never destroyed: reporters may outlive statics
        return *b;
    }

    std::shared_ptr<progress_line> add() {
        std::lock_guard lock(m_mutex);
        auto line = std::make_shared<progress_line>();
        m_lines.push_back(line);
        return line;
    }

    void draw(progress_line& line, std::string text, bool finished) {
        std::lock_guard lock(m_mutex);
        line.text = std::move(text);
        line.finished = finished;
        redraw();
    }

    /// A bar that goes away without having finished (its map was dropped).
    void retire(progress_line& line) {
        std::lock_guard lock(m_mutex);
        line.finished = true;
        if (all_finished()) {
            if (m_drawn > 0) redraw();  // ends the block
            m_lines.clear();
            m_drawn = 0;
        }
    }

  private:
    bool all_finished() const {
        return std::all_of(m_lines.begin(), m_lines.end(),
                           [](const auto& l) { return l->finished; });
    }

    void redraw() {
        std::string out;
        if (m_drawn > 1) out += "\x1b[" + std::to_string(m_drawn - 1) + "A";  // to the first line
        out += '\r';
        for (std::size_t i = 0; i < m_lines.size(); ++i) {
            if (i > 0) out += '\n';
            out += m_lines[i]->text;
            out += "\x1b[K";  // clear the rest of the old line
        }
        m_drawn = m_lines.size();
        if (all_finished()) {
            out += '\n';
            m_lines.clear();
            m_drawn = 0;
        }
        std::fwrite(out.data(), 1, out.size(), stderr);
        std::fflush(stderr);
    }

    std::mutex m_mutex;
    std::vector<std::shared_ptr<progress_line>> m_lines;
    std::size_t m_drawn = 0;  // lines of the block on screen; the cursor is on the last
};

std::size_t terminal_columns() {
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

std::string clock_text(std::chrono::nanoseconds d) {
    const long long s =
        std::max<long long>(0, std::chrono::duration_cast<std::chrono::seconds>(d).count());
    char buf[32];
    if (s >= 3600) {
        std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
    }
    return buf;
}

std::string rate_text(double rate) {
    char buf[32];
    if (rate <= 0) return "? it/s";
    if (rate < 1) {
        std::snprintf(buf, sizeof buf, "%.2f s/it", 1 / rate);
    } else {
        std::snprintf(buf, sizeof buf, "%.2f it/s", rate);
    }
    return buf;
}

}  // namespace

std::string format_progress_line(const std::string& label, const progress_info& info,
                                 std::size_t columns) {
    constexpr std::size_t bar_width = 20;
    std::string line = label + ": ";
    const auto done = static_cast<unsigned long long>(info.done);
    const auto total = static_cast<unsigned long long>(info.total);
    if (info.input_exhausted) {
        const unsigned long long pct = total > 0 ? std::min(100ULL, done * 100 / total) : 100;
        const std::size_t filled =
            total > 0 ? static_cast<std::size_t>(std::min(done, total) * bar_width / total)
                      : bar_width;
        auto eta = info.eta();
        line += std::to_string(pct) + "%|" + std::string(filled, '#') +
                std::string(bar_width - filled, ' ') + "| " + std::to_string(done) + "/" +
                std::to_string(total) + " [" + clock_text(info.elapsed) + "<" +
                (eta ? clock_text(*eta) : std::string("?")) + ", " + rate_text(info.rate) + "]";
    } else {
        line += std::to_string(done) + " [" + clock_text(info.elapsed) + ", " +
                rate_text(info.rate) + "]";
    }
    if (columns > 1 && line.size() > columns - 1) line.resize(columns - 1);
    return line;
}

progress_reporter::progress_reporter(
    const std::variant<bool, std::function<void(const progress_info&)>>& setting, std::string label)
    : m_label(std::move(label)) {
    if (const auto* cb = std::get_if<1>(&setting)) {
        m_callback = *cb;
    } else if (std::get<0>(setting) && ::isatty(STDERR_FILENO) == 1) {
        m_line = progress_board::instance().add();
    }
}

progress_reporter::~progress_reporter() {
    if (m_line && !m_finished) progress_board::instance().retire(*m_line);
}

void progress_reporter::stamp(progress_info& info) const {
    info.elapsed = std::chrono::steady_clock::now() - m_start;
    const double seconds = std::chrono::duration<double>(info.elapsed).count();
    info.rate = seconds > 0 ? static_cast<double>(info.done) / seconds : 0;
}

void progress_reporter::update(progress_info info) {
    if (m_finished) return;
    stamp(info);
    if (m_callback) m_callback(info);
    if (m_line) {
        auto now = std::chrono::steady_clock::now();
        if (now - m_last_draw >= std::chrono::milliseconds(100)) {
            m_last_draw = now;
            progress_board::instance().draw(
                *m_line, format_progress_line(m_label, info, terminal_columns()), false);
        }
    }
}

void progress_reporter::finish(progress_info info) {
    if (m_finished) return;
    m_finished = true;
    stamp(info);
    if (m_callback) m_callback(info);
    if (m_line) {
        progress_board::instance().draw(
            *m_line, format_progress_line(m_label, info, terminal_columns()), true);
    }
}

}  // namespace coexec::detail
