// coexec/detail/outcome.hpp — the result of one task: a value, an exception, or nothing yet.
//
// Used where many results travel together (a process_pool::map chunk): one
// failing element is stored as its exception_ptr so the others are not lost.
// Not synchronized: an outcome is filled by one thread and then handed over.
#pragma once

#include <exception>
#include <stdexcept>
#include <utility>
#include <variant>

namespace coexec::detail {

/// Holds R, an exception, or (default) nothing. Index 1 is the value, 2 the exception.
template <class R>
struct outcome {
    std::variant<std::monostate, R, std::exception_ptr> result;

    bool has_value() const noexcept { return result.index() == 1; }
    bool has_exception() const noexcept { return result.index() == 2; }

    /// Moves the value out, or rethrows the stored exception.
    /// Throws std::logic_error if the outcome was never filled (a coexec bug).
    R get() && {
        if (auto* value = std::get_if<1>(&result)) return std::move(*value);
        if (auto* error = std::get_if<2>(&result)) std::rethrow_exception(*error);
        throw std::logic_error("coexec::detail::outcome::get: the outcome holds no result");
    }
};

/// For void tasks only failure carries data: a null `error` means success.
template <>
struct outcome<void> {
    std::exception_ptr error;

    bool has_value() const noexcept { return !error; }
    bool has_exception() const noexcept { return static_cast<bool>(error); }

    /// Returns, or rethrows the stored exception.
    void get() && {
        if (error) std::rethrow_exception(error);
    }
};

}  // namespace coexec::detail
