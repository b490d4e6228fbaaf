// Progress of map and pipelines: what callbacks receive (known total, rate,
// elapsed, ETA), the line's text, and the bars on a terminal, checked frame by
// frame through a pseudo-terminal with a tiny terminal emulator.
#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "coexec/detail/progress.hpp"
#include "coexec/pipeline.hpp"
#include "coexec/thread_pool.hpp"

using namespace std::chrono_literals;
using coexec::progress_info;

namespace {

// Runs `body` in a child whose stderr (and stdout) is a terminal of
// `columns` columns; returns all it wrote there.
std::string run_on_terminal(const std::function<void()>& body, unsigned short columns = 120) {
    winsize ws{};
    ws.ws_col = columns;
    ws.ws_row = 40;
    int master = -1;
    std::fflush(nullptr);  // else the child would write the test runner's buffered output
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        try {
            body();
        } catch (...) {
            ::_exit(3);
        }
        std::fflush(stderr);
        ::_exit(0);
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;  // EIO: the child closed the terminal
        }
    }
    ::close(master);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return out;
}

// Enough of a terminal for the progress bars: \r, \n, ESC[nA, ESC[K, text.
std::vector<std::string> screen_of(const std::string& bytes) {
    std::vector<std::string> screen(1);
    std::size_t row = 0, col = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const char c = bytes[i];
        if (c == '\r') {
            col = 0;
        } else if (c == '\n') {
            ++row;
            col = 0;  // the terminal turns \n into \r\n (ONLCR)
            if (screen.size() <= row) screen.resize(row + 1);
        } else if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
            std::size_t j = i + 2;
            std::size_t n = 0;
            bool digits = false;
            while (j < bytes.size() && bytes[j] >= '0' && bytes[j] <= '9') {
                n = n * 10 + static_cast<std::size_t>(bytes[j] - '0');
                digits = true;
                ++j;
            }
            REQUIRE(j < bytes.size());
            if (bytes[j] == 'A') {
                const std::size_t up = digits ? n : 1;
                REQUIRE(up <= row);  // never above the block
                row -= up;
            } else if (bytes[j] == 'K') {
                if (screen[row].size() > col) screen[row].resize(col);
            } else {
                FAIL("unexpected escape sequence");
            }
            i = j;
        } else {
            if (screen[row].size() < col) screen[row].resize(col, ' ');
            if (screen[row].size() == col) {
                screen[row] += c;
            } else {
                screen[row][col] = c;
            }
            ++col;
        }
    }
    while (!screen.empty() && screen.back().empty())
        screen.pop_back();
    return screen;
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0;
}

}  // namespace

TEST_CASE("map's progress knows the input's size from the first report and gives rate and ETA",
          "[map][progress]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in(40, 1);
    std::vector<progress_info> seen;
    auto out =
        pool.map(
                [](int x) {
                    std::this_thread::sleep_for(1ms);
                    return x;
                },
                in,
                {.chunksize = 4, .progress = [&](const progress_info& p) { seen.push_back(p); }})
            .to_vector();
    REQUIRE(seen.size() >= 2);
    for (const auto& p : seen) {
        CHECK(p.total == 40);  // the input's size, not the elements launched so far
        CHECK(p.input_exhausted);
    }
    for (std::size_t i = 1; i < seen.size(); ++i)
        CHECK(seen[i].elapsed >= seen[i - 1].elapsed);
    const auto& last = seen.back();
    CHECK(last.done == 40);
    CHECK(last.elapsed > 0ns);
    CHECK(last.rate > 0);
    REQUIRE(last.eta());
    CHECK(*last.eta() == 0ns);
    REQUIRE(seen.front().eta());  // known total, something done: an estimate
}

TEST_CASE("a map over an input of unknown size reports what was taken until it is exhausted",
          "[map][progress]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    auto lazy = std::views::iota(0) | std::views::take_while([](int i) { return i < 30; });
    std::vector<progress_info> seen;
    auto out =
        pool.map([](int x) { return x; }, lazy,
                 {.chunksize = 3, .progress = [&](const progress_info& p) { seen.push_back(p); }})
            .to_vector();
    REQUIRE(!seen.empty());
    CHECK_FALSE(seen.front().input_exhausted);
    CHECK_FALSE(seen.front().eta());
    CHECK(seen.back().input_exhausted);
    CHECK(seen.back().total == 30);
}

TEST_CASE("a pipeline stage's progress total is the items that reach it", "[pipeline][progress]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in(30);
    for (int i = 0; i < 30; ++i)
        in[i] = i;
    std::vector<progress_info> first, second;
    auto result = coexec::pipeline(in, {.errors = coexec::error_policy::collect})
                      .then(pool,
                            [](int x) {
                                if (x % 10 == 0) throw std::runtime_error("drop");
                                return x;
                            },
                            {.progress = [&](const progress_info& p) { first.push_back(p); }})
                      .then(pool, [](int x) { return x; },
                            {.progress = [&](const progress_info& p) { second.push_back(p); }})
                      .collect();
    CHECK(result.values.size() == 27);
    REQUIRE(!first.empty());
    REQUIRE(!second.empty());
    CHECK(first.front().total == 30);
    CHECK(first.front().input_exhausted);
    CHECK(second.back().total == 27);  // three items failed upstream
    CHECK(second.back().done == 27);
}

TEST_CASE("a progress line reads like tqdm's and never wraps", "[progress]") {
    progress_info p{45, 100, true, 2s, 22.5};
    auto line = coexec::detail::format_progress_line("map", p, 120);
    CHECK(line == "map: 45%|#########           | 45/100 [00:02<00:02, 22.50 it/s]");
    progress_info open{45, 60, false, 2s, 22.5};
    CHECK(coexec::detail::format_progress_line("s", open, 120) == "s: 45 [00:02, 22.50 it/s]");
    CHECK(coexec::detail::format_progress_line("map", p, 20).size() == 19);
}

TEST_CASE("a progress bar on a terminal redraws one line in place and ends it", "[map][progress]") {
    const std::string bytes = run_on_terminal([] {
        coexec::thread_pool pool{{.max_workers = 2}};
        std::vector<int> in(50, 1);
        (void)pool.map([](int x) { return x; }, in, {.chunksize = 5, .progress = true}).to_vector();
    });
    auto screen = screen_of(bytes);
    INFO(bytes);
    REQUIRE(screen.size() == 1);
    CHECK(starts_with(screen[0], "map: 100%|####################| 50/50 ["));
    CHECK_THAT(screen[0], Catch::Contains("it/s]"));
}

TEST_CASE("pipeline stages each keep their own line on a terminal", "[pipeline][progress]") {
    const std::string bytes = run_on_terminal([] {
        coexec::thread_pool pool{{.max_workers = 2}};
        std::vector<int> in(200);
        auto result = coexec::pipeline(in)
                          .then(pool,
                                [](int x) {
                                    std::this_thread::sleep_for(200us);
                                    return x + 1;
                                },
                                {.concurrency = 2, .progress = true, .name = "fetch"})
                          .then(pool, [](int x) { return x * 2; },
                                {.concurrency = 2, .progress = true, .name = "parse"})
                          .collect();
        if (result.values.size() != 200) throw std::logic_error("lost items");
        std::vector<int> more(10, 1);
        (void)pool.map([](int x) { return x; }, more, {.progress = true}).to_vector();
    });
    auto screen = screen_of(bytes);
    INFO(bytes);
    REQUIRE(screen.size() == 3);  // two stage lines, then the map's below them
    CHECK(starts_with(screen[0], "fetch: 100%|####################| 200/200 ["));
    CHECK(starts_with(screen[1], "parse: 100%|####################| 200/200 ["));
    CHECK(starts_with(screen[2], "map: 100%|####################| 10/10 ["));
}

TEST_CASE("progress = true draws nothing when stderr is not a terminal", "[map][progress]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(fds[1], STDERR_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        {
            coexec::thread_pool pool{{.max_workers = 1}};
            std::vector<int> in(20, 1);
            (void)pool.map([](int x) { return x; }, in, {.progress = true}).to_vector();
        }
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string out;
    char buf[256];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(out.empty());
}
