// coexec/detail/codec/remote_call.hpp — how a call crosses a process boundary.
//
// A process worker runs the same program image as the caller, so a task is
// sent as: which function (a module-relative code address, or nothing for a
// captureless lambda, which the worker default-constructs), then its encoded
// arguments. The worker runs remote_invoke<F, Args...> — a per-type
// trampoline — which decodes them, calls F and encodes a status byte plus the
// result or the exception. map() sends a chunk of inputs the same way
// (encode_chunk / remote_invoke_chunk).
//
// check_remote_callable gives the one readable compile error for a call that
// cannot be sent (tests/compile_fail checks its wording).
//
// Thread safety: all functions here are reentrant.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/detail/codec/traits.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/detail/invoke.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"

namespace coexec::detail {

template <class F>
inline constexpr bool is_function_pointer_v =
    std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

/// Captureless lambdas and other stateless function objects: not sent at all,
/// default-constructed in the worker.
template <class F>
inline constexpr bool is_stateless_callable_v =
    std::is_class_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F>;

template <class F>
inline constexpr bool is_sendable_callable_v =
    is_function_pointer_v<F> || is_stateless_callable_v<F> || is_serializable_v<F>;

// Callables whose first parameter is std::stop_token (the rule of
// detail/invoke.hpp) get the token of this thread's remote call: an inert one
// in a process worker (a process task is cancelled by killing its worker, not
// cooperatively); under mpi_pool's thread isolation the rank's job sets its
// own token (remote_stop_scope), which a cancel from rank 0 signals.
inline thread_local std::stop_token t_remote_stop;

/// Makes `token` the one remote calls on this thread get, for a scope.
class remote_stop_scope {
  public:
    explicit remote_stop_scope(std::stop_token token) noexcept
        : m_previous(std::exchange(t_remote_stop, std::move(token))) {}
    remote_stop_scope(const remote_stop_scope&) = delete;
    remote_stop_scope& operator=(const remote_stop_scope&) = delete;
    ~remote_stop_scope() { t_remote_stop = std::move(m_previous); }

  private:
    std::stop_token m_previous;
};
template <class F, class... Args>
struct remote_call_traits {
    static constexpr bool invocable = is_callable_v<F&, Args...>;
};

// A callable returning task<U> runs its coroutine to the end in the worker
// (sync_wait: the worker's thread drives it) and sends U, as thread_pool
// gives a future<U> for it.
template <class F, class... Args>
decltype(auto) invoke_remote(F& f, Args&&... args) {
    using called = decltype(invoke_with_token(f, t_remote_stop, std::forward<Args>(args)...));
    if constexpr (is_task_v<std::remove_cvref_t<called>>) {
        return sync_wait(invoke_with_token(f, t_remote_stop, std::forward<Args>(args)...));
    } else {
        return invoke_with_token(f, t_remote_stop, std::forward<Args>(args)...);
    }
}

template <class F, class... Args>
struct remote_result {
    using type = void;
};
template <class F, class... Args>
    requires remote_call_traits<F, Args...>::invocable
struct remote_result<F, Args...> {
    using type =
        std::remove_cvref_t<decltype(invoke_remote(std::declval<F&>(), std::declval<Args>()...))>;
};

/// What the caller receives for F(Args...) run remotely (decayed: a value is
/// sent back, never a reference). F and Args are the decayed types.
template <class F, class... Args>
using remote_result_t = typename remote_result<std::decay_t<F>, std::decay_t<Args>...>::type;

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};

// For map: a tuple element is spread over the parameters, anything else is
// the single argument.
template <class F, class Arg>
struct chunk_result {
    using type = remote_result_t<F, Arg>;
};
template <class F, class... Ts>
struct chunk_result<F, std::tuple<Ts...>> {
    using type = remote_result_t<F, Ts...>;
};
/// The per-element result of remote_invoke_chunk<F, Arg>.
template <class F, class Arg>
using chunk_result_t = typename chunk_result<std::decay_t<F>, std::decay_t<Arg>>::type;

template <class T>
inline constexpr bool dependent_false = false;

template <class T>
consteval void require_serializable_argument() {
    if constexpr (!is_serializable_v<T>) reject_argument_type<culprit_t<T>, T>();
}

template <class R>
consteval void require_serializable_result() {
    if constexpr (!is_serializable_v<R>) reject_result_type<culprit_t<R>, R>();
}

/// Compile-time checks for sending F(Args...) to a process worker, in this
/// order, stopping at the first failure so that one readable error is shown:
/// the callable kind, each argument type, invocability, the result type.
/// F and Args may be given undecayed (as deduced by submit).
template <class F, class... Args>
consteval void check_remote_callable() {
    using Fn = std::decay_t<F>;
    if constexpr (!is_sendable_callable_v<Fn>) {
        static_assert(dependent_false<F>,
                      "coexec::process_pool: the callable must be a function pointer, a "
                      "captureless lambda or a serializable function object (a capturing "
                      "lambda's captures cannot be sent to another process)");
    } else if constexpr (!all_serializable<std::decay_t<Args>...>) {
        (require_serializable_argument<std::decay_t<Args>>(), ...);
    } else if constexpr (!remote_call_traits<Fn, std::decay_t<Args>...>::invocable) {
        static_assert(dependent_false<F>,
                      "coexec::process_pool: the callable cannot be invoked with these "
                      "arguments (after decay: they are sent by value)");
    } else {
        require_serializable_result<remote_result_t<F, Args...>>();
    }
}

template <class F, class... Args>
inline constexpr bool is_remote_callable_v =
    is_sendable_callable_v<std::decay_t<F>> && all_serializable<std::decay_t<Args>...> &&
    remote_call_traits<std::decay_t<F>, std::decay_t<Args>...>::invocable &&
    is_serializable_v<remote_result_t<F, Args...>>;

template <class Fn>
void encode_callable(byte_writer& w, const Fn& f) {
    if constexpr (is_function_pointer_v<Fn>) {
        // bit_cast: converting a function pointer to void* is only conditionally supported.
        encode(w, encode_code_address(std::bit_cast<const void*>(f)));
    } else if constexpr (is_stateless_callable_v<Fn>) {
        // Nothing to send: the worker default-constructs the same closure type.
    } else {
        encode(w, f);
    }
}

template <class Fn>
Fn decode_callable(byte_reader& r) {
    if constexpr (is_function_pointer_v<Fn>) {
        return std::bit_cast<Fn>(decode_code_address(decode<std::uint64_t>(r)));
    } else if constexpr (is_stateless_callable_v<Fn>) {
        return Fn{};
    } else {
        return decode<Fn>(r);
    }
}

/// A C string argument (a string literal, a char pointer) travels as a
/// std::string: the pointer means nothing in another process, its characters
/// do. Every other argument travels as its decayed type.
template <class A>
inline constexpr bool is_c_string_v =
    std::is_same_v<std::decay_t<A>, const char*> || std::is_same_v<std::decay_t<A>, char*>;
template <class A>
using wire_arg_t = std::conditional_t<is_c_string_v<A>, std::string, std::decay_t<A>>;
/// The argument as it is encoded (see wire_arg_t). Throws
/// std::invalid_argument for a null char pointer.
template <class A>
decltype(auto) to_wire_arg(const A& a) {
    if constexpr (is_c_string_v<A>) {
        if constexpr (std::is_pointer_v<A>) {
            if (a == nullptr)
                throw std::invalid_argument(
                    "coexec: a null char pointer cannot be sent as a string");
        }
        return std::string(a);
    } else {
        return (a);
    }
}

/// Caller side: writes what remote_invoke<decay_t<F>, decay_t<Args>...> reads.
/// Throws what encode throws.
template <class F, class... Args>
void encode_call(byte_writer& w, const F& f, const Args&... args) {
    check_remote_callable<F, Args...>();
    if constexpr (is_remote_callable_v<F, Args...>) {
        encode_callable<std::decay_t<F>>(w, f);
        encode(w, static_cast<const std::decay_t<Args>&>(args)...);
    }
}

/// Worker side: the trampoline. Reads the callable and the arguments from
/// `in`, calls, and appends to `out` a status byte (0: value, 1: exception)
/// then the encoded result (nothing for void) or the encoded exception.
/// Never throws for a failure of the task or of decoding (those are encoded);
/// only if encoding the exception itself fails (std::bad_alloc).
template <class F, class... Args>
void remote_invoke(byte_reader& in, byte_writer& out) {
    check_remote_callable<F, Args...>();
    if constexpr (is_remote_callable_v<F, Args...>) {
        using Fn = std::decay_t<F>;
        using R = remote_result_t<F, Args...>;
        encode_outcome<R>(out, [&]() -> decltype(auto) {
            Fn f = decode_callable<Fn>(in);
            // Braced initialization evaluates left to right: arguments decode in order.
            std::tuple<std::decay_t<Args>...> args{decode<std::decay_t<Args>>(in)...};
            return std::apply([&](auto&... a) -> R { return invoke_remote(f, std::move(a)...); },
                              args);
        });
    }
}

template <class Fn, class Arg>
decltype(auto) invoke_element(Fn& f, Arg&& element) {
    if constexpr (is_tuple<std::decay_t<Arg>>::value) {
        return std::apply(
            [&](auto&&... a) -> decltype(auto) { return invoke_remote(f, std::move(a)...); },
            element);
    } else {
        return invoke_remote(f, std::move(element));
    }
}

template <class F, class Arg>
inline constexpr bool is_remote_chunk_callable_v = false;
template <class F, class Arg>
    requires(!is_tuple<std::decay_t<Arg>>::value)
inline constexpr bool is_remote_chunk_callable_v<F, Arg> = is_remote_callable_v<F, Arg>;
template <class F, class... Ts>
inline constexpr bool is_remote_chunk_callable_v<F, std::tuple<Ts...>> =
    is_remote_callable_v<F, Ts...>;

template <class F, class Arg>
consteval void check_remote_chunk_callable() {
    if constexpr (is_tuple<std::decay_t<Arg>>::value) {
        []<class... Ts>(std::type_identity<std::tuple<Ts...>>) {
            check_remote_callable<F, Ts...>();
        }(std::type_identity<std::decay_t<Arg>>{});
    } else {
        check_remote_callable<F, Arg>();
    }
}

/// Caller side of map: writes what remote_invoke_chunk<decay_t<F>, Arg> reads.
template <class F, class Arg>
void encode_chunk(byte_writer& w, const F& f, const std::vector<Arg>& elements) {
    check_remote_chunk_callable<F, Arg>();
    if constexpr (is_remote_chunk_callable_v<std::decay_t<F>, Arg>) {
        encode_callable<std::decay_t<F>>(w, f);
        encode(w, elements);
    }
}

/// Worker side of map: reads the callable then a std::vector<Arg>, calls F on
/// each element (a std::tuple element is applied as the argument list) and
/// writes a status byte: 0 then the count and, per element, status + value or
/// exception, so one failure does not lose the others; or 1 then one
/// exception if the chunk itself could not be decoded.
template <class F, class Arg>
void remote_invoke_chunk(byte_reader& in, byte_writer& out) {
    check_remote_chunk_callable<F, Arg>();
    if constexpr (is_remote_chunk_callable_v<std::decay_t<F>, Arg>) {
        using Fn = std::decay_t<F>;
        using R = chunk_result_t<F, Arg>;
        const auto mark = out.position();
        std::vector<Arg> elements;
        std::optional<Fn> f;
        try {
            f.emplace(decode_callable<Fn>(in));
            elements = decode<std::vector<Arg>>(in);
        } catch (...) {
            out.rollback(mark);
            out.put(status_exception);
            encode_exception(out, std::current_exception());
            return;
        }
        out.put(status_value);
        out.put_u64(elements.size());
        if constexpr (bitwise_serializable<R>) {
            encode_bitwise_outcomes<R>(out, elements, [&](Arg& element) {
                return R(invoke_element(*f, std::move(element)));
            });
        } else {
            for (auto& element : elements) {
                encode_outcome<R>(out, [&]() -> decltype(auto) {
                    if constexpr (std::is_void_v<R>) {
                        invoke_element(*f, std::move(element));
                    } else {
                        return R(invoke_element(*f, std::move(element)));
                    }
                });
            }
        }
    }
}

}  // namespace coexec::detail
