#include "coexec/detail/process_sync.hpp"

#include <pthread.h>

#include <cerrno>
#include <ctime>

#include "util/system_error.hpp"

namespace coexec::detail {
namespace {

// pthread functions return the errno value instead of setting errno.
void check(int rc, const char* what) {
    if (rc != 0) throw_system_error(rc, what);
}

pthread_mutex_t* as_mutex(void* p) {
    return static_cast<pthread_mutex_t*>(p);
}
pthread_cond_t* as_cond(void* p) {
    return static_cast<pthread_cond_t*>(p);
}

// pthread_cond_wait returns EOWNERDEAD like pthread_mutex_lock when the owner
// of the re-acquired mutex died; recover the same way.
void recover(int rc, pthread_mutex_t* m, const char* what) {
    if (rc == EOWNERDEAD) {
        ::pthread_mutex_consistent(m);
        return;
    }
    check(rc, what);
}

}  // namespace

std::size_t process_mutex_bytes() noexcept {
    return sizeof(pthread_mutex_t);
}

void process_mutex_init(void* where) {
    pthread_mutexattr_t attr;
    check(::pthread_mutexattr_init(&attr), "pthread_mutexattr_init");
    // Shared between processes, and robust: a worker killed while holding it
    // must not leave every other process blocked forever.
    check(::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED),
          "pthread_mutexattr_setpshared");
    check(::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST),
          "pthread_mutexattr_setrobust");
    int rc = ::pthread_mutex_init(as_mutex(where), &attr);
    ::pthread_mutexattr_destroy(&attr);
    check(rc, "pthread_mutex_init");
}

bool process_mutex_lock(void* m) {
    int rc = ::pthread_mutex_lock(as_mutex(m));
    if (rc == EOWNERDEAD) {
        ::pthread_mutex_consistent(as_mutex(m));
        return false;
    }
    check(rc, "pthread_mutex_lock");
    return true;
}

bool process_mutex_try_lock(void* m) {
    int rc = ::pthread_mutex_trylock(as_mutex(m));
    if (rc == EBUSY) return false;
    if (rc == EOWNERDEAD) {
        ::pthread_mutex_consistent(as_mutex(m));
        return true;
    }
    check(rc, "pthread_mutex_trylock");
    return true;
}

void process_mutex_unlock(void* m) {
    check(::pthread_mutex_unlock(as_mutex(m)), "pthread_mutex_unlock");
}

std::size_t process_cond_bytes() noexcept {
    return sizeof(pthread_cond_t);
}

void process_cond_init(void* where) {
    pthread_condattr_t attr;
    check(::pthread_condattr_init(&attr), "pthread_condattr_init");
    check(::pthread_condattr_setpshared(&attr, PTHREAD_PROCESS_SHARED),
          "pthread_condattr_setpshared");
    check(::pthread_condattr_setclock(&attr, CLOCK_MONOTONIC), "pthread_condattr_setclock");
    int rc = ::pthread_cond_init(as_cond(where), &attr);
    ::pthread_condattr_destroy(&attr);
    check(rc, "pthread_cond_init");
}

void process_cond_wait(void* cond, void* mutex) {
    recover(::pthread_cond_wait(as_cond(cond), as_mutex(mutex)), as_mutex(mutex),
            "pthread_cond_wait");
}

bool process_cond_wait_until(void* cond, void* mutex,
                             std::chrono::steady_clock::time_point deadline) {
    auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    if (ns < 0) ns = 0;
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    int rc = ::pthread_cond_timedwait(as_cond(cond), as_mutex(mutex), &ts);
    if (rc == ETIMEDOUT) return false;
    recover(rc, as_mutex(mutex), "pthread_cond_timedwait");
    return true;
}

void process_cond_notify_all(void* cond) {
    check(::pthread_cond_broadcast(as_cond(cond)), "pthread_cond_broadcast");
}

}  // namespace coexec::detail
