// tests/integration/server_harness.hpp — what the test_server_* programs
// share: the samples/server binary run as a child process, a blocking HTTP/1.1
// client and a temporary served directory.
//
// Each test starts the server on 127.0.0.1 with --port 0, reads the port it
// prints, and talks HTTP/1.1 to it with the client below (every read has a
// timeout, so a hung server fails the test instead of hanging it).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "temp_dir.hpp"

#ifndef COEXEC_SERVER_BIN
#error "COEXEC_SERVER_BIN must name the server binary (set by tests/CMakeLists.txt)"
#endif

extern char** environ;

namespace coexec_test {

/// The number that follows `label` in `text` (after optional spaces), or nullopt.
inline std::optional<double> number_after(const std::string& text, const std::string& label) {
    auto at = text.find(label);
    if (at == std::string::npos) return std::nullopt;
    const char* start = text.c_str() + at + label.size();
    char* end = nullptr;
    const double v = std::strtod(start, &end);
    if (end == start) return std::nullopt;
    return v;
}

/// The server binary running as a child; killed (SIGKILL) if a test ends without stop().
class server_process {
  public:
    explicit server_process(const std::vector<std::string>& args) {
        int out[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        std::vector<std::string> all{COEXEC_SERVER_BIN, "--port", "0"};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc =
            ::posix_spawn(&m_pid, COEXEC_SERVER_BIN, &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        REQUIRE(rc == 0);

        // The first stdout line names the port.
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (line.find('\n') == std::string::npos &&
               std::chrono::steady_clock::now() < deadline) {
            pollfd p{out[0], POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[256];
            ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        ::close(out[0]);
        auto port = number_after(line, "listening on 127.0.0.1:");
        if (!port) FAIL("the server did not print its port; stdout: " << line);
        m_port = static_cast<int>(*port);
    }
    ~server_process() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
        }
    }
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    int port() const { return m_port; }
    int pid() const { return m_pid; }
    bool alive() const { return m_pid > 0 && ::waitpid(m_pid, nullptr, WNOHANG) == 0; }

    /// SIGTERM, then waits; the exit code, or -1 (killed after `timeout`) or
    /// -2 (ended by a signal).
    int stop(std::chrono::seconds timeout = std::chrono::seconds(20)) {
        ::kill(m_pid, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        int status = 0;
        while (::waitpid(m_pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(m_pid, SIGKILL);
                ::waitpid(m_pid, nullptr, 0);
                m_pid = -1;
                return -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        m_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    }

  private:
    pid_t m_pid = -1;
    int m_port = 0;
};

// ------------------------------------------------------------------- client

struct reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

/// A blocking HTTP/1.1 client on one connection; every read and write has a timeout.
class client {
  public:
    explicit client(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
        ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(m_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        m_connected = ::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~client() { ::close(m_fd); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    bool connected() const { return m_connected; }
    bool timed_out() const { return m_timed_out; }

    bool send(std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) m_timed_out = true;
                return false;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// The next response; nullopt on timeout (timed_out()), EOF or error.
    /// `with_body = false` for the answer to HEAD (Content-Length, no body).
    std::optional<reply> read_reply(bool with_body = true) {
        std::size_t end;
        while ((end = m_buf.find("\r\n\r\n")) == std::string::npos) {
            if (!fill()) return std::nullopt;
        }
        reply r;
        std::istringstream head(m_buf.substr(0, end + 2));
        std::string line;
        std::getline(head, line);
        if (line.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
        r.status = std::atoi(line.c_str() + 9);
        while (std::getline(head, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            auto colon = line.find(':');
            if (colon == std::string::npos) continue;
            std::string name = line.substr(0, colon);
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        m_buf.erase(0, end + 4);
        if (!with_body) return r;
        const auto length = static_cast<std::size_t>(std::stoul(r.header("content-length")));
        while (m_buf.size() < length) {
            if (!fill()) return std::nullopt;
        }
        r.body = m_buf.substr(0, length);
        m_buf.erase(0, length);
        return r;
    }

    std::optional<reply> get(const std::string& target, const std::string& extra_headers = "") {
        if (!send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n")) {
            return std::nullopt;
        }
        return read_reply();
    }

    /// HEAD `target`: the response's head only.
    std::optional<reply> head(const std::string& target) {
        if (!send("HEAD " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) return std::nullopt;
        return read_reply(false);
    }

    /// True if the server closes the connection (EOF or reset) within the timeout.
    bool closed_by_server() {
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n == 0) return true;
            if (n < 0) return errno == ECONNRESET;
        }
    }

  private:
    bool fill() {
        char buf[16384];
        for (;;) {
            ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) m_timed_out = true;
            if (n <= 0) return false;
            m_buf.append(buf, static_cast<std::size_t>(n));
            return true;
        }
    }

    int m_fd = -1;
    bool m_connected = false;
    bool m_timed_out = false;
    std::string m_buf;
};

/// One request on a fresh connection; `timeout` bounds each read and write.
inline std::optional<reply> get_once(int port, const std::string& target,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    client c(port, timeout);
    return c.get(target);
}

/// A request written raw on a fresh connection, and the server's answer.
inline std::optional<reply> send_raw(int port, const std::string& bytes) {
    client c(port);
    c.send(bytes);
    return c.read_reply();
}

/// Runs the server binary with `args` to completion (for --help and bad
/// flags): its exit code and what it printed on stdout and stderr.
inline std::pair<int, std::string> run_server_to_exit(const std::string& args) {
    std::string out;
    FILE* p = ::popen((std::string(COEXEC_SERVER_BIN) + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p))
        out.append(buf, n);
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// ---------------------------------------------------------- served directory

/// A temporary tree: base/root is served; base/secret.txt must never be.
struct served_dir {
    coexec_test::temp_dir dir{"coexec-server"};  // removed with the tree
    std::filesystem::path base{dir.path()}, root{base / "root"};
    served_dir() {
        std::filesystem::create_directories(root / "sub");
        std::ofstream(root / "hello.txt") << "the quick brown fox jumps\n";
        std::ofstream(root / "sub" / "nested.txt") << "one two\tthree\n";
        std::ofstream(base / "secret.txt") << "top secret words here\n";
        std::filesystem::create_symlink(base / "secret.txt", root / "escape");
        std::filesystem::create_directory_symlink(base, root / "linkdir");
        std::filesystem::create_symlink("hello.txt", root / "inside_link");
    }
};

inline std::int64_t primes_below(std::int64_t n) {
    std::int64_t count = 0;
    for (std::int64_t i = 2; i < n; ++i) {
        bool prime = true;
        for (std::int64_t d = 2; d * d <= i; ++d) {
            if (i % d == 0) {
                prime = false;
                break;
            }
        }
        count += prime ? 1 : 0;
    }
    return count;
}

inline bool contains(const std::string& s, const std::string& what) {
    return s.find(what) != std::string::npos;
}

// Extracts the integer after "\"name\":" in a JSON text (first occurrence after `from`).
inline long long json_int(const std::string& json, const std::string& name,
                          const std::string& from = "") {
    std::size_t start = from.empty() ? 0 : json.find("\"" + from + "\"");
    auto at = json.find("\"" + name + "\":", start == std::string::npos ? 0 : start);
    if (at == std::string::npos) return -1;
    return std::atoll(json.c_str() + at + name.size() + 3);
}

}  // namespace coexec_test
