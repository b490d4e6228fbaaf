// detail/progress.hpp — reporting map / pipeline progress.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>

#include "coexec/executor.hpp"

namespace coexec::detail {

struct progress_line;  // lib/core/progress.cpp: one line of the terminal's progress board

/// Turns map_options::progress into calls: a user callback, or a bar drawn
/// on stderr, only when stderr is a terminal (redrawn at most every 100 ms).
/// Bars alive at the same time (the stages of a pipeline, maps on several
/// threads) each get their own line, redrawn in place together; the block is
/// left on screen once all of them have finished. Fills in `elapsed` and
/// `rate` (from its construction) before reporting. Not thread-safe itself
/// (one per map or stage); the bars share a lock.
class progress_reporter {
  public:
    progress_reporter() = default;
    progress_reporter(const std::variant<bool, std::function<void(const progress_info&)>>& setting,
                      std::string label);
    ~progress_reporter();
    progress_reporter(const progress_reporter&) = delete;
    progress_reporter& operator=(const progress_reporter&) = delete;

    void update(progress_info info);
    void finish(progress_info info);
    explicit operator bool() const noexcept { return m_line || static_cast<bool>(m_callback); }

  private:
    void stamp(progress_info& info) const;

    std::function<void(const progress_info&)> m_callback;
    std::string m_label;
    std::shared_ptr<progress_line> m_line;  // null: no bar
    std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point m_last_draw{};
    bool m_finished = false;
};

/// The text of one progress line, tqdm's layout:
///   `label: 45%|#########           | 45/100 [00:01<00:01, 38.21 it/s]`
///   `label: 45 [00:01, 38.21 it/s]`  (total not known yet)
/// Cut to `columns - 1` characters so it never wraps.
std::string format_progress_line(const std::string& label, const progress_info& info,
                                 std::size_t columns);

}  // namespace coexec::detail
