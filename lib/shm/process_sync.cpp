// The cross-process lock and futex waits behind process_mutex, shared_value
// and shared_queue (see detail/process_sync.hpp for why they are not pthread
// robust mutexes and condition variables).
#include "coexec/detail/process_sync.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>
#include <string>

#include "coexec/detail/spin.hpp"
#include "coexec/errors.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec::detail {
namespace {

// The lock word: the owner's thread id in the low 30 bits (Linux caps ids at
// 2^22), and a flag saying someone may sleep on it.
constexpr std::uint32_t tid_mask = 0x3fff'ffffu;
constexpr std::uint32_t waiters_bit = 0x8000'0000u;

// gettid() is a system call (~0.3 µs here); a thread's id only changes in
// the child of a fork, which the handler below resets for the forking thread
// (the only one the child has).
thread_local std::uint32_t t_tid = 0;
[[maybe_unused]] const int g_atfork = ::pthread_atfork(nullptr, nullptr, [] { t_tid = 0; });

std::uint32_t my_tid() noexcept {
    if (t_tid == 0) t_tid = static_cast<std::uint32_t>(::gettid()) & tid_mask;
    return t_tid;
}

/// True if no thread `tid` exists any more. A thread id is reused only after
/// the kernel has cycled through all others, and then the new holder of the
/// id only delays the takeover until it exits. Our own id can only be there
/// from an earlier thread with it (or a relock by its owner, undefined as for
/// std::mutex), so it counts as gone. A refused query (EPERM, a sandbox)
/// counts as alive: we wait rather than break a live owner's lock.
bool owner_gone(std::uint32_t tid) noexcept {
    if (tid == my_tid()) return true;
    return ::kill(static_cast<pid_t>(tid), 0) != 0 && errno == ESRCH;
}

timespec to_timespec(shm_clock::time_point t) noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    if (ns < 0) ns = 0;
    return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

/// Tries to take a free (tid bits 0) or dead-owned word; the waiters flag is
/// set on the way in, since others may sleep on it.
bool try_take(std::atomic_ref<std::uint32_t> word, std::uint32_t seen, std::uint32_t me) noexcept {
    return word.compare_exchange_strong(seen, me | waiters_bit, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

}  // namespace

void shared_futex_wait(std::uint32_t* word, std::uint32_t expected,
                       shm_clock::time_point deadline) noexcept {
    const auto now = shm_clock::now();
    if (now >= deadline) return;
    // steady_clock is CLOCK_MONOTONIC, which FUTEX_WAIT_BITSET takes as an
    // absolute time. Not FUTEX_PRIVATE_FLAG: the word is in shared memory.
    const auto until = deadline - now > recheck_period ? now + recheck_period : deadline;
    const timespec ts = to_timespec(until);
    // EAGAIN (changed), EINTR and ETIMEDOUT all return to the caller's loop.
    ::syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, &ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

void shared_futex_wake_all(std::uint32_t* word) noexcept {
    ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

lock_result process_try_lock(std::uint32_t* w) noexcept {
    std::atomic_ref<std::uint32_t> word(*w);
    const std::uint32_t me = my_tid();
    std::uint32_t cur = 0;
    if (word.compare_exchange_strong(cur, me, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        return lock_result::acquired;
    }
    if ((cur & tid_mask) == 0)
        return try_take(word, cur, me) ? lock_result::acquired : lock_result::timed_out;
    if (owner_gone(cur & tid_mask) && try_take(word, cur, me)) return lock_result::owner_died;
    return lock_result::timed_out;
}

lock_result process_lock(std::uint32_t* w, shm_clock::time_point deadline) noexcept {
    std::atomic_ref<std::uint32_t> word(*w);
    const std::uint32_t me = my_tid();
    std::uint32_t cur = 0;
    if (word.compare_exchange_strong(cur, me, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        return lock_result::acquired;
    }
    // Holders keep the lock for a copy of one item: spin a little first.
    const bool taken = spin_until(
        [&] {
            const std::uint32_t seen = word.load(std::memory_order_relaxed);
            return (seen & tid_mask) == 0 && try_take(word, seen, me);
        },
        spin::shared_lock);
    if (taken) return lock_result::acquired;
    bool look_at_owner = true;  // before the first sleep, then after every full one
    for (;;) {
        cur = word.load(std::memory_order_relaxed);
        const std::uint32_t owner = cur & tid_mask;
        if (owner == 0) {
            if (try_take(word, cur, me)) return lock_result::acquired;
            continue;
        }
        if (look_at_owner && owner_gone(owner)) {
            if (try_take(word, cur, me)) return lock_result::owner_died;
            continue;
        }
        if ((cur & waiters_bit) == 0) {
            if (!word.compare_exchange_weak(cur, cur | waiters_bit, std::memory_order_relaxed,
                                            std::memory_order_relaxed)) {
                continue;
            }
            cur |= waiters_bit;
        }
        const auto now = shm_clock::now();
        if (now >= deadline) return lock_result::timed_out;
        shared_futex_wait(w, cur, deadline);
        // A sleep that ran its full period without the word changing: the
        // owner may have died meanwhile, look again.
        look_at_owner =
            word.load(std::memory_order_relaxed) == cur && shm_clock::now() - now >= recheck_period;
    }
}

void process_unlock(std::uint32_t* w) noexcept {
    std::atomic_ref<std::uint32_t> word(*w);
    if ((word.exchange(0, std::memory_order_release) & waiters_bit) != 0) {
        ::syscall(SYS_futex, w, FUTEX_WAKE, 1, nullptr, nullptr, 0);
    }
}

void check_received_block(const shared_buffer& block, std::size_t min_bytes, const char* what) {
    const auto refuse = [&](const std::string& why) {
        throw serialization_error(std::string("coexec: a received ") + what + " " + why);
    };
    if (!block.valid()) refuse("has no memory");
    if (block.size() < min_bytes) {
        refuse("has " + std::to_string(block.size()) + " bytes, it needs at least " +
               std::to_string(min_bytes));
    }
    // A block its sender can shrink would make our next access fault (SIGBUS).
    const int seals = ::fcntl(block.fd(), F_GET_SEALS);
    if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
        refuse("is not a memfd sealed against shrinking");
    }
}

}  // namespace coexec::detail
