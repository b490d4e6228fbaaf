// sandbox::compute: what a sandboxed task may still do — compute, allocate,
// throw, run threads, use shared memory given to it or made by it, signal
// itself — on the fork-server and spawn start methods; and the options that
// shape the sandbox (sandbox_allow, the initializer running before it).
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "coexec/process_pool.hpp"
#include "coexec/shared_buffer.hpp"
#include "coexec/shared_queue.hpp"
#include "coexec/shared_value.hpp"

using namespace std::chrono_literals;
using coexec::process_pool;
using coexec::start_method;

namespace {

coexec::process_pool_options sandboxed(start_method how, std::size_t workers = 1) {
    return {.max_workers = workers, .start = how, .sandbox = coexec::sandbox::compute};
}

int open_hostname() {
    const int fd = ::open("/etc/hostname", O_RDONLY);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
}

long compute_and_allocate(int n) {
    // Containers, strings, a large block, sorting: malloc's brk and mmap paths.
    std::vector<long> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0L);
    std::vector<char> big(64u << 20, 'x');
    std::map<std::string, long> m;
    for (long x : v)
        m["k" + std::to_string(x % 100)] += x;
    std::sort(v.rbegin(), v.rend());
    return std::accumulate(v.begin(), v.end(), 0L) + static_cast<long>(m.size()) +
           (big[12345] == 'x' ? 1 : 0);
}

int throw_and_catch() {
    int caught = 0;
    for (int i = 0; i < 100; ++i) {
        try {
            throw std::runtime_error("inside " + std::to_string(i));
        } catch (const std::exception&) {
            ++caught;
        }
    }
    return caught;
}

int throw_out() {
    throw std::out_of_range("thrown by a sandboxed task");
}

int print_to_stdout() {
    std::printf("a sandboxed task may print\n");
    std::cout << "and use iostreams" << std::endl;
    return 7;
}

long with_threads(int threads) {
    std::mutex mutex;
    std::condition_variable cv;
    int started = 0;
    std::atomic<long> sum{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            std::vector<long> local(100'000, t + 1);  // a malloc arena per thread
            sum += std::accumulate(local.begin(), local.end(), 0L);
            std::unique_lock lock(mutex);
            ++started;
            cv.notify_all();
        });
    }
    {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return started == threads; });
    }
    for (auto& th : pool)
        th.join();
    return sum.load();
}

std::size_t fill_buffer(coexec::shared_buffer b, int value) {
    std::memset(b.data(), value, b.size());
    return b.size();
}

coexec::shared_buffer make_buffer(std::size_t n) {
    coexec::shared_buffer b(n);
    for (std::size_t i = 0; i < n; ++i)
        b.data()[i] = static_cast<std::byte>(i % 251);
    return b;
}

std::string echo_reversed(std::string s) {
    std::reverse(s.begin(), s.end());
    return s;
}

int push_squares(coexec::shared_queue<int> q, int n) {
    for (int i = 0; i < n; ++i)
        q.push(i * i);
    return n;
}

void count_up(coexec::shared_value<long> v, int n) {
    for (int i = 0; i < n; ++i)
        v.fetch_add(1);
}

std::atomic<int> usr1_seen{0};
int raise_own_signal() {
    struct sigaction sa {};
    sa.sa_handler = [](int) { usr1_seen.fetch_add(1); };
    if (::sigaction(SIGUSR1, &sa, nullptr) != 0) return errno;
    if (::raise(SIGUSR1) != 0) return errno;             // tgkill to itself
    if (::kill(::getpid(), SIGUSR1) != 0) return errno;  // kill of itself
    return usr1_seen.load() == 2 ? 0 : -1;
}

int fstat_own_memfd() {
    // glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH): the sandbox turns it into fstat.
    const int fd = ::memfd_create("t", MFD_CLOEXEC);
    if (fd < 0) return errno;
    struct stat st {};
    const int rc = ::ftruncate(fd, 4096) == 0 && ::fstat(fd, &st) == 0 ? 0 : errno;
    ::close(fd);
    return rc == 0 && st.st_size == 4096 ? 0 : (rc != 0 ? rc : -1);
}

int thread_attributes() {
    // glibc reads a thread's affinity by its thread id here (sanitizers do
    // this at every thread start); a thread may pin itself, by its id too.
    // (Not on the main thread: there glibc reads /proc/self/maps.)
    int rc = -1;
    std::thread([&] {
        pthread_attr_t attr;
        rc = ::pthread_getattr_np(::pthread_self(), &attr);
        if (rc == 0) ::pthread_attr_destroy(&attr);
        cpu_set_t set;
        if (rc == 0 && ::sched_getaffinity(0, sizeof set, &set) != 0) rc = errno;
        if (rc == 0 && ::sched_setaffinity(0, sizeof set, &set) != 0) rc = errno;
        // Answered in a signal handler, which must not disturb errno.
        errno = EADDRINUSE;
        if (rc == 0) rc = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
        if (rc == 0 && errno != EADDRINUSE) rc = -2;
    }).join();
    if (rc != 0) return rc;
    return std::thread::hardware_concurrency() > 0 ? 0 : -1;
}

int stat_path(std::string path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? 0 : errno;
}

int do_abort() {
    std::abort();
}

int get_cwd() {
    char buf[4096];
    return ::getcwd(buf, sizeof buf) != nullptr ? 0 : errno;
}

int clocks_sleeps_and_timers() {
    // Clocks, a sleep, a timerfd that expires, a POSIX timer that signals
    // this process, and a futex wait woken by another thread.
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(2ms);
    if (std::chrono::steady_clock::now() - t0 < 2ms) return -1;
    const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (tfd < 0) return errno;
    itimerspec its{};
    its.it_value.tv_nsec = 1'000'000;
    std::uint64_t expiries = 0;
    const bool fired = ::timerfd_settime(tfd, 0, &its, nullptr) == 0 &&
                       ::read(tfd, &expiries, sizeof expiries) == sizeof expiries;
    const int tfd_errno = errno;
    ::close(tfd);
    if (!fired) return tfd_errno;
    if (expiries < 1) return -2;

    static std::atomic<int> alarms{0};
    struct sigaction sa {};
    sa.sa_handler = [](int) { alarms.fetch_add(1); };
    if (::sigaction(SIGALRM, &sa, nullptr) != 0) return errno;
    sigevent ev{};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGALRM;
    timer_t timer{};
    if (::timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) return errno;
    its.it_value.tv_nsec = 1'000'000;
    if (::timer_settime(timer, 0, &its, nullptr) != 0) return errno;
    for (int i = 0; i < 5000 && alarms.load() == 0; ++i)
        std::this_thread::sleep_for(1ms);
    ::timer_delete(timer);
    if (alarms.load() == 0) return -3;

    std::atomic<int> flag{0};
    std::thread waker([&] {
        std::this_thread::sleep_for(1ms);
        flag.store(1);
        flag.notify_one();
    });
    flag.wait(0);  // futex wait
    waker.join();
    return flag.load() == 1 ? 0 : -4;
}

std::string init_content;
void read_hostname_before_the_sandbox() {
    // The initializer runs before the filter: it may load files.
    if (FILE* f = std::fopen("/etc/hostname", "r")) {
        char buf[256] = {};
        init_content = std::fgets(buf, sizeof buf, f) != nullptr ? "read" : "empty";
        std::fclose(f);
    } else {
        init_content = "missing";
    }
}
std::string what_the_initializer_found() {
    return init_content;
}

}  // namespace

TEST_CASE("a sandboxed task computes, allocates, prints and throws as usual", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    const long expected = 1000L * 999 / 2 + 100 + 1;
    CHECK(pool.submit(compute_and_allocate, 1000).get_for(30s) == expected);
    CHECK(pool.submit(throw_and_catch).get_for(30s) == 100);
    auto f = pool.submit(throw_out);
    REQUIRE(f.wait_for(30s));
    CHECK_THROWS_AS(f.get(), std::out_of_range);
    CHECK(pool.submit(print_to_stdout).get_for(30s) == 7);
    CHECK(pool.submit(fstat_own_memfd).get_for(30s) == 0);
    CHECK(pool.submit(raise_own_signal).get_for(30s) == 0);
    CHECK(pool.submit(thread_attributes).get_for(30s) == 0);
}

TEST_CASE("a sandboxed task can run threads", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    const long per_thread = 100'000;
    CHECK(pool.submit(with_threads, 4).get_for(30s) == per_thread * (1 + 2 + 3 + 4));
    // A second round on the same worker: threads come and go.
    CHECK(pool.submit(with_threads, 2).get_for(30s) == per_thread * 3);
}

TEST_CASE("a sandboxed task uses clocks, sleeps, timers and futex waits", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    CHECK(pool.submit(clocks_sleeps_and_timers).get_for(30s) == 0);
}

TEST_CASE("a sandboxed task writes shared buffers and returns new ones", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    coexec::shared_buffer in(1 << 20);
    CHECK(pool.submit(fill_buffer, in, 0x5a).get_for(30s) == in.size());
    CHECK(std::all_of(in.span().begin(), in.span().end(),
                      [](std::byte b) { return b == std::byte{0x5a}; }));
    coexec::shared_buffer out = pool.submit(make_buffer, std::size_t{3} << 20).get_for(30s);
    REQUIRE(out.size() == std::size_t{3} << 20);
    bool same = true;
    for (std::size_t i = 0; i < out.size(); ++i)
        same = same && out.data()[i] == static_cast<std::byte>(i % 251);
    CHECK(same);
}

TEST_CASE("a sandboxed task takes and returns messages larger than its channel's ring",
          "[sandbox]") {
    // Past the ring, messages travel in memfd arenas the worker makes and maps.
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    std::string big(12u << 20, 'a');
    big.back() = 'z';
    for (int round = 0; round < 3; ++round) {
        const std::string back = pool.submit(echo_reversed, big).get_for(30s);
        REQUIRE(back.size() == big.size());
        CHECK(back.front() == 'z');
        CHECK(back.back() == 'a');
    }
}

TEST_CASE("sandboxed tasks use shared_queue and shared_value", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how, 2)};
    coexec::shared_queue<int> q(4);  // smaller than the count: the producer blocks
    auto produced = pool.submit(push_squares, q, 50);
    long sum = 0;
    for (int i = 0; i < 50; ++i)
        sum += q.pop();
    CHECK(produced.get_for(30s) == 50);
    CHECK(sum == 40425);  // sum of i^2 for i < 50
    coexec::shared_value<long> counter(0);
    auto a = pool.submit(count_up, counter, 10'000);
    auto b = pool.submit(count_up, counter, 10'000);
    a.get_for(30s);
    b.get_for(30s);
    CHECK(counter.load() == 20'000);
}

TEST_CASE("map runs under the sandbox", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how, 2)};
    std::vector<int> in(2000);
    std::iota(in.begin(), in.end(), 0);
    long sum = 0;
    for (int r : pool.map([](int x) { return 2 * x; }, in))
        sum += r;
    CHECK(sum == 2L * 1999 * 2000 / 2);
}

TEST_CASE("a respawned worker is sandboxed again", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    process_pool pool{sandboxed(how)};
    auto f = pool.submit(do_abort);  // abort() signals itself: allowed
    REQUIRE(f.wait_for(30s));
    CHECK_THROWS_AS(f.get(), coexec::worker_died);
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
    CHECK(pool.stats().respawns >= 1);
}

TEST_CASE("sandbox_allow adds system calls to the allow-list", "[sandbox]") {
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    {
        process_pool pool{sandboxed(how)};
        CHECK(pool.submit(get_cwd).get_for(30s) == EPERM);
    }
    auto options = sandboxed(how);
    options.sandbox_allow = {"getcwd"};
    process_pool pool{options};
    CHECK(pool.submit(get_cwd).get_for(30s) == 0);
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
}

TEST_CASE("sandbox_allow may name a call the sandbox checks or traps", "[sandbox]") {
    // Its narrower built-in rules give way: stat by path works, clone3 is
    // allowed (glibc then makes threads with it), and the rest stays refused.
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    auto options = sandboxed(how);
    options.sandbox_allow = {"newfstatat", "clone3", "sched_setaffinity", "ioctl"};
    process_pool pool{options};
    CHECK(pool.submit(stat_path, std::string("/")).get_for(30s) == 0);
    CHECK(pool.submit(with_threads, 2).get_for(30s) == 100'000L * 3);
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
}

TEST_CASE("an unknown system call name in sandbox_allow is refused at construction", "[sandbox]") {
    coexec::process_pool_options options{.max_workers = 1, .sandbox = coexec::sandbox::compute};
    options.sandbox_allow = {"getcwd", "no_such_call"};
    CHECK_THROWS_AS(process_pool{options}, std::invalid_argument);
    try {
        process_pool pool{options};
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("no_such_call") != std::string::npos);
    }
}

TEST_CASE("the initializer runs before the sandbox and may open files", "[sandbox]") {
    if (::access("/etc/hostname", R_OK) != 0) {
        WARN("skipped: no readable /etc/hostname here");
        return;
    }
    const auto how = GENERATE(start_method::fork_server, start_method::spawn);
    auto options = sandboxed(how);
    options.initializer = &read_hostname_before_the_sandbox;
    process_pool pool{options};
    CHECK(pool.submit(what_the_initializer_found).get_for(30s) == "read");
    CHECK(pool.submit(open_hostname).get_for(30s) == EPERM);
}
