// lib/util/fd_passing.hpp — sending descriptors over a unix socket.
//
// The one implementation of descriptor passing: the process channel sends a
// message's descriptors (shared_buffers, spill and arena memfds) this way,
// and the fork server receives a worker's channel and answers with a pidfd.
// Every received descriptor is close-on-exec, and a receiver never ends up
// holding descriptors it did not make room for: a packet that brings more
// (or more bytes than fit) fails with EMSGSIZE and its descriptors are
// closed. That matters because the peer may be a worker running untrusted
// code.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <vector>

namespace coexec::detail {

/// Most descriptors one packet carries (the kernel's SCM_MAX_FD is 253).
inline constexpr std::size_t max_fds_per_packet = 250;

/// Sends one packet: `bytes` (not empty) and at most max_fds_per_packet
/// descriptors, which the kernel duplicates into the socket. `flags` are
/// sendmsg's (MSG_DONTWAIT...); MSG_NOSIGNAL is always added, EINTR retried.
/// Returns the bytes sent, or -1 with errno (EINVAL: too many descriptors).
/// Never throws, allocates nothing: the fork server's loop uses it.
ssize_t send_packet(int socket, std::span<const std::byte> bytes, std::span<const int> fds,
                    int flags = 0) noexcept;

/// Receives one packet into `bytes`, and its descriptors (close-on-exec)
/// into `fds`, at most min(fds.size(), max_fds_per_packet); `nfds` says how
/// many (owned by the caller). EINTR is retried. Returns the bytes received
/// (0: the peer hung up), or -1 with errno; EMSGSIZE if the packet had more
/// bytes or descriptors than room (all of its descriptors are then closed).
ssize_t recv_packet(int socket, std::span<std::byte> bytes, std::span<int> fds, std::size_t& nfds,
                    int flags = 0) noexcept;

/// Sends `fds` alone, in as many packets as they need. `flags` as sendmsg's
/// (MSG_DONTWAIT: fail with EAGAIN rather than wait for a reader). Throws
/// std::system_error (EPIPE: the peer is gone).
void send_fds(int socket, std::span<const int> fds, int flags = 0);

/// Receives descriptors sent by send_fds until `out` holds `count` more
/// (they are appended, owned by the caller, also when this throws).
/// `flags` as recvmsg's (MSG_DONTWAIT: fail with EAGAIN rather than wait).
/// Throws std::system_error: EPIPE if the peer hung up, EMSGSIZE if it sent
/// more than `count`, EPROTO for a packet without descriptors (so a peer
/// cannot keep the receiver looping on empty packets).
void recv_fds(int socket, std::size_t count, std::vector<int>& out, int flags = 0);

}  // namespace coexec::detail
