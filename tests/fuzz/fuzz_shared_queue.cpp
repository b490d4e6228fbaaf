// fuzz_shared_queue — a shared_queue's byte level (detail::shm_queue) over
// memory a hostile process controls: the input is the block (header and
// slots) and then a script of operations, some of which overwrite parts of
// the block between two operations, as a concurrent writer would.
//
// Invariants: no crash, no access outside the block (ASan), no undefined
// behaviour (UBSan), only serialization_error escapes, a pop yields at most
// slot_bytes bytes, size() never exceeds the capacity.
//
// Input layout:
//   byte 0      capacity - 1       (1..16)
//   byte 1      slot_bytes         (0..255)
//   byte 2      bit 0: adopt the block as received (its header decides the
//               geometry, if it matches the block), else use ours
//   then        bytes_for(capacity, slot_bytes) bytes: the block's contents
//   then        the script: one opcode byte and its operands at a time
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "coexec/detail/process_sync.hpp"
#include "coexec/errors.hpp"

namespace {

using coexec::detail::shm_queue;

class input {
  public:
    input(const std::uint8_t* d, std::size_t n) : m_d(d), m_n(n) {}
    bool empty() const { return m_at >= m_n; }
    std::uint8_t byte() { return m_at < m_n ? m_d[m_at++] : 0; }
    std::span<const std::uint8_t> take(std::size_t n) {
        n = std::min(n, m_n - std::min(m_at, m_n));
        std::span<const std::uint8_t> s(m_d + m_at, n);
        m_at += n;
        return s;
    }

  private:
    const std::uint8_t* m_d;
    std::size_t m_n;
    std::size_t m_at = 0;
};

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    input in(data, size);
    const std::size_t capacity = static_cast<std::size_t>(in.byte() % 16) + 1;
    const std::size_t slot_bytes = in.byte();
    const bool adopt = (in.byte() & 1) != 0;
    const std::size_t bytes = shm_queue::bytes_for(capacity, slot_bytes);

    // Exactly the block's size, so ASan reports any access past it.
    std::vector<std::byte> block(bytes);
    auto contents = in.take(bytes);
    std::memcpy(block.data(), contents.data(), contents.size());
    auto* header = reinterpret_cast<coexec::detail::shm_queue_header*>(block.data());

    shm_queue::geometry g{capacity, slot_bytes};
    if (adopt) {
        try {
            g = shm_queue::adopt(block.data(), block.size());
        } catch (const coexec::serialization_error&) {
            return 0;
        }
        check(shm_queue::bytes_for(g.capacity, g.slot_bytes) == block.size());
    }
    shm_queue q(block.data(), g);

    std::vector<std::byte> item, out;
    while (!in.empty()) {
        // A lock word naming a live thread (ours, pid 1) would make the
        // operation wait out its lock patience: the lock's own takeover rules
        // are tested elsewhere, here it is free before each operation.
        header->lock = 0;
        const std::uint8_t op = in.byte();
        try {
            switch (op % 5) {
                case 0: {  // push an item of the given length
                    item.assign(in.byte(), std::byte{0x5a});
                    const bool fits = item.size() <= g.slot_bytes;
                    try {
                        (void)q.push(item, coexec::detail::shm_clock::now());
                        check(fits);
                    } catch (const coexec::serialization_error&) {
                    }
                    break;
                }
                case 1:  // pop (try_pop: no waiting for an item)
                    if (q.pop(out, coexec::detail::shm_clock::now()))
                        check(out.size() <= g.slot_bytes);
                    break;
                case 2:
                    check(q.size() <= g.capacity);
                    break;
                case 3: {  // a hostile write: offset (2 bytes), length, bytes
                    std::size_t at = in.byte();
                    at = (at | std::size_t{in.byte()} << 8) % block.size();
                    auto patch = in.take(std::min<std::size_t>(in.byte(), block.size() - at));
                    std::memcpy(block.data() + at, patch.data(), patch.size());
                    break;
                }
                default: {  // a hostile write of one 64-bit header field
                    const std::size_t field = 24 + 8 * (in.byte() % 5);
                    std::uint64_t v = 0;
                    auto raw = in.take(sizeof v);
                    std::memcpy(&v, raw.data(), raw.size());
                    std::memcpy(block.data() + field, &v, sizeof v);
                    break;
                }
            }
        } catch (const coexec::serialization_error&) {
            // A corrupt header or item: the documented outcome.
        }
    }
    return 0;
}
