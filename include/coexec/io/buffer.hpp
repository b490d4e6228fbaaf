// coexec/io/buffer.hpp — views of memory handed to read/write/recv/send.
//
// Like Asio's buffers: non-owning (the memory must outlive the operation,
// which it does when the operation is co_awaited in the same expression),
// implicitly made from any contiguous range of trivially copyable elements
// (std::vector<char>, std::string, std::array<std::byte, N>, std::span...).
#pragma once

#include <cstddef>
#include <ranges>
#include <type_traits>

namespace coexec::io {

/// Writable memory: what read and recv fill.
struct mutable_buffer {
    void* data = nullptr;
    std::size_t size = 0;

    mutable_buffer() = default;
    mutable_buffer(void* d, std::size_t n) noexcept : data(d), size(n) {}
    template <class R>
        requires std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                     (!std::is_const_v<
                         std::remove_reference_t<std::ranges::range_reference_t<R>>>) &&
                     std::is_trivially_copyable_v<std::ranges::range_value_t<R>>
    mutable_buffer(R&& r) noexcept  // NOLINT(google-explicit-constructor): a view, like span
        : data(std::ranges::data(r)),
          size(std::ranges::size(r) * sizeof(std::ranges::range_value_t<R>)) {}
};

/// Readable memory: what write and send take.
struct const_buffer {
    const void* data = nullptr;
    std::size_t size = 0;

    const_buffer() = default;
    const_buffer(const void* d, std::size_t n) noexcept : data(d), size(n) {}
    const_buffer(mutable_buffer b) noexcept : data(b.data), size(b.size) {}  // NOLINT
    template <class R>
        requires std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                     std::is_trivially_copyable_v<std::ranges::range_value_t<R>>
    const_buffer(R&& r) noexcept  // NOLINT(google-explicit-constructor)
        : data(std::ranges::data(r)),
          size(std::ranges::size(r) * sizeof(std::ranges::range_value_t<R>)) {}
};

}  // namespace coexec::io
