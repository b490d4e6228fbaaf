// tests/fuzz/fuzz_channel.cpp — the parent side of a process channel, fed
// what a hostile worker can write: the shared header (ring indices, sleep
// flags, running id), the worker → parent ring's bytes, and packets of
// descriptors (memfds with any size and seals, pipes, empty packets) on its
// socket. The parent's consumer (try_receive / release, the sleep protocol)
// must never crash, hang, leak a descriptor or hand out bytes outside the
// ring or the payload's own mapping, whatever the input.
//
// Input: a sequence of steps, each an opcode byte and its operands (what is
// missing reads as zero):
//   0 off:u16 len:u8 bytes...   write bytes into the worker → parent ring
//   1 delta:u16                 publish tail = head seen + delta (mostly in range)
//   2 value:u64                 publish any tail
//   3 off:u16 len:u8 bytes...   write bytes into the header page
//   4 n:u8 kind:u8 size:u16     send a packet of n (0..4) descriptors of a kind:
//                               0 size-sealed memfd, 1 unsealed memfd, 2 pipe,
//                               3 spill-sealed memfd (also no writes), 4 arena (size KiB)
//   5 rounds:u8                 receive: try_receive / release, up to rounds + 1
//   6                           sleep protocol: prepare_sleep, end_sleep, drain_wake
//   7 id:u64                    publish a running id and read it back
// A record helper, opcode 8 kind:u16 flags:u16 size:u32 nfds:u32 id:u64,
// writes a well-formed record header at the current tail and advances the
// tail past it (with `size` payload bytes in the ring unless spilled), so
// the fuzzer reaches the checks behind the header's.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <system_error>
#include <vector>

#include "coexec/errors.hpp"
#include "process/channel.hpp"
#include "util/fd_passing.hpp"

using namespace coexec::detail;
using namespace coexec::detail::proc;

namespace {

constexpr std::size_t capacity = 4096;  // small: records wrap often

struct reader {
    const std::uint8_t* p;
    std::size_t n;
    bool empty() const { return n == 0; }
    std::uint64_t take(std::size_t bytes) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < bytes; ++i) {
            const std::uint64_t b = n != 0 ? *p : 0;
            if (n != 0) {
                ++p;
                --n;
            }
            v |= b << (8 * i);
        }
        return v;
    }
};

[[noreturn]] void fail(const char* what) {
    (void)what;
    __builtin_trap();
}

int make_fd(unsigned kind, std::size_t size) {
    if (kind == 2) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe");
        ::close(p[1]);
        return p[0];
    }
    const int fd = ::memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) fail("memfd_create (descriptors leaked?)");
    if (kind == 4) size = (size % 4096 + 1) * 1024;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) fail("ftruncate");
    int seals = 0;
    if (kind == 0 || kind == 4) seals = F_SEAL_SHRINK | F_SEAL_GROW;
    if (kind == 3) seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    if (seals != 0 && ::fcntl(fd, F_ADD_SEALS, seals) != 0) fail("seals");
    return fd;
}

// Every byte of a received message must lie in the ring or in a mapping of
// its own (spill or arena), and be readable.
void check_message(const channel& ch, const message& m) {
    const auto map = ch.mapping();
    const std::byte* ring = map.data() + ring_data_offset + ch.capacity();
    const bool in_ring =
        m.bytes.data() >= ring && m.bytes.data() + m.bytes.size() <= ring + ch.capacity();
    if (!in_ring && m.spill_map == nullptr && !m.in_arena && !m.bytes.empty())
        fail("message bytes outside the ring");
    if (m.spill_map != nullptr && m.bytes.size() > m.spill_len) fail("message past its spill");
    volatile std::uint8_t sum = 0;
    for (std::byte b : m.bytes)
        sum = static_cast<std::uint8_t>(sum + static_cast<std::uint8_t>(b));
    if (m.fds.size() > max_fds_per_message + 1) fail("too many descriptors held");
}

// The lowest free descriptor number: a descriptor leaked by one input shows
// as a higher number after it.
int lowest_free_fd() {
    const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) ::close(fd);
    return fd;
}

void run(const std::uint8_t* data, std::size_t size) {
    channel_fds worker;
    channel parent = channel::create(capacity, worker);
    // The worker's view of the shared memory, which the input writes.
    const std::size_t len = ring_data_offset + 2 * capacity;
    auto* shared = static_cast<std::byte*>(
        ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, worker.memfd.get(), 0));
    if (shared == MAP_FAILED) fail("mmap");
    auto* header = reinterpret_cast<channel_header*>(shared);
    std::byte* ring = shared + ring_data_offset + capacity;
    std::uint64_t tail = 0;  // where the input's records go

    reader in{data, size};
    message m;
    int steps = 0;
    while (!in.empty() && ++steps < 256) {
        switch (in.take(1) % 9) {
            case 0: {
                const std::size_t off = in.take(2) % capacity;
                std::size_t n = in.take(1);
                for (std::size_t i = 0; i < n && !in.empty(); ++i)
                    ring[(off + i) % capacity] = static_cast<std::byte>(in.take(1));
                break;
            }
            case 1:
                tail = header->to_parent.head.load() + in.take(2) % (2 * capacity);
                header->to_parent.tail.store(tail);
                break;
            case 2:
                tail = in.take(8);
                header->to_parent.tail.store(tail);
                break;
            case 3: {
                const std::size_t off = in.take(2) % ring_data_offset;
                const std::size_t n = in.take(1);
                for (std::size_t i = 0; i < n && !in.empty(); ++i)
                    shared[(off + i) % ring_data_offset] = static_cast<std::byte>(in.take(1));
                break;
            }
            case 4: {
                const unsigned n = static_cast<unsigned>(in.take(1) % 5);
                const unsigned kind = static_cast<unsigned>(in.take(1) % 5);
                const std::size_t bytes = in.take(2);
                int fds[4];
                for (unsigned i = 0; i < n; ++i)
                    fds[i] = make_fd(kind, bytes);
                const std::byte tag{'F'};
                send_packet(worker.socket.get(), {&tag, 1}, {fds, n}, MSG_DONTWAIT);
                for (unsigned i = 0; i < n; ++i)
                    ::close(fds[i]);
                break;
            }
            case 5: {
                const unsigned rounds = static_cast<unsigned>(in.take(1) % 8) + 1;
                for (unsigned r = 0; r < rounds; ++r) {
                    try {
                        if (!parent.try_receive(m)) break;
                        check_message(parent, m);
                        parent.release(m);
                    } catch (const protocol_violation&) {
                        parent.release(m);
                        if (!parent.poisoned()) fail("a violation that did not poison");
                        if (parent.try_receive(m) || parent.readable())
                            fail("poisoned yet readable");
                        break;
                    } catch (const std::system_error&) {
                        parent.release(m);
                        break;
                    } catch (const coexec::serialization_error&) {
                        parent.release(m);
                        break;
                    }
                }
                break;
            }
            case 6:
                if (parent.prepare_sleep()) parent.end_sleep(true);
                parent.drain_wake();
                break;
            case 7:
                header->running_id.store(in.take(8));
                (void)parent.running_id();
                break;
            case 8: {
                record rec{};
                rec.kind = static_cast<std::uint16_t>(in.take(2));
                rec.flags = static_cast<std::uint16_t>(in.take(2));
                rec.size = static_cast<std::uint32_t>(in.take(4));
                rec.nfds = static_cast<std::uint32_t>(in.take(4));
                rec.id = in.take(8);
                const bool spilled = (rec.flags & record_flag::spilled) != 0;
                if (!spilled) rec.size %= capacity;
                const std::size_t pos = tail % capacity;
                std::memcpy(ring + std::min(pos, capacity - sizeof rec), &rec, sizeof rec);
                tail += (sizeof rec + (spilled ? 0 : rec.size) + 7) & ~std::size_t{7};
                header->to_parent.tail.store(tail);
                break;
            }
        }
    }
    ::munmap(shared, len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const int free_before = lowest_free_fd();
    run(data, size);
    if (lowest_free_fd() != free_before) fail("a descriptor leaked");
    return 0;
}
