// tests/support/process_tree.hpp — what the tests read about processes from
// /proc: a process's state, its children, a pool's workers, descriptor counts
// and resident memory; and a thread that SIGKILLs a pool's workers at random.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace coexec_test {

/// A process's state letter ('R', 'S', 'Z', ...), parent and process group,
/// from /proc/<pid>/stat.
struct process_status {
    char state = 0;
    int ppid = 0;
    int pgrp = 0;
};

/// The status of `pid`, or nullopt if there is no such process (any more).
inline std::optional<process_status> status_of(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return std::nullopt;
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) return std::nullopt;
    std::istringstream rest(line.substr(close + 2));
    process_status s;
    if (!(rest >> s.state >> s.ppid >> s.pgrp)) return std::nullopt;
    return s;
}

/// True if `pid` exists and is not a zombie (a zombie runs no code).
inline bool pid_alive(int pid) {
    const auto s = status_of(pid);
    return s && s->state != 'Z';
}

/// Pids of the live (non-zombie) processes whose parent is `parent`.
inline std::vector<int> children_of(int parent) {
    std::vector<int> out;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
         it.increment(ec)) {
        const int pid = std::atoi(it->path().filename().c_str());
        if (pid <= 0) continue;
        const auto s = status_of(pid);
        if (s && s->ppid == parent && s->state != 'Z') out.push_back(pid);
    }
    return out;
}

/// True if `pid` leads its own process group: every started worker does
/// (setpgid, so deadline kills reach its children); the fork server does not.
inline bool leads_own_group(int pid) {
    const auto s = status_of(pid);
    return s && s->pgrp == pid;
}

/// The process workers of a pool owned by `root`: the children of its fork
/// server, or workers it forked itself. A worker is told from the fork server
/// (which may be childless while its workers are being replaced) by leading
/// its own process group; one too young to have called setpgid is left out.
inline std::vector<int> worker_pids(int root) {
    std::vector<int> out;
    for (int c : children_of(root)) {
        if (leads_own_group(c)) {
            out.push_back(c);
            continue;
        }
        for (int g : children_of(c))
            if (leads_own_group(g)) out.push_back(g);
    }
    return out;
}

/// How many descriptors `pid` has open (the listing's own descriptor included).
inline std::size_t fd_count(int pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        ++n;
    return n;
}

/// False under AddressSanitizer, whose quarantine keeps freed memory resident
/// (and shadow memory grows with every allocation): RSS bounds mean nothing there.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool rss_is_meaningful = false;
#else
inline constexpr bool rss_is_meaningful = true;
#endif

/// Resident set size in KiB of `pid` ("self" by default), or -1 if it is gone.
inline long rss_kib(const std::string& pid = "self") {
    std::ifstream in("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}
inline long rss_kib(int pid) {
    return rss_kib(std::to_string(pid));
}

/// SIGKILLs a random process worker of `root` (see worker_pids) every `period`
/// until stop(); only workers seen at least `min_age` ago, so that a fresh
/// worker gets past its start-up (slow under the sanitizers): a pool whose
/// workers keep dying before they are ready rightly breaks.
class worker_killer {
  public:
    worker_killer(int root, std::chrono::milliseconds period, unsigned seed,
                  std::chrono::milliseconds min_age = std::chrono::milliseconds(300))
        : m_thread([this, root, period, seed, min_age] {
              std::mt19937 rng(seed);
              std::map<int, std::chrono::steady_clock::time_point> first_seen;
              while (!m_stop.load()) {
                  std::this_thread::sleep_for(period);
                  const auto t = std::chrono::steady_clock::now();
                  std::map<int, std::chrono::steady_clock::time_point> seen;
                  std::vector<int> old;
                  for (int p : worker_pids(root)) {
                      auto it = first_seen.find(p);
                      const auto since = it != first_seen.end() ? it->second : t;
                      seen.emplace(p, since);
                      if (t - since >= min_age) old.push_back(p);
                  }
                  first_seen = std::move(seen);
                  if (old.empty()) continue;
                  if (::kill(old[rng() % old.size()], SIGKILL) == 0) m_kills.fetch_add(1);
              }
          }) {}
    ~worker_killer() { stop(); }
    worker_killer(const worker_killer&) = delete;
    worker_killer& operator=(const worker_killer&) = delete;

    /// The number of workers killed so far.
    int kills() const { return m_kills.load(); }

    /// Stops the thread; the number of workers it killed.
    int stop() {
        m_stop.store(true);
        if (m_thread.joinable()) m_thread.join();
        return m_kills.load();
    }

  private:
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_kills{0};
    std::thread m_thread;  // last: starts once the counters exist
};

}  // namespace coexec_test
