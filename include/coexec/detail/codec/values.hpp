// coexec/detail/codec/values.hpp — encoding values and task results.
//
// encode/decode turn serializable values into bytes and back: values for
// which every bit pattern is valid (bitwise_serializable, type_rules.hpp) are
// copied as bytes, everything else goes through the cereal archive, which
// checks what it reads (archive.hpp). A task's result travels as a status
// byte then the value or the exception; a map chunk's as one such outcome per
// element.
//
// Thread safety: all functions here are reentrant.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <complex>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "coexec/detail/codec/archive.hpp"
#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/detail/codec/traits.hpp"
#include "coexec/detail/outcome.hpp"
#include "coexec/errors.hpp"

namespace coexec::detail {

template <class T>
void encode_one(byte_writer& w, binary_output_archive* ar, const T& value) {
    if constexpr (bitwise_serializable<T>) {
        w.write(std::addressof(value), sizeof(T));
    } else {
        (*ar)(value);
    }
}

/// Appends the encoding of each value, in order. Throws serialization_error
/// (e.g. a shared_buffer and no fds vector), std::bad_alloc, or whatever a
/// user serialize() throws; on throw, the writer may hold a partial encoding
/// (use byte_writer::position/rollback to undo it).
template <class... Ts>
void encode(byte_writer& w, const Ts&... values) {
    (require_serializable<Ts>(), ...);
    if constexpr ((bitwise_serializable<Ts> && ...)) {
        (encode_one(w, nullptr, values), ...);
    } else {
        binary_output_archive ar(w);
        (encode_one(w, &ar, values), ...);
    }
}

/// Reads one T written by encode. A bitwise_serializable T need not be
/// default constructible; other types must be. Throws serialization_error
/// when the input is truncated or malformed (a count larger than the bytes
/// left, a bool that is not 0 or 1, a variant index out of range, ...), or
/// whatever a user load()/serialize() throws.
template <class T>
T decode(byte_reader& r) {
    require_serializable<T>();
    if constexpr (std::is_void_v<T>) {
        return;
    } else if constexpr (bitwise_serializable<T>) {
        std::array<std::byte, sizeof(T)> raw;
        r.read(raw.data(), raw.size());
        return std::bit_cast<T>(raw);
    } else {
        static_assert(std::is_default_constructible_v<T>,
                      "coexec: a type that is not copied as bytes must be default "
                      "constructible to be decoded");
        binary_input_archive ar(r);
        T value{};
        try {
            ar(value);
        } catch (const cereal::Exception& e) {
            throw serialization_error(std::string("coexec: cannot decode a value: ") + e.what());
        }
        return value;
    }
}

// ---------------------------------------------------------------------------
// Task results
// ---------------------------------------------------------------------------

inline constexpr std::uint8_t status_value = 0;
inline constexpr std::uint8_t status_exception = 1;

// Runs `produce` and appends status + result; if anything throws (including
// encoding the result), rolls back and appends status + exception instead.
template <class R, class Produce>
void encode_outcome(byte_writer& out, Produce&& produce) {
    const auto mark = out.position();
    try {
        if constexpr (std::is_void_v<R>) {
            std::forward<Produce>(produce)();
            out.put(status_value);
        } else {
            decltype(auto) result = std::forward<Produce>(produce)();
            out.put(status_value);
            encode(out, static_cast<const R&>(result));
        }
    } catch (...) {
        out.rollback(mark);
        out.put(status_exception);
        encode_exception(out, std::current_exception());
    }
}

/// encode_outcome for each element of a map chunk whose results are copied
/// as bytes, written in place: the room for every outcome is made at once,
/// and each is a status byte and the value's bytes, with no call into the
/// vector per element. (perf of a map of `x * x` over 200k longs on 2
/// workers: growing the vector 8 and 1 bytes at a time, zero-filling each
/// step, was ~60% of a worker's cycles.) An element that throws has its
/// exception encoded aside and copied into the room, which grows by half
/// when it runs out, so time stays in proportion to the chunk's bytes. (A
/// first version gave the room back at each exception and zero-filled it
/// again: 20k throwing elements of 256 bytes took 12x encode_outcome's
/// time.) The bytes are exactly encode_outcome's
/// (tests/codec/test_codec_calls.cpp compares them).
template <class R, class Elements, class Invoke>
void encode_bitwise_outcomes(byte_writer& out, Elements& elements, Invoke&& invoke) {
    static_assert(bitwise_serializable<R>);
    constexpr std::size_t each = 1 + sizeof(R);
    std::vector<std::byte>& bytes = out.bytes();
    std::size_t at = bytes.size();
    bytes.resize(at + elements.size() * each);
    auto make_room = [&](std::size_t n) {
        if (bytes.size() - at < n) bytes.resize(std::max(at + n, bytes.size() + bytes.size() / 2));
    };
    std::vector<std::byte> aside;
    for (auto& element : elements) {
        try {
            const R value = invoke(element);
            make_room(each);
            bytes[at] = static_cast<std::byte>(status_value);
            std::memcpy(bytes.data() + at + 1, std::addressof(value), sizeof(R));
            at += each;
        } catch (...) {
            aside.clear();
            byte_writer w(aside, out.fds());
            w.put(status_exception);
            encode_exception(w, std::current_exception());
            make_room(aside.size());
            std::memcpy(bytes.data() + at, aside.data(), aside.size());
            at += aside.size();
        }
    }
    bytes.resize(at);
}

/// Caller side: returns the result written by remote_invoke, or rethrows the
/// task's exception (re-created by decode_exception). Throws
/// serialization_error on malformed input.
template <class R>
R decode_result(byte_reader& in) {
    const std::uint8_t status = in.get();
    if (status == status_exception) std::rethrow_exception(decode_exception(in));
    if (status != status_value) {
        throw serialization_error("coexec: malformed task result (status byte " +
                                  std::to_string(status) + ")");
    }
    return decode<R>(in);
}

/// The leading run of values among a map chunk's outcomes written by
/// encode_bitwise_outcomes, read in place into `into`: stops at the first
/// status byte that is not status_value (an exception, or malformed input,
/// for the caller to read) or where the input ends. Returns how many.
template <class R>
std::size_t decode_bitwise_values(byte_reader& in, std::span<outcome<R>> into) {
    constexpr std::size_t each = 1 + sizeof(R);
    const std::span<const std::byte> rest = in.rest();
    const std::size_t room = std::min(into.size(), rest.size() / each);
    std::size_t n = 0;
    for (; n < room; ++n) {
        const std::byte* at = rest.data() + n * each;
        if (*at != static_cast<std::byte>(status_value)) break;
        std::array<std::byte, sizeof(R)> raw;
        std::memcpy(raw.data(), at + 1, sizeof(R));
        into[n].set_value(std::bit_cast<R>(raw));
    }
    (void)in.take(n * each);
    return n;
}

/// Caller side of map: the outcomes written by remote_invoke_chunk, one per
/// element sent (`expected` of them). If the worker could not decode the
/// chunk, every element holds that exception. Throws serialization_error on
/// malformed input or a count other than `expected`.
template <class R>
std::vector<outcome<R>> decode_chunk_result(byte_reader& in, std::size_t expected) {
    std::vector<outcome<R>> outcomes(expected);
    const std::uint8_t status = in.get();
    auto store_exception = [](outcome<R>& o, std::exception_ptr e) {
        o.set_exception(std::move(e));
    };
    if (status == status_exception) {
        auto e = decode_exception(in);
        for (auto& o : outcomes)
            store_exception(o, e);
        return outcomes;
    }
    if (status != status_value) {
        throw serialization_error("coexec: malformed map chunk result (status byte " +
                                  std::to_string(status) + ")");
    }
    const std::uint64_t count = in.get_u64();
    if (count != expected) {
        throw serialization_error("coexec: a map chunk returned " + std::to_string(count) +
                                  " results for " + std::to_string(expected) + " inputs");
    }
    for (std::size_t i = 0; i < outcomes.size();) {
        if constexpr (!std::is_void_v<R> && bitwise_serializable<R>) {
            i += decode_bitwise_values(in, std::span<outcome<R>>(outcomes).subspan(i));
            if (i == outcomes.size()) break;
        }
        outcome<R>& o = outcomes[i++];
        const std::uint8_t s = in.get();
        if (s == status_exception) {
            store_exception(o, decode_exception(in));
        } else if (s != status_value) {
            throw serialization_error("coexec: malformed map element result (status byte " +
                                      std::to_string(s) + ")");
        } else if constexpr (!std::is_void_v<R>) {
            o.set_value(decode<R>(in));
        }
    }
    return outcomes;
}

}  // namespace coexec::detail
