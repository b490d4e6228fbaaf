// Adversarial tests, starting workers: a task that kills or stops the fork
// server (its worker's parent), and what every start path guarantees a
// worker: none of the program's signal handling, only its channel's
// descriptors, death with the program.
#include <dirent.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "adversary.hpp"
#include "helpers.hpp"
#include "process_tree.hpp"

using namespace adversary;

namespace {

int parent_pid() {
    return static_cast<int>(::getppid());
}

// Kills its worker's parent, the fork server (the worker dies with it).
int kill_fork_server() {
    ::kill(::getppid(), SIGKILL);
    wait_to_be_killed();
}

// Stops the fork server and returns: the next worker start finds it mute.
int stop_fork_server() {
    ::kill(::getppid(), SIGSTOP);
    return 1;
}

int crash() {
    std::abort();
}

// What a worker has that it should not: signal handlers or ignored signals of
// the program's, blocked signals, descriptors beyond stdio and its channel.
std::string worker_hygiene() {
    std::string bad;
    for (int sig :
         {SIGUSR1, SIGUSR2, SIGHUP, SIGTERM, SIGCHLD, SIGPIPE, SIGALRM, SIGQUIT, SIGRTMIN + 3}) {
        struct sigaction sa {};
        ::sigaction(sig, nullptr, &sa);
        if (sa.sa_handler != SIG_DFL) bad += "signal " + std::to_string(sig) + " not default; ";
    }
    struct sigaction sa {};
    ::sigaction(SIGINT, nullptr, &sa);
    if (sa.sa_handler != SIG_IGN) bad += "SIGINT not ignored; ";
    sigset_t mask;
    ::sigprocmask(SIG_SETMASK, nullptr, &mask);
    for (int sig = 1; sig < SIGRTMIN; ++sig) {
        if (sigismember(&mask, sig) == 1) bad += "signal " + std::to_string(sig) + " blocked; ";
    }
    DIR* d = ::opendir("/proc/self/fd");
    while (dirent* e = ::readdir(d)) {
        const int fd = std::atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 5 && fd != ::dirfd(d))
            bad += "fd " + std::to_string(fd) + "; ";
    }
    ::closedir(d);
    return bad;
}

void on_signal(int) {}

// Under TSan the program is never single-threaded again once it has made a
// thread (TSan's own background thread stays), so no fork server can be
// started after the first pool; the pools spawn instead.
#if defined(__SANITIZE_THREAD__)
constexpr bool under_tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool under_tsan = true;
#else
constexpr bool under_tsan = false;
#endif
#else
constexpr bool under_tsan = false;
#endif

// A fork server, new if the last one died: false only where none can start.
bool fresh_fork_server() {
    if (coexec::process_pool::prepare()) return true;
    REQUIRE(under_tsan);
    return false;
}

bool no_fork_server_zombie(int pid) {
    const auto st = coexec_test::status_of(pid);
    return !st || st->state != 'Z';
}

}  // namespace

TEST_CASE("a thread just joined does not count as a second thread of the program",
          "[process][launch]") {
    // A joiner is woken from inside the thread's exit, before the kernel
    // drops it from /proc/self/task: for a moment it is still listed. Counted,
    // a fork server would not start right after a pool's threads were joined.
    if (under_tsan) return;  // TSan's own thread stays: never single-threaded
    REQUIRE(coexec::detail::proc::single_threaded());
    int counted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::thread t([] {});
        t.join();
        if (!coexec::detail::proc::single_threaded()) ++counted;
    }
    CHECK(counted == 0);
    std::atomic<bool> stop{false};
    std::thread live([&] {
        while (!stop.load())
            std::this_thread::sleep_for(1ms);
    });
    CHECK_FALSE(coexec::detail::proc::single_threaded());
    stop = true;
    live.join();
}

TEST_CASE("killing the fork server fails its running task, and pools old and new go on",
          "[process_pool][adversarial][fork_server]") {
    for (bool busy : {false, true}) {
        if (!fresh_fork_server()) return;  // single-threaded here: a (new) fork server
        coexec::process_pool pool{{.max_workers = 2}};
        const int server = pool.submit(parent_pid).get_for(30s);
        std::optional<coexec::future<int>> other;
        if (busy) other = pool.submit(sleep_then, 400, 77);
        auto bad = pool.submit(kill_fork_server);
        const ending e = end_of(bad);
        REQUIRE(e.worker_died);
        // The fork server's workers die with it, so the other task may fail
        // too; it must end.
        if (other) REQUIRE(other->wait_for(30s));
        // Noticed and reaped: no zombie.
        REQUIRE(coexec_test::eventually([&] { return no_fork_server_zombie(server); }, 30s));
        // This pool replaces its workers (by spawn), and a new pool, made
        // while this one's thread runs, starts without throwing.
        for (int i = 0; i < 4; ++i)
            REQUIRE(pool.submit(square, i).get_for(30s) == i * i);
        coexec::process_pool second{{.max_workers = 1}};
        REQUIRE(second.submit(square, 5).get_for(30s) == 25);
    }
    // Single-threaded again: a new fork server serves a new pool.
    if (!fresh_fork_server()) return;
    coexec::process_pool third{{.max_workers = 1}};
    const int server = third.submit(parent_pid).get_for(30s);
    REQUIRE(coexec_test::pid_alive(server));
    REQUIRE(server != static_cast<int>(::getpid()));
}

namespace {

// As kill_fork_server, unless this worker's parent is the test itself (a
// spawned worker): then it returns -1 and kills nothing.
int kill_fork_server_unless_parent(int test_pid) {
    if (static_cast<int>(::getppid()) == test_pid) return -1;
    return kill_fork_server();
}

}  // namespace

TEST_CASE("a fork server killed while a new pool's later workers start: every task ends",
          "[process_pool][adversarial][fork_server]") {
    // The constructor waits for the first worker; a helper thread then asks
    // the fork server for the others, one at a time. The first task kills
    // the fork server meanwhile: a start is refused (the pool spawns that
    // worker and the rest itself), or workers already forked die with it
    // (the pool replaces them). Either way every task ends and the pool
    // goes on at its full size.
    for (int round = 0; round < 6; ++round) {
        if (!fresh_fork_server()) return;
        coexec::process_pool pool{{.max_workers = 6}};
        auto bad = pool.submit(kill_fork_server_unless_parent, static_cast<int>(::getpid()));
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 24; ++i)
            fs.push_back(pool.submit(square, i));
        REQUIRE(end_of(bad).worker_died);
        for (int i = 0; i < 24; ++i) {
            // Queued behind the kill, a task may have run on a worker that
            // died with the fork server: it ends, with its value or that death.
            REQUIRE(fs[static_cast<std::size_t>(i)].wait_for(60s));
        }
        for (int i = 0; i < 12; ++i)
            REQUIRE(pool.submit(square, i).get_for(60s) == i * i);
    }
}

TEST_CASE("a stopped fork server is given up after a bound and the pool spawns instead",
          "[process_pool][adversarial][fork_server]") {
    REQUIRE(coexec::process_pool::prepare());
    coexec::process_pool pool{{.max_workers = 2}};
    const int server = pool.submit(parent_pid).get_for(30s);
    REQUIRE(pool.submit(stop_fork_server).get_for(30s) == 1);
    // The crash needs a new worker, which the stopped fork server cannot fork.
    auto f = pool.submit(crash);
    REQUIRE(end_of(f).worker_died);
    for (int i = 0; i < 4; ++i)
        REQUIRE(pool.submit(square, i).get_for(60s) == i * i);
    REQUIRE(coexec_test::eventually([&] { return no_fork_server_zombie(server); }, 30s));
}

TEST_CASE("workers on every start path have default signals, an empty mask and only their channel",
          "[process_pool][adversarial][hygiene]") {
    struct sigaction handler {};
    handler.sa_handler = on_signal;
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    for (int sig : {SIGUSR1, SIGHUP, SIGTERM, SIGCHLD, SIGRTMIN + 3})
        ::sigaction(sig, &handler, nullptr);
    for (int sig : {SIGUSR2, SIGPIPE, SIGALRM, SIGQUIT})
        ::sigaction(sig, &ignore, nullptr);
    sigset_t blocked, old;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGUSR2);
    ::pthread_sigmask(SIG_BLOCK, &blocked, &old);
    int leak[2];
    REQUIRE(::pipe(leak) == 0);  // not close-on-exec: must still not reach workers
    for (auto method : {coexec::start_method::fork_server, coexec::start_method::fork,
                        coexec::start_method::spawn}) {
        coexec::process_pool pool{{.max_workers = 1, .start = method}};
        INFO("start method " << static_cast<int>(method));
        REQUIRE(pool.submit(worker_hygiene).get_for(30s) == "");
    }
    ::close(leak[0]);
    ::close(leak[1]);
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig :
         {SIGUSR1, SIGHUP, SIGTERM, SIGCHLD, SIGRTMIN + 3, SIGUSR2, SIGPIPE, SIGALRM, SIGQUIT})
        ::sigaction(sig, &dfl, nullptr);
}

TEST_CASE("without close_range, a new worker's descriptors are closed by listing /proc/self/fd",
          "[process_pool][adversarial][hygiene]") {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        for (int fd = 20; fd < 40; ++fd)
            ::dup2(1, fd);
        proc::close_descriptors_from(10, false);
        DIR* d = ::opendir("/proc/self/fd");
        int left = 0;
        while (dirent* e = ::readdir(d)) {
            const int fd = std::atoi(e->d_name);
            if (e->d_name[0] != '.' && fd >= 10 && fd != ::dirfd(d)) ++left;
        }
        ::_exit(left == 0 && ::fcntl(2, F_GETFD) >= 0 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("workers started by fork or spawn do not outlive a parent killed with SIGKILL",
          "[process_pool][adversarial][orphans]") {
    for (const char* method : {"fork", "spawn"}) {
        INFO("start method " << method);
        int out[2];
        REQUIRE(::pipe(out) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::dup2(out[1], 1);
            ::close(out[0]);
            ::close(out[1]);
            ::execl(COEXEC_ORPHAN_HELPER, COEXEC_ORPHAN_HELPER, method,
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        FILE* in = ::fdopen(out[0], "r");
        std::vector<int> pids;
        char line[64];
        bool ready = false;
        while (std::fgets(line, sizeof line, in) != nullptr) {
            if (std::string(line) == "ready\n") {
                ready = true;
                break;
            }
            pids.push_back(std::atoi(line));
        }
        REQUIRE(ready);
        REQUIRE(pids.size() == 3);
        REQUIRE(::kill(child, SIGKILL) == 0);
        ::waitpid(child, nullptr, 0);
        std::fclose(in);
        for (int pid : pids)
            REQUIRE(coexec_test::eventually([pid] { return !coexec_test::pid_alive(pid); }, 10s));
    }
}

// ---------------------------------------------------------------------------
// Spare workers: the fork server keeps workers forked ahead (spare_workers.hpp).
// A spare is a child of the fork server that does not lead its own process
// group yet (a worker calls setpgid once it has its channel).
// ---------------------------------------------------------------------------

namespace {

std::vector<int> spares_of(int fork_server) {
    std::vector<int> out;
    for (int c : coexec_test::children_of(fork_server))
        if (!coexec_test::leads_own_group(c)) out.push_back(c);
    return out;
}

// Sends `sig` to every spare of this worker's fork server; returns their pids
// (a spare's pid fits an int), comma-separated.
std::string signal_spares(int sig) {
    std::string pids;
    for (int pid : spares_of(static_cast<int>(::getppid()))) {
        if (pid == static_cast<int>(::getpid())) continue;
        ::kill(pid, sig);
        pids += std::to_string(pid) + ",";
    }
    return pids;
}

int own_pid() {
    return static_cast<int>(::getpid());
}

std::vector<int> parse_pids(const std::string& s) {
    std::vector<int> out;
    for (std::size_t at = 0; at < s.size();) {
        const std::size_t comma = s.find(',', at);
        out.push_back(std::atoi(s.substr(at, comma - at).c_str()));
        at = comma + 1;
    }
    return out;
}

}  // namespace

TEST_CASE("a spare worker holds only stdio and its socket and dies with the fork server",
          "[process_pool][adversarial][spares]") {
    if (!fresh_fork_server()) return;
    coexec::process_pool pool{{.max_workers = 1}};
    const int server = pool.submit(parent_pid).get_for(30s);
    std::vector<int> spares;
    REQUIRE(coexec_test::eventually([&] { return !(spares = spares_of(server)).empty(); }, 10s));
    for (int pid : spares) {
        INFO("spare " << pid);
        // 0, 1, 2 and its socket: not the control socket, no pool's report
        // socket. (Once it waits: one just forked has not closed them yet.)
        CHECK(coexec_test::eventually(
            [pid] {
                const auto st = coexec_test::status_of(pid);
                return st && st->state == 'S' && coexec_test::fd_count(pid) <= 4;
            },
            10s));
        char target[64] = {};
        const std::string link = "/proc/" + std::to_string(pid) + "/fd/3";
        REQUIRE(::readlink(link.c_str(), target, sizeof target - 1) > 0);
        CHECK(std::string(target).rfind("socket:", 0) == 0);
    }
    REQUIRE(::kill(server, SIGKILL) == 0);
    for (int pid : spares)
        REQUIRE(coexec_test::eventually([pid] { return !coexec_test::pid_alive(pid); }, 10s));
    // The pool goes on without that fork server.
    REQUIRE(pool.submit(square, 6).get_for(60s) == 36);
}

TEST_CASE("spares stopped or killed by a task do not keep a new pool from starting",
          "[process_pool][adversarial][spares]") {
    for (int sig : {SIGSTOP, SIGKILL}) {
        INFO("signal " << sig);
        if (!fresh_fork_server()) return;
        coexec::process_pool pool{{.max_workers = 1}};
        const int server = pool.submit(parent_pid).get_for(30s);
        // Both spares (the default), so that the new pool cannot be served
        // by one the task did not reach.
        REQUIRE(coexec_test::eventually([&] { return spares_of(server).size() >= 2; }, 10s));
        const std::vector<int> hit = parse_pids(pool.submit(signal_spares, sig).get_for(30s));
        REQUIRE_FALSE(hit.empty());
        // Until a signalled spare runs, it has not stopped: one given a
        // channel before would stop as a worker, which is another case (a
        // stopped worker; a task may stop any sibling). So: once all have.
        REQUIRE(coexec_test::eventually(
            [&] {
                return std::all_of(hit.begin(), hit.end(), [](int pid) {
                    const auto st = coexec_test::status_of(pid);
                    return !st || st->state == 'T' || st->state == 'Z';
                });
            },
            10s));
        // A stopped spare would take a new worker's channel and never run:
        // the fork server kills it when it sees it stop, or passes it over
        // (and kills it) when handing out, and forks instead.
        // (A deadline, so that a failure here cannot hang the destructor.)
        coexec::process_pool second{{.max_workers = 2, .task_timeout = 20s}};
        for (int i = 0; i < 8; ++i)
            REQUIRE(second.submit(square, i).get_for(30s) == i * i);
        const int worker = second.submit(own_pid).get_for(30s);
        CHECK(std::find(hit.begin(), hit.end(), worker) == hit.end());
        // The spares hit are gone, reaped by the fork server (no zombie).
        for (int pid : hit)
            REQUIRE(coexec_test::eventually([pid] { return !coexec_test::status_of(pid); }, 10s));
        // And the fork server forks new ones.
        REQUIRE(coexec_test::eventually([&] { return !spares_of(server).empty(); }, 10s));
    }
}

TEST_CASE("spares are forked again while every CPU stays busy", "[process_pool][spares]") {
    // The fork server puts a refill off while all CPUs are busy and a spare
    // is still ready, so that the fork does not take a CPU from a starting
    // pool; but not for ever: a program that keeps its CPUs busy gets its
    // spares back all the same.
    if (!fresh_fork_server()) return;  // before any thread of this test
    // jthreads: stopped and joined however the test leaves (a throw too).
    std::vector<std::jthread> spinners;
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i <= cpus; ++i) {
        spinners.emplace_back([](std::stop_token stop) {
            while (!stop.stop_requested()) {
            }
        });
    }
    coexec::process_pool pool{{.max_workers = 1}};  // takes one of the two spares
    const int server = pool.submit(parent_pid).get_for(30s);
    CHECK(coexec_test::eventually([&] { return spares_of(server).size() >= 2; }, 10s));
}

namespace {

std::string stdin_target() {
    char target[128] = {};
    if (::readlink("/proc/self/fd/0", target, sizeof target - 1) < 0) return "(closed)";
    return target;
}

}  // namespace

TEST_CASE("with stdin closed no descriptor of the program's lands on 0 in a worker",
          "[process_pool][adversarial][hygiene]") {
    // Workers keep 0-2. Had the fork server's control socket (or a pool's
    // epoll) taken the free 0, every worker would hold it, and a task could
    // read the fork server's replies or send it requests as the program. A
    // library's descriptor made there before any pool (close-on-exec, as
    // exec would close it) must not reach a worker either.
    const int saved = ::dup(0);
    for (bool stray : {false, true}) {
        for (auto method : {coexec::start_method::fork, coexec::start_method::fork_server}) {
            INFO("start method " << static_cast<int>(method) << ", stray descriptor " << stray);
            ::close(0);
            if (stray) REQUIRE(::eventfd(0, EFD_CLOEXEC) == 0);
            // (With a fork server left by an earlier test in this process,
            // its 0 is the test's stdin: the check below holds as well.)
            if (method == coexec::start_method::fork_server) (void)coexec::process_pool::prepare();
            coexec::process_pool pool{{.max_workers = 1, .start = method}};
            const std::string target = pool.submit(stdin_target).get_for(30s);
            CHECK(target.rfind("socket:", 0) != 0);
            CHECK(target.rfind("anon_inode:", 0) != 0);
            CHECK(target.rfind("/memfd:", 0) != 0);
        }
    }
    if (saved >= 0) {
        ::dup2(saved, 0);
        ::close(saved);
    }
}
