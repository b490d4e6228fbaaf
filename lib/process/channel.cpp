#include "process/channel.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <system_error>
#include <utility>

#include "coexec/errors.hpp"
#include "util/fd_passing.hpp"
#include "util/system_error.hpp"

namespace coexec::detail::proc {

namespace {

constexpr std::uint64_t channel_magic = 0x636f65786563'4348ULL;  // "coexecCH"
constexpr std::size_t arena_granule = std::size_t{2} << 20;
constexpr std::size_t data_offset = ring_data_offset;
constexpr int parent_sndbuf = 32 * 1024;

// What a receiver requires of a memfd before it maps it: a size nobody can
// change (mapping a file that is later shrunk faults with SIGBUS on access).
constexpr int size_seals = F_SEAL_SHRINK | F_SEAL_GROW;
// ... and of a one-off spill, whose bytes must not change either.
constexpr int spill_seals = size_seals | F_SEAL_WRITE;

constexpr std::size_t align8(std::size_t n) noexcept {
    return (n + 7) & ~std::size_t{7};
}

// The descriptors of a message whose payload travels in `memfd`: it comes first.
std::vector<int> with_leading_fd(int memfd, std::span<const int> fds) {
    std::vector<int> all;
    all.reserve(fds.size() + 1);
    all.push_back(memfd);
    all.insert(all.end(), fds.begin(), fds.end());
    return all;
}

unique_fd sealable_memfd(const char* name, std::size_t size) {
    unique_fd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) throw_errno("memfd_create");
    if (size != 0 && ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate");
    return fd;
}

void add_seals(int fd, int seals) {
    if (::fcntl(fd, F_ADD_SEALS, seals) != 0) throw_errno("fcntl(F_ADD_SEALS)");
}

// A worker forked from this process (start_method::fork) would inherit the
// parent's shared mappings of every other worker's channel and arenas, and
// its task could scribble over them: they stay out of children.
void keep_from_children(void* p, std::size_t len) noexcept {
    ::madvise(p, len, MADV_DONTFORK);
}

// A socket error that is the peer's doing (it stopped reading, or closed its end).
bool peer_error(int err) noexcept {
    return err == EAGAIN || err == EWOULDBLOCK || err == EPIPE || err == ECONNRESET ||
           err == ENOTCONN || err == ECONNREFUSED;
}

}  // namespace

channel channel::create(std::size_t ring_capacity, channel_fds& worker_end) {
    ring_capacity = align8(std::max<std::size_t>(ring_capacity, 4096));
    channel ch;
    ch.m_side = side::parent;
    const std::size_t len = data_offset + 2 * ring_capacity;
    ch.m_memfd = sealable_memfd("coexec-channel", len);
    // Sealed at its size: a worker that truncates its channel cannot make
    // the parent's accesses fault (SIGBUS).
    add_seals(ch.m_memfd.get(), size_seals | F_SEAL_SEAL);
    ch.map(ch.m_memfd.get(), len);
    auto* h = ::new (ch.m_base) channel_header();
    h->magic = channel_magic;
    h->capacity = ring_capacity;
    ch.m_capacity = ring_capacity;

    int wake[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, wake) != 0)
        throw_errno("socketpair");
    ch.m_wake.reset(wake[0]);
    unique_fd worker_wake(wake[1]);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
    ch.m_socket.reset(sv[0]);
    unique_fd worker_sock(sv[1]);
    // A small send buffer: an honest worker has at most one message's
    // descriptors (two packets) queued, so one that stops reading is found
    // (EAGAIN) after a few dozen packets instead of pinning hundreds.
    const int sndbuf = parent_sndbuf;
    ::setsockopt(ch.m_socket.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

    channel_fds w;
    w.memfd.reset(::fcntl(ch.m_memfd.get(), F_DUPFD_CLOEXEC, 0));
    if (!w.memfd) throw_errno("fcntl(F_DUPFD_CLOEXEC)");
    w.wake = std::move(worker_wake);
    w.socket = std::move(worker_sock);
    worker_end = std::move(w);
    return ch;
}

channel channel::attach(channel_fds fds) {
    channel ch;
    ch.m_side = side::worker;
    ch.m_memfd = std::move(fds.memfd);
    ch.m_wake = std::move(fds.wake);
    ch.m_socket = std::move(fds.socket);
    struct stat st {};
    if (::fstat(ch.m_memfd.get(), &st) != 0) throw_errno("fstat");
    ch.map(ch.m_memfd.get(), static_cast<std::size_t>(st.st_size));
    auto* h = static_cast<channel_header*>(ch.m_base);
    if (h->magic != channel_magic || data_offset + 2 * h->capacity != ch.m_map_len) {
        throw serialization_error("coexec: a worker channel has an unexpected layout");
    }
    ch.m_capacity = h->capacity;
    // The worker trusts the parent; these are 0 unless a second view of the
    // channel is attached (the adversarial tests do).
    ch.m_out_tail = ch.out_ring().tail.load(std::memory_order_acquire);
    ch.m_peer_head = ch.out_ring().head.load(std::memory_order_acquire);
    ch.m_in_head = ch.in_ring().head.load(std::memory_order_acquire);
    ch.m_peer_tail = ch.m_in_head;
    return ch;
}

void channel::map(int memfd, std::size_t len) {
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (p == MAP_FAILED) throw_errno("mmap");
    m_base = p;
    m_map_len = len;
    if (m_side == side::parent) keep_from_children(p, len);
}

channel::channel(channel&& o) noexcept
    : m_side(o.m_side),
      m_base(std::exchange(o.m_base, nullptr)),
      m_map_len(std::exchange(o.m_map_len, 0)),
      m_capacity(std::exchange(o.m_capacity, 0)),
      m_out_tail(std::exchange(o.m_out_tail, 0)),
      m_peer_head(std::exchange(o.m_peer_head, 0)),
      m_in_head(std::exchange(o.m_in_head, 0)),
      m_peer_tail(std::exchange(o.m_peer_tail, 0)),
      m_poisoned(o.m_poisoned.exchange(false, std::memory_order_relaxed)),
      m_memfd(std::move(o.m_memfd)),
      m_wake(std::move(o.m_wake)),
      m_socket(std::move(o.m_socket)),
      m_out_arena(std::exchange(o.m_out_arena, nullptr)),
      m_out_arena_len(std::exchange(o.m_out_arena_len, 0)),
      m_in_arena(std::exchange(o.m_in_arena, nullptr)),
      m_in_arena_len(std::exchange(o.m_in_arena_len, 0)) {}

channel& channel::operator=(channel&& o) noexcept {
    if (this != &o) {
        this->~channel();
        ::new (this) channel(std::move(o));
    }
    return *this;
}

channel::~channel() {
    unmap_arenas();
    if (m_base != nullptr) ::munmap(m_base, m_map_len);
}

void channel::unmap_arenas() noexcept {
    if (m_out_arena != nullptr) ::munmap(m_out_arena, m_out_arena_len);
    if (m_in_arena != nullptr) ::munmap(m_in_arena, m_in_arena_len);
    m_out_arena = m_in_arena = nullptr;
    m_out_arena_len = m_in_arena_len = 0;
}

ring_control& channel::out_ring() const noexcept {
    auto* h = static_cast<channel_header*>(m_base);
    return m_side == side::parent ? h->to_worker : h->to_parent;
}
ring_control& channel::in_ring() const noexcept {
    auto* h = static_cast<channel_header*>(m_base);
    return m_side == side::parent ? h->to_parent : h->to_worker;
}
std::byte* channel::out_data() const noexcept {
    auto* d = static_cast<std::byte*>(m_base) + data_offset;
    return m_side == side::parent ? d : d + m_capacity;
}
std::byte* channel::in_data() const noexcept {
    auto* d = static_cast<std::byte*>(m_base) + data_offset;
    return m_side == side::parent ? d + m_capacity : d;
}

void channel::violation(const char* what) {
    poison();
    throw protocol_violation(what);
}

void channel::set_running_id(std::uint64_t id) noexcept {
    // Read by the parent only after the worker is dead (its exit orders the
    // store), so relaxed would do; release costs nothing on x86.
    static_cast<channel_header*>(m_base)->running_id.store(id, std::memory_order_release);
}
std::uint64_t channel::running_id() const noexcept {
    return static_cast<channel_header*>(m_base)->running_id.load(std::memory_order_acquire);
}

// ---------------------------------------------------------------------------
// Producer side
// ---------------------------------------------------------------------------

std::uint64_t channel::checked_peer_head() {
    // acquire: the consumer's reads of the bytes it released happened before,
    // so we may overwrite them.
    const std::uint64_t head = out_ring().head.load(std::memory_order_acquire);
    // Valid heads lie between the last valid one and our tail (unsigned
    // distances, so a head that moved backwards is far out of range too).
    if (head - m_peer_head > m_out_tail - m_peer_head)
        violation("the ring head it wrote is out of range");
    m_peer_head = head;
    return head;
}

void channel::send_descriptors(std::span<const int> fds) {
    if (fds.empty()) return;
    // The parent never waits for a worker: a socket that is full means the
    // worker is not reading it.
    const bool parent = m_side == side::parent;
    try {
        send_fds(m_socket.get(), fds, parent ? MSG_DONTWAIT : 0);
    } catch (const std::system_error& e) {
        if (parent && peer_error(e.code().value()))
            violation("it does not read its descriptor socket, or closed it");
        throw;
    }
}

void channel::write_record(std::uint16_t kind, std::uint64_t id, std::uint32_t flags,
                           std::uint32_t nfds, std::uint32_t size, std::span<const std::byte> a,
                           std::span<const std::byte> b) {
    std::byte* data = out_data();
    const std::size_t payload = a.size() + b.size();
    const std::size_t len = align8(sizeof(record) + payload);
    const std::uint64_t head = checked_peer_head();
    std::uint64_t tail = m_out_tail;
    std::size_t pos = tail % m_capacity;
    const std::size_t skip = (m_capacity - pos < len) ? m_capacity - pos : 0;
    if ((tail - head) + skip + len > m_capacity) {
        // Callers spill anything large and keep at most a few messages in
        // flight, so this means the peer stopped reading.
        violation("it does not drain its ring");
    }
    if (skip != 0) {
        if (skip >= sizeof(record)) {
            const record pad{static_cast<std::uint32_t>(skip - sizeof(record)),
                             static_cast<std::uint16_t>(msg_kind::pad),
                             0,
                             0,
                             0,
                             0};
            std::memcpy(data + pos, &pad, sizeof pad);
        }  // else: too small for a record; the consumer skips it by the same rule
        tail += skip;
        pos = 0;
    }
    const record rec{size, kind, static_cast<std::uint16_t>(flags), nfds, 0, id};
    std::memcpy(data + pos, &rec, sizeof rec);
    if (!a.empty()) std::memcpy(data + pos + sizeof rec, a.data(), a.size());
    if (!b.empty()) std::memcpy(data + pos + sizeof rec + a.size(), b.data(), b.size());
    m_out_tail = tail + len;
    // release: the record's bytes are visible before the new tail.
    out_ring().tail.store(m_out_tail, std::memory_order_release);
    wake_peer();
}

void channel::wake_peer() noexcept {
    // seq_cst fence between our tail store and the flag load; the consumer has
    // the mirror fence between its flag store and its tail load (Dekker).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (out_ring().consumer_sleeping.load(std::memory_order_relaxed) != 0) {
        // Never blocks, never raises SIGPIPE. EAGAIN: wake-ups are pending
        // already; EPIPE: the peer is gone.
        const char one = 1;
        [[maybe_unused]] const auto n = ::send(m_wake.get(), &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}

void channel::send(msg_kind kind, std::uint64_t id, std::span<const std::byte> bytes,
                   std::span<const int> fds) {
    send2(kind, id, bytes, {}, fds);
}

void channel::send2(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                    std::span<const std::byte> b, std::span<const int> fds) {
    if (poisoned()) throw protocol_violation("the channel was closed after a protocol violation");
    const std::size_t total = a.size() + b.size();
    if (total > UINT32_MAX - 64) {
        throw_system_error(EMSGSIZE, "process channel: message over 4 GiB");
    }
    if (fds.size() > max_fds_per_message) {
        throw serialization_error("coexec: a message to or from a process worker carries " +
                                  std::to_string(fds.size()) + " shared_buffers; at most " +
                                  std::to_string(max_fds_per_message) + " may cross in one");
    }
    const auto k = static_cast<std::uint16_t>(kind);
    if (align8(sizeof(record) + total) <= m_capacity / 4) {
        send_descriptors(fds);
        write_record(k, id, 0, static_cast<std::uint32_t>(fds.size()),
                     static_cast<std::uint32_t>(total), a, b);
        return;
    }
    if (total <= arena_max_bytes && send_via_arena(kind, id, a, b, fds)) return;
    send_spilled(kind, id, a, b, fds);
}

void channel::publish_raw(std::uint16_t kind, std::uint16_t flags, std::uint32_t size,
                          std::uint32_t nfds, std::uint64_t id, std::span<const std::byte> payload,
                          std::span<const int> fds) {
    if (poisoned()) throw protocol_violation("the channel was closed after a protocol violation");
    send_descriptors(fds);
    write_record(kind, id, flags, nfds, size, payload, {});
}

bool channel::send_via_arena(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                             std::span<const std::byte> b, std::span<const int> fds) {
    ring_control& r = out_ring();
    // acquire: the consumer's reads of the previous message happened before
    // its release store of 0, so we may overwrite. (Written by the peer: a
    // garbage value only makes us spill, or overwrite what it still reads.)
    if (r.arena_busy.load(std::memory_order_acquire) != 0) return false;
    const std::size_t total = a.size() + b.size();
    // A new arena when the old one is too small, or far too large for what
    // is being sent now (so one huge message does not pin memory forever).
    void* target = m_out_arena;
    std::size_t target_len = m_out_arena_len;
    unique_fd fresh;
    if (target_len < total || target_len > 4 * std::max(total, arena_granule)) {
        target_len = (total + arena_granule - 1) / arena_granule * arena_granule;
        fresh = sealable_memfd("coexec-arena", target_len);
        add_seals(fresh.get(), size_seals | F_SEAL_SEAL);
        target = ::mmap(nullptr, target_len, PROT_READ | PROT_WRITE, MAP_SHARED, fresh.get(), 0);
        if (target == MAP_FAILED) throw_errno("mmap(arena)");
        if (m_side == side::parent) keep_from_children(target, target_len);
    }
    try {
        auto* dst = static_cast<std::byte*>(target);
        if (!a.empty()) std::memcpy(dst, a.data(), a.size());
        if (!b.empty()) std::memcpy(dst + a.size(), b.data(), b.size());
        std::vector<int> all;
        if (fresh) {
            all = with_leading_fd(fresh.get(), fds);
            fds = all;
        }
        send_descriptors(fds);
        // Published by write_record's release store of the ring's tail.
        r.arena_busy.store(1, std::memory_order_relaxed);
        write_record(
            static_cast<std::uint16_t>(kind), id,
            record_flag::spilled | record_flag::arena | (fresh ? record_flag::new_arena : 0),
            static_cast<std::uint32_t>(fds.size()), static_cast<std::uint32_t>(total), {}, {});
    } catch (...) {
        r.arena_busy.store(0, std::memory_order_relaxed);
        if (fresh) ::munmap(target, target_len);  // the peer never heard of it
        throw;
    }
    if (fresh) {
        if (m_out_arena != nullptr) ::munmap(m_out_arena, m_out_arena_len);
        m_out_arena = target;
        m_out_arena_len = target_len;
    }
    return true;
}

void channel::send_spilled(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                           std::span<const std::byte> b, std::span<const int> fds) {
    // The payload goes into a memfd of its own, sent as the first descriptor,
    // sealed once written: the receiver maps it knowing neither its size nor
    // its bytes can change under it.
    unique_fd spill = sealable_memfd("coexec-message", 0);
    for (auto part : {a, b}) {
        while (!part.empty()) {
            ssize_t w = ::write(spill.get(), part.data(), part.size());
            if (w < 0) {
                if (errno == EINTR) continue;
                throw_errno("write(spill memfd)");
            }
            part = part.subspan(static_cast<std::size_t>(w));
        }
    }
    add_seals(spill.get(), spill_seals | F_SEAL_SEAL);
    const std::vector<int> all = with_leading_fd(spill.get(), fds);
    send_descriptors(all);
    write_record(static_cast<std::uint16_t>(kind), id, record_flag::spilled,
                 static_cast<std::uint32_t>(all.size()),
                 static_cast<std::uint32_t>(a.size() + b.size()), {}, {});
}

// ---------------------------------------------------------------------------
// Consumer side
// ---------------------------------------------------------------------------

bool channel::readable() const noexcept {
    return !poisoned() && in_ring().tail.load(std::memory_order_acquire) != m_in_head;
}

void channel::map_in_arena(int fd, std::size_t needed) {
    // F_GET_SEALS first: it fails on anything but a memfd without touching
    // the file's file system (fstat on a FUSE file could block).
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & size_seals) != size_seals)
        violation("it announced an arena that is not a size-sealed memfd");
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno("fstat(arena)");
    const auto len = static_cast<std::size_t>(st.st_size);
    if (len < needed || len > arena_max_bytes)
        violation("it announced an arena whose size does not fit its message");
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw_errno("mmap(arena)");
    if (m_side == side::parent) keep_from_children(p, len);
    if (m_in_arena != nullptr) ::munmap(m_in_arena, m_in_arena_len);
    m_in_arena = p;
    m_in_arena_len = len;
}

bool channel::try_receive(message& out) {
    if (poisoned()) return false;
    ring_control& r = in_ring();
    std::byte* data = in_data();
    // acquire: pairs with the producer's release store of tail. Loaded once:
    // the loop below ends within what was published at this moment.
    const std::uint64_t tail = r.tail.load(std::memory_order_acquire);
    if (tail == m_in_head) return false;
    // Valid tails lie between our head and head + capacity, and never move
    // backwards (unsigned distances catch both).
    if (tail - m_in_head > m_capacity || tail - m_in_head < m_peer_tail - m_in_head)
        violation("the ring tail it wrote is out of range");
    m_peer_tail = tail;
    for (;;) {
        const std::uint64_t avail = tail - m_in_head;
        if (avail == 0) return false;
        const std::size_t pos = m_in_head % m_capacity;
        const std::size_t room = m_capacity - pos;
        if (room < sizeof(record)) {
            // Too small for a record: skipped by both sides' rule.
            if (avail < room) violation("a record is cut short");
            m_in_head += room;
            r.head.store(m_in_head, std::memory_order_release);
            continue;
        }
        if (avail < sizeof(record)) violation("a record is cut short");
        // A private copy, checked once: the peer may rewrite the ring while
        // we look. The fence keeps the compiler from re-reading shared memory
        // in place of the copy.
        record rec;
        std::memcpy(&rec, data + pos, sizeof rec);
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (rec.kind == static_cast<std::uint16_t>(msg_kind::pad)) {
            if (avail < room) violation("a pad record runs past the ring's tail");
            m_in_head += room;
            r.head.store(m_in_head, std::memory_order_release);
            continue;
        }
        const bool from_worker = m_side == side::parent;
        const auto kind = static_cast<msg_kind>(rec.kind);
        const bool kind_ok = from_worker
                                 ? (kind == msg_kind::ready || kind == msg_kind::result ||
                                    kind == msg_kind::init_failed || kind == msg_kind::trace_span)
                                 : (kind == msg_kind::config || kind == msg_kind::task ||
                                    kind == msg_kind::exit || kind == msg_kind::trace_config);
        if (!kind_ok) violation("a record of an unknown kind");
        const bool spilled = (rec.flags & record_flag::spilled) != 0;
        const bool arena = (rec.flags & record_flag::arena) != 0;
        if ((rec.flags & ~record_flag::all) != 0 || rec.reserved != 0 || (arena && !spilled) ||
            ((rec.flags & record_flag::new_arena) != 0 && !arena)) {
            violation("a record with invalid flags");
        }
        if (rec.nfds > max_fds_per_message + 1)
            violation("a record announces too many descriptors");
        const std::size_t len = align8(sizeof(record) + (spilled ? 0 : rec.size));
        if (len > room || len > avail) violation("a record's length runs past the ring");
        if (spilled && rec.size == 0) violation("an empty spilled record");
        out.kind = kind;
        out.id = rec.id;
        out.advance = len;
        out.fds.clear();
        out.spill_map = nullptr;
        out.spill_len = 0;
        out.in_arena = false;
        out.bytes = {data + pos + sizeof rec, spilled ? 0 : rec.size};
        receive_payload(rec, out);
        return true;
    }
}

void channel::receive_payload(const record& rec, message& out) {
    const bool parent = m_side == side::parent;
    if (rec.nfds != 0) {
        // The sender queued these before publishing the record, so they
        // are already here: the parent never waits (MSG_DONTWAIT), a
        // missing packet is a protocol violation.
        try {
            recv_fds(m_socket.get(), rec.nfds, out.fds, parent ? MSG_DONTWAIT : 0);
        } catch (const std::system_error&) {
            if (parent) violation("the descriptors its record announced are missing or malformed");
            throw;
        }
    }
    const bool spilled = (rec.flags & record_flag::spilled) != 0;
    if (spilled && (rec.flags & record_flag::arena) != 0) {
        if ((rec.flags & record_flag::new_arena) != 0) {
            if (out.fds.empty()) violation("a new arena announced without its memfd");
            unique_fd arena(out.fds.front());
            out.fds.erase(out.fds.begin());
            map_in_arena(arena.get(), rec.size);
        }
        if (m_in_arena == nullptr || rec.size > m_in_arena_len)
            violation("a message overruns the channel's arena");
        out.in_arena = true;
        out.bytes = {static_cast<const std::byte*>(m_in_arena), rec.size};
    } else if (spilled) {
        if (out.fds.empty()) violation("a spilled message without its memfd");
        unique_fd spill(out.fds.front());
        out.fds.erase(out.fds.begin());
        const int seals = ::fcntl(spill.get(), F_GET_SEALS);
        if (seals < 0 || (seals & spill_seals) != spill_seals)
            violation("a spilled message in a memfd that is not sealed");
        struct stat st {};
        if (::fstat(spill.get(), &st) != 0) throw_errno("fstat(spill memfd)");
        if (static_cast<std::uint64_t>(st.st_size) < rec.size)
            violation("a spilled message's memfd is smaller than its record says");
        void* p = ::mmap(nullptr, rec.size, PROT_READ, MAP_PRIVATE, spill.get(), 0);
        if (p == MAP_FAILED) throw_errno("mmap(spill memfd)");
        out.spill_map = p;
        out.spill_len = rec.size;
        out.bytes = {static_cast<const std::byte*>(p), rec.size};
    }
    if (parent) {
        // What remains are shared_buffers: the codec maps each whole, so each
        // must be a memfd whose size is sealed.
        for (int fd : out.fds) {
            const int seals = ::fcntl(fd, F_GET_SEALS);
            if (seals < 0 || (seals & size_seals) != size_seals)
                violation("it sent a descriptor that is not a size-sealed memfd");
        }
    }
}

void channel::release(message& m) noexcept {
    if (m.advance != 0) {
        m_in_head += m.advance;
        // release: we are done reading these bytes before the producer reuses them.
        in_ring().head.store(m_in_head, std::memory_order_release);
        m.advance = 0;
    }
    if (m.spill_map != nullptr) ::munmap(m.spill_map, m.spill_len);
    m.spill_map = nullptr;
    if (m.in_arena) {
        // release: our reads of the arena happen before the producer reuses it.
        in_ring().arena_busy.store(0, std::memory_order_release);
        m.in_arena = false;
    }
    for (int fd : m.fds)
        ::close(fd);
    m.fds.clear();
    m.bytes = {};
}

bool channel::prepare_sleep() noexcept {
    in_ring().consumer_sleeping.store(1, std::memory_order_relaxed);
    // Mirror of wake_peer's fence: our flag store is ordered before our tail load.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (readable()) {
        in_ring().consumer_sleeping.store(0, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void channel::end_sleep(bool drain) noexcept {
    in_ring().consumer_sleeping.store(0, std::memory_order_relaxed);
    if (drain) drain_wake();
}

void channel::drain_wake() noexcept {
    // Each wake-up is one packet; a few reads empty the socket of an honest
    // peer (it sends at most one per sleep announcement).
    char buf[8];
    for (int i = 0; i < 16; ++i) {
        if (::recv(m_wake.get(), buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
    }
}

}  // namespace coexec::detail::proc
