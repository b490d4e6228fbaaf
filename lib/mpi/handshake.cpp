#include "mpi/handshake.hpp"

#include <algorithm>
#include <string_view>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/errors.hpp"

namespace coexec::detail::mpi {
namespace {

std::string describe(const module_id& m) {
    return m.path + (m.build_id.empty() ? " (no build-id)" : " (build-id " + m.build_id + ")");
}

std::string_view file_name(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool same_module(const module_id& a, const module_id& b) {
    // By content; a module without a build-id can only be matched by its path.
    if (!a.build_id.empty() || !b.build_id.empty()) return a.build_id == b.build_id;
    return a.path == b.path;
}

const module_id* find_same(const std::vector<module_id>& list, const module_id& m) {
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const module_id& x) { return same_module(x, m); });
    return it == list.end() ? nullptr : &*it;
}

const module_id* find_named(const std::vector<module_id>& list, const module_id& m) {
    auto it = std::find_if(list.begin(), list.end(), [&](const module_id& x) {
        return file_name(x.path) == file_name(m.path);
    });
    return it == list.end() ? nullptr : &*it;
}

}  // namespace

std::vector<std::byte> encode_identity(const rank_identity& id) {
    std::vector<std::byte> out;
    byte_writer w(out);
    w.put_u64(static_cast<std::uint64_t>(id.thread_level));
    w.put_u64(static_cast<std::uint64_t>(id.pid));
    w.put_string(id.host);
    w.put_u64(id.modules.size());
    for (const auto& m : id.modules) {
        w.put_string(m.path);
        w.put_string(m.build_id);
    }
    return out;
}

rank_identity decode_identity(std::span<const std::byte> bytes) {
    byte_reader r(bytes);
    rank_identity id;
    id.thread_level = static_cast<int>(r.get_u64());
    id.pid = static_cast<long>(r.get_u64());
    id.host = r.get_string();
    const std::uint64_t n = r.get_u64();
    // Each module takes at least 16 bytes: a bound before reserving anything.
    if (n > r.remaining() / 16) throw serialization_error("coexec: malformed rank identity");
    id.modules.resize(n);
    for (auto& m : id.modules) {
        m.path = r.get_string();
        m.build_id = r.get_string();
    }
    return id;
}

std::string describe_mismatch(const rank_identity& rank0, int rank, const rank_identity& other) {
    const std::string who = "rank " + std::to_string(rank) + " (host " + other.host + ", pid " +
                            std::to_string(other.pid) + ")";
    const std::string ref = "rank 0 (host " + rank0.host + ")";
    if (rank0.modules.empty() || other.modules.empty()) {
        return who + " reported no loaded modules";
    }
    if (!same_module(rank0.modules[0], other.modules[0])) {
        return who + " runs " + describe(other.modules[0]) + " but " + ref + " runs " +
               describe(rank0.modules[0]) + ": every rank must run the same program";
    }
    for (std::size_t i = 1; i < rank0.modules.size(); ++i) {
        const module_id& m = rank0.modules[i];
        if (find_same(other.modules, m) != nullptr) continue;
        if (const module_id* named = find_named(other.modules, m)) {
            return who + " loads " + describe(*named) + " where " + ref + " loads " + describe(m) +
                   ": every rank must load the same libraries";
        }
        return who + " lacks " + describe(m) + ", which " + ref +
               " loads: every rank must load the same libraries";
    }
    for (std::size_t i = 1; i < other.modules.size(); ++i) {
        const module_id& m = other.modules[i];
        if (find_same(rank0.modules, m) == nullptr) {
            return who + " also loads " + describe(m) + ", which " + ref +
                   " does not: every rank must load the same libraries";
        }
    }
    return {};
}

}  // namespace coexec::detail::mpi
