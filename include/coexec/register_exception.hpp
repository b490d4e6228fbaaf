// coexec/register_exception.hpp — a user exception type that crosses a
// process boundary as itself.
//
//   struct http_error : std::runtime_error {
//       using std::runtime_error::runtime_error;
//       int status = 0;
//       template <class Ar> void serialize(Ar& ar) { ar(status); }
//   };
//   COEXEC_REGISTER_EXCEPTION(http_error);   // at namespace scope, once
//
// A registered type thrown in a process_pool (or mpi_pool) worker arrives in
// the caller as that type: re-created from its what(), then its members read
// back when it has a cereal-style serialize (or save/load). An unregistered
// type keeps the standard mapping (its standard base, or remote_error), and so
// does a subclass of a registered type that is not registered itself: only
// the exact dynamic type is matched.
//
// @par When to register
// Any use of register_exception<E>() in the program, even one that never
// runs, registers E before main in every process started from the binary
// (parent, forked and re-executed workers), so workers know it too. Calling it
// is idempotent and thread-safe. One limit: a start_method::spawn worker is
// taken over during libcoexec's own static initialization, so it knows the
// types registered by translation units initialized before that (objects
// linked ahead of a static libcoexec, the usual order); with a shared
// libcoexec a spawn worker's exception of a registered type keeps the
// standard mapping. Fork-server and fork workers always know them.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "coexec/detail/codec/values.hpp"
#include "coexec/errors.hpp"

namespace coexec {
namespace detail {

template <class E>
void encode_registered(byte_writer& w, const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const E& x) {
        w.put_string(x.what());
        std::vector<std::byte> members;
        if constexpr (cereal_knows<E>) {
            byte_writer mw(members);  // no descriptors: a shared_buffer member does not fit
            binary_output_archive ar(mw);
            ar(x);
        }
        w.put_string(
            std::string_view(reinterpret_cast<const char*>(members.data()), members.size()));
    }
}

template <class E>
E make_registered(std::string what) {
    if constexpr (std::is_constructible_v<E, std::string>) {
        return E(std::move(what));
    } else if constexpr (std::is_constructible_v<E, const char*>) {
        return E(what.c_str());
    } else {
        return E();
    }
}

// A default-made E lost the message: put it back in its standard base (the
// one what() reads unless E overrides it).
template <class E>
void restore_message(E& x, const std::string& what) {
    if constexpr (!std::is_constructible_v<E, std::string> &&
                  !std::is_constructible_v<E, const char*>) {
        if constexpr (std::derived_from<E, std::runtime_error>) {
            static_cast<std::runtime_error&>(x) = std::runtime_error(what);
        } else if constexpr (std::derived_from<E, std::logic_error>) {
            static_cast<std::logic_error&>(x) = std::logic_error(what);
        }
    }
}

template <class E>
std::exception_ptr decode_registered(byte_reader& r) {
    std::string what = r.get_string();
    E x = make_registered<E>(what);
    restore_message(x, what);
    std::string members = r.get_string();
    if constexpr (cereal_knows<E>) {
        byte_reader mr(std::as_bytes(std::span(members.data(), members.size())));
        try {
            binary_input_archive ar(mr);
            ar(x);
        } catch (const cereal::Exception& ex) {
            throw serialization_error(std::string("coexec: cannot decode the members of ") +
                                      typeid(E).name() + ": " + ex.what());
        }
    }
    return std::make_exception_ptr(std::move(x));
}

template <class E>
void add_exception_codec() {
    register_exception_codec({typeid(E).name(), &encode_registered<E>, &decode_registered<E>});
}

// Registers E during static initialization of every process running the
// binary: instantiated by any use of register_exception<E>().
template <class E>
struct exception_registrar {
    static inline const bool registered = (add_exception_codec<E>(), true);
};

}  // namespace detail

/// Registers `E` so that a process worker's `throw E(...)` arrives as `E`.
/// Requirements (checked at compile time): `E` derives from std::exception, is
/// copy constructible, and is constructible from a std::string (its what()), a
/// `const char*`, or by default. Thread-safe; idempotent.
template <class E>
void register_exception() {
    static_assert(std::is_class_v<E> && std::derived_from<E, std::exception>,
                  "coexec::register_exception<E>: E must derive from std::exception");
    static_assert(
        std::is_copy_constructible_v<E>,
        "coexec::register_exception<E>: E must be copy constructible (as any thrown type)");
    static_assert(std::is_constructible_v<E, std::string> ||
                      std::is_constructible_v<E, const char*> || std::is_default_constructible_v<E>,
                  "coexec::register_exception<E>: E must be constructible from a std::string "
                  "(its what()), a const char*, or by default, to be re-created in the caller");
    (void)detail::exception_registrar<E>::registered;
    detail::add_exception_codec<E>();  // in case this runs before static initialization did
}

}  // namespace coexec

#define COEXEC_DETAIL_CAT2(a, b) a##b
#define COEXEC_DETAIL_CAT(a, b) COEXEC_DETAIL_CAT2(a, b)

/// At namespace scope: `COEXEC_REGISTER_EXCEPTION(my_error);` registers the
/// type before main (see coexec::register_exception). The expansion is a
/// whole declaration, so the `;` after it may be left out (like Boost's
/// and cereal's registration macros); with it, it is an empty declaration.
#define COEXEC_REGISTER_EXCEPTION(...)                                                 \
    [[maybe_unused]] static const bool COEXEC_DETAIL_CAT(coexec_registered_exception_, \
                                                         __COUNTER__) =                \
        (::coexec::register_exception<__VA_ARGS__>(), true);
