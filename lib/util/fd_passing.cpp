#include "util/fd_passing.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/system_error.hpp"

namespace coexec::detail {

namespace {
// Room for the largest packet's descriptors (a stack buffer: no allocation).
constexpr std::size_t control_bytes = CMSG_SPACE(sizeof(int) * max_fds_per_packet);
}  // namespace

ssize_t send_packet(int socket, std::span<const std::byte> bytes, std::span<const int> fds,
                    int flags) noexcept {
    if (fds.size() > max_fds_per_packet) {
        errno = EINVAL;
        return -1;
    }
    iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
    alignas(cmsghdr) char control[control_bytes];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t r;
    do {
        r = ::sendmsg(socket, &msg, flags | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r;
}

ssize_t recv_packet(int socket, std::span<std::byte> bytes, std::span<int> fds, std::size_t& nfds,
                    int flags) noexcept {
    nfds = 0;
    const std::size_t room = std::min(fds.size(), max_fds_per_packet);
    iovec iov{bytes.data(), bytes.size()};
    alignas(cmsghdr) char control[control_bytes];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (room != 0) {
        msg.msg_control = control;
        // The kernel drops (and flags with MSG_CTRUNC) what does not fit here.
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * room);
    }
    ssize_t r;
    do {
        r = ::recvmsg(socket, &msg, flags | MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return r;
    bool overflow = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char* data = CMSG_DATA(c);
        for (std::size_t i = 0; i < n; ++i) {
            int fd;
            std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
            // CMSG_SPACE rounds up, so the kernel may fit one more than `room`.
            if (nfds < room) {
                fds[nfds++] = fd;
            } else {
                ::close(fd);
                overflow = true;
            }
        }
    }
    if (overflow) {
        for (std::size_t i = 0; i < nfds; ++i)
            ::close(fds[i]);
        nfds = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return r;
}

void send_fds(int socket, std::span<const int> fds, int flags) {
    // One byte per packet: the receiver tells a packet from a hang-up.
    const std::byte tag{'F'};
    while (!fds.empty()) {
        const std::size_t n = std::min(fds.size(), max_fds_per_packet);
        if (send_packet(socket, {&tag, 1}, fds.first(n), flags) < 0)
            throw_errno("sendmsg(SCM_RIGHTS)");
        fds = fds.subspan(n);
    }
}

void recv_fds(int socket, std::size_t count, std::vector<int>& out, int flags) {
    int fds[max_fds_per_packet];
    std::size_t wanted = count;
    while (wanted != 0) {
        std::byte tag;
        std::size_t n = 0;
        const ssize_t r = recv_packet(
            socket, {&tag, 1}, std::span(fds, std::min(wanted, max_fds_per_packet)), n, flags);
        if (r < 0) throw_errno("recvmsg(SCM_RIGHTS)");
        if (r == 0) throw_system_error(EPIPE, "recvmsg(SCM_RIGHTS)");
        if (n == 0) throw_system_error(EPROTO, "recvmsg(SCM_RIGHTS): a packet without descriptors");
        out.insert(out.end(), fds, fds + n);
        wanted -= n;
    }
}

}  // namespace coexec::detail
