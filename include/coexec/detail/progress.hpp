// detail/progress.hpp — reporting map / pipeline progress.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <variant>

#include "coexec/executor.hpp"

namespace coexec::detail {

/// Turns map_options::progress into calls: a user callback, or a bar drawn
/// on stderr (only when stderr is a terminal; redrawn at most every 100 ms).
class progress_reporter {
  public:
    progress_reporter() = default;
    progress_reporter(const std::variant<bool, std::function<void(const progress_info&)>>& setting,
                      std::string label);
    void update(const progress_info& info);
    void finish(const progress_info& info);
    explicit operator bool() const noexcept { return m_bar || static_cast<bool>(m_callback); }

  private:
    void draw(const progress_info& info, bool final);

    std::function<void(const progress_info&)> m_callback;
    std::string m_label;
    bool m_bar = false;
    std::chrono::steady_clock::time_point m_last_draw{};
};

}  // namespace coexec::detail
