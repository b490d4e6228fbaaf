// lib/mpi/environment.cpp — MPI start-up, the start-up check, and shut-down.
#include "mpi/environment.hpp"

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "coexec/detail/codec/module_identity.hpp"
#include "coexec/errors.hpp"
#include "mpi/handshake.hpp"
#include "mpi/link.hpp"
#include "mpi/protocol.hpp"

namespace coexec {
namespace {

using detail::mpi::check;

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
    return buf;
}

const char* level_name(int level) {
    switch (level) {
        case MPI_THREAD_SINGLE:
            return "MPI_THREAD_SINGLE";
        case MPI_THREAD_FUNNELED:
            return "MPI_THREAD_FUNNELED";
        case MPI_THREAD_SERIALIZED:
            return "MPI_THREAD_SERIALIZED";
        case MPI_THREAD_MULTIPLE:
            return "MPI_THREAD_MULTIPLE";
    }
    return "an unknown thread level";
}

// Rank 0: the first reason to refuse the job, or "" to accept it.
std::string judge(const std::vector<detail::mpi::rank_identity>& ranks) {
    std::string reason;
    int differing = 0;
    for (std::size_t r = 0; r < ranks.size(); ++r) {
        std::string why;
        // One progress thread (not the main thread) makes the pool's MPI calls.
        if (ranks[r].thread_level < MPI_THREAD_SERIALIZED) {
            why = "rank " + std::to_string(r) + " (host " + ranks[r].host + ") got " +
                  level_name(ranks[r].thread_level) +
                  " from MPI_Init_thread; mpi_pool needs MPI_THREAD_SERIALIZED or more";
        } else if (r != 0) {
            why = detail::mpi::describe_mismatch(ranks[0], static_cast<int>(r), ranks[r]);
        }
        if (why.empty()) continue;
        if (differing++ == 0) reason = std::move(why);
    }
    if (differing == 2) reason += " (and 1 more rank differs)";
    if (differing > 2) reason += " (and " + std::to_string(differing - 1) + " more ranks differ)";
    return reason;
}

}  // namespace

mpi_environment::mpi_environment() : m_impl(std::make_unique<impl>()) {
    start(nullptr, nullptr);
}

mpi_environment::mpi_environment(int& argc, char**& argv) : m_impl(std::make_unique<impl>()) {
    start(&argc, &argv);
}

void mpi_environment::start(int* argc, char*** argv) {
    // What this rank runs, taken before MPI_Init loads the MPI's plugins
    // (which may legitimately differ between hosts).
    detail::mpi::rank_identity me;
    me.modules = detail::loaded_modules();
    me.pid = static_cast<long>(::getpid());
    me.host = host_name();
    // Isolated workers on this rank are forked from a fork server made now,
    // while the program is single-threaded (MPI_Init starts threads).
    (void)process_pool::prepare();

    int initialized = 0;
    check(MPI_Initialized(&initialized), "MPI_Initialized");
    if (initialized != 0) {
        check(MPI_Query_thread(&me.thread_level), "MPI_Query_thread");
    } else {
        check(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &me.thread_level),
              "MPI_Init_thread");
        m_impl->owns_mpi = true;
    }
    m_impl->thread_level = me.thread_level;
    check(MPI_Comm_dup(MPI_COMM_WORLD, &m_impl->comm), "MPI_Comm_dup");
    check(MPI_Comm_rank(m_impl->comm, &m_impl->rank), "MPI_Comm_rank");
    check(MPI_Comm_size(m_impl->comm, &m_impl->size), "MPI_Comm_size");

    // The start-up check: every identity to rank 0, its verdict to all.
    const std::vector<std::byte> mine = detail::mpi::encode_identity(me);
    int my_size = static_cast<int>(mine.size());
    const bool root = m_impl->rank == 0;
    std::vector<int> sizes(root ? static_cast<std::size_t>(m_impl->size) : 0);
    check(MPI_Gather(&my_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, m_impl->comm),
          "MPI_Gather");
    std::vector<int> offsets(sizes.size());
    std::size_t total = 0;
    for (std::size_t r = 0; r < sizes.size(); ++r) {
        offsets[r] = static_cast<int>(total);
        total += static_cast<std::size_t>(sizes[r]);
    }
    std::vector<std::byte> all(total);
    check(MPI_Gatherv(mine.data(), my_size, MPI_BYTE, all.data(), sizes.data(), offsets.data(),
                      MPI_BYTE, 0, m_impl->comm),
          "MPI_Gatherv");
    std::string reason;
    if (root) {
        std::vector<detail::mpi::rank_identity> ranks(sizes.size());
        for (std::size_t r = 0; r < sizes.size(); ++r) {
            try {
                ranks[r] = detail::mpi::decode_identity(std::span<const std::byte>(all).subspan(
                    static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(sizes[r])));
            } catch (const std::exception& e) {
                reason = "rank " + std::to_string(r) + " sent a malformed identity: " + e.what();
            }
        }
        if (reason.empty()) reason = judge(ranks);
    }
    int refused = reason.empty() ? 0 : 1;
    check(MPI_Bcast(&refused, 1, MPI_INT, 0, m_impl->comm), "MPI_Bcast");
    if (refused == 0) return;

    // Refused: end MPI on every rank now, so that nothing waits on anything.
    m_impl->refused = true;
    MPI_Comm_free(&m_impl->comm);
    if (m_impl->owns_mpi) MPI_Finalize();
    if (root) throw error("coexec::mpi_environment: the job was refused: " + reason);
}

mpi_environment::~mpi_environment() {
    if (m_impl->refused) return;
    if (m_impl->rank == 0) {
        // Release the worker ranks from serve(). Errors cannot be reported from
        // a destructor; MPI aborts the job on its own if a rank is gone.
        detail::mpi::link l(m_impl->comm);
        for (int r = 1; r < m_impl->size; ++r) {
            try {
                l.send_now(r, detail::mpi::tag_exit, {});
            } catch (...) {
            }
        }
    }
    MPI_Comm_free(&m_impl->comm);
    if (m_impl->owns_mpi) MPI_Finalize();
}

int mpi_environment::rank() const noexcept {
    return m_impl->rank;
}

int mpi_environment::size() const noexcept {
    return m_impl->size;
}

int mpi_environment::serve() {
    if (m_impl->refused) return 1;
    if (m_impl->rank == 0) {
        throw error(
            "coexec::mpi_environment::serve: rank 0 runs the program; only worker ranks "
            "serve (call it when is_worker())");
    }
    return detail::mpi::serve(m_impl->comm, m_impl->thread_level >= MPI_THREAD_MULTIPLE);
}

}  // namespace coexec
