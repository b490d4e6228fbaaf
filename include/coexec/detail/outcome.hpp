// coexec/detail/outcome.hpp — the result of one task: a value, an exception, or nothing yet.
//
// Used where many results travel together (a map chunk): one failing element
// is stored as its exception_ptr so the others are not lost.
// Not synchronized: an outcome is filled by one thread and then handed over.
#pragma once

#include <exception>
#include <stdexcept>
#include <utility>
#include <variant>

namespace coexec::detail {

/// Holds R, an exception, or (default) nothing.
template <class R>
class outcome {
  public:
    template <class... A>
    void set_value(A&&... value) {
        result.template emplace<1>(std::forward<A>(value)...);
    }
    void set_exception(std::exception_ptr e) noexcept { result.template emplace<2>(std::move(e)); }

    bool has_value() const noexcept { return result.index() == 1; }
    bool has_exception() const noexcept { return result.index() == 2; }

    /// The value; only valid if has_value().
    R& value() & noexcept { return *std::get_if<1>(&result); }
    /// The exception; null unless has_exception().
    std::exception_ptr exception() const noexcept {
        auto* e = std::get_if<2>(&result);
        return e != nullptr ? *e : nullptr;
    }

    /// Moves the value out, or rethrows the stored exception.
    /// Throws std::logic_error if the outcome was never filled (a coexec bug).
    R get() && {
        if (auto* value = std::get_if<1>(&result)) return std::move(*value);
        if (auto* error = std::get_if<2>(&result)) std::rethrow_exception(*error);
        throw std::logic_error("coexec::detail::outcome::get: the outcome holds no result");
    }

  private:
    std::variant<std::monostate, R, std::exception_ptr> result;
};

/// For void tasks only failure carries data: a null `error` means success.
template <>
class outcome<void> {
  public:
    void set_value() noexcept { error = nullptr; }
    void set_exception(std::exception_ptr e) noexcept { error = std::move(e); }

    bool has_value() const noexcept { return !error; }
    bool has_exception() const noexcept { return static_cast<bool>(error); }
    std::exception_ptr exception() const noexcept { return error; }

    /// Returns, or rethrows the stored exception.
    void get() && {
        if (error) std::rethrow_exception(error);
    }

  private:
    std::exception_ptr error;
};

/// Runs `produce()` and stores what it returns, or the exception it throws.
template <class R, class Produce>
void capture_outcome(outcome<R>& out, Produce&& produce) noexcept {
    try {
        if constexpr (std::is_void_v<R>) {
            std::forward<Produce>(produce)();
            out.set_value();
        } else {
            out.set_value(std::forward<Produce>(produce)());
        }
    } catch (...) {
        out.set_exception(std::current_exception());
    }
}

}  // namespace coexec::detail
