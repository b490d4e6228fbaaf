#include "coexec/detail/codec/exceptions.hpp"

#include <cxxabi.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <ios>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <typeinfo>
#include <utility>
#include <variant>

#include "coexec/errors.hpp"
#include "util/demangle.hpp"

namespace coexec::detail {

namespace {

// Wire tags. Append only: both ends are the same binary, but keep them stable anyway.
enum class exc : std::uint8_t {
    std_exception,
    logic_error,
    invalid_argument,
    domain_error,
    length_error,
    out_of_range,
    runtime_error,
    range_error,
    overflow_error,
    underflow_error,
    bad_alloc,
    bad_array_new_length,
    bad_cast,
    bad_typeid,
    bad_function_call,
    bad_optional_access,
    bad_variant_access,
    bad_exception,
    system_error,
    ios_failure,
    filesystem_error,
    coexec_error,
    cancelled_error,
    timeout_error,
    executor_shutdown,
    worker_died,
    broken_pool,
    deadline_exceeded,
    remote_error,
    serialization_error,
    unknown,  // anything else: becomes remote_error
    future_error,
    no_state,
    registered,  // a type registered with coexec::register_exception
};

enum class category_id : std::uint8_t { generic, system, iostream, future };

// Used when a standard exception's what() cannot be reproduced through its
// public constructors (a library-internal message, or a user subclass): same
// catchable base, same what().
template <class E>
class with_what : public E {
  public:
    template <class... A>
    explicit with_what(std::string what, A&&... args)
        : E(std::forward<A>(args)...), m_what(std::move(what)) {}
    const char* what() const noexcept override { return m_what.c_str(); }

  private:
    std::string m_what;
};

// Exceptions whose what() is fixed by the library: the exact type when the
// message matches, otherwise the same type with its message kept.
template <class E>
std::exception_ptr make_fixed(const std::string& what) {
    E plain;
    if (what == plain.what()) return std::make_exception_ptr(plain);
    return std::make_exception_ptr(with_what<E>(what));
}

void put_tag(byte_writer& w, exc tag) {
    w.put(static_cast<std::uint8_t>(tag));
}

void put_what(byte_writer& w, exc tag, const std::exception& e) {
    put_tag(w, tag);
    w.put_string(e.what());
}

void put_code(byte_writer& w, const std::error_code& ec) {
    // Only categories that exist in every process can be re-created; any other
    // keeps its value under the generic category (what() is kept verbatim anyway).
    category_id cat = category_id::generic;
    if (ec.category() == std::system_category()) {
        cat = category_id::system;
    } else if (ec.category() == std::iostream_category()) {
        cat = category_id::iostream;
    } else if (ec.category() == std::future_category()) {
        cat = category_id::future;
    }
    w.put(static_cast<std::uint8_t>(cat));
    w.put_u64(static_cast<std::uint64_t>(static_cast<std::int64_t>(ec.value())));
}

std::error_code get_code(byte_reader& r) {
    const auto cat = static_cast<category_id>(r.get());
    const int value = static_cast<int>(static_cast<std::int64_t>(r.get_u64()));
    switch (cat) {
        case category_id::generic:
            return {value, std::generic_category()};
        case category_id::system:
            return {value, std::system_category()};
        case category_id::iostream:
            return {value, std::iostream_category()};
        case category_id::future:
            return {value, std::future_category()};
    }
    throw serialization_error("coexec: malformed error category in an encoded exception");
}

// system_error's what() is "<what_arg>: <message>" (or just the message), so the
// prefix is recovered by stripping the suffix. Returns nullopt if it does not fit.
std::optional<std::string> what_arg_of(const std::string& what, const std::error_code& ec) {
    const std::string suffix = ": " + ec.message();
    if (what.size() >= suffix.size() &&
        what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return what.substr(0, what.size() - suffix.size());
    }
    return std::nullopt;
}

std::exception_ptr make_system_error(const std::string& what, const std::error_code& ec) {
    if (auto arg = what_arg_of(what, ec)) {
        std::system_error e(ec, *arg);
        if (what == e.what()) return std::make_exception_ptr(e);
    }
    std::system_error bare(ec);
    if (what == bare.what()) return std::make_exception_ptr(bare);
    return std::make_exception_ptr(with_what<std::system_error>(what, ec));
}

std::exception_ptr make_ios_failure(const std::string& what, const std::error_code& ec) {
    if (auto arg = what_arg_of(what, ec)) {
        std::ios_base::failure e(*arg, ec);
        if (what == e.what()) return std::make_exception_ptr(e);
    }
    return std::make_exception_ptr(with_what<std::ios_base::failure>(what, what, ec));
}

std::exception_ptr make_filesystem_error(const std::string& what, const std::error_code& ec,
                                         const std::string& p1, const std::string& p2) {
    // libstdc++ formats "filesystem error: <arg>: <message> [p1] [p2]"; recover <arg>
    // and check by rebuilding; fall back to a system_error with the same what().
    std::string rest = what;
    const std::string prefix = "filesystem error: ";
    if (rest.rfind(prefix, 0) == 0) rest.erase(0, prefix.size());
    for (const std::string* p : {&p2, &p1}) {
        if (p->empty()) continue;
        const std::string tail = " [" + *p + "]";
        if (rest.size() >= tail.size() &&
            rest.compare(rest.size() - tail.size(), tail.size(), tail) == 0) {
            rest.erase(rest.size() - tail.size());
        }
    }
    if (auto arg = what_arg_of(rest, ec)) {
        std::filesystem::filesystem_error e(*arg, p1, p2, ec);
        if (what == e.what()) return std::make_exception_ptr(e);
    }
    return make_system_error(what, ec);
}

// The registry of user exception types: a list that only grows, pushed with a
// compare-and-swap and read without a lock, so a worker forked while another
// thread was registering still reads a consistent list.
struct codec_node {
    exception_codec codec;
    const codec_node* next;
};
std::atomic<const codec_node*> g_codecs{nullptr};

const exception_codec* find_codec(const char* type_name) {
    for (auto* n = g_codecs.load(std::memory_order_acquire); n; n = n->next) {
        if (std::strcmp(n->codec.type_name, type_name) == 0) return &n->codec;
    }
    return nullptr;
}

// Writes `e` as a registered type if its exact dynamic type is registered.
// On failure (a member that cannot be encoded) the writer is rolled back and
// the caller falls back to the standard mapping.
bool encode_if_registered(byte_writer& w, const std::exception_ptr& e) {
    if (!g_codecs.load(std::memory_order_acquire)) return false;
    const std::type_info* type = nullptr;
    try {
        std::rethrow_exception(e);
    } catch (...) {
        type = abi::__cxa_current_exception_type();
    }
    const exception_codec* codec = type ? find_codec(type->name()) : nullptr;
    if (!codec) return false;
    const auto mark = w.position();
    try {
        w.put(static_cast<std::uint8_t>(exc::registered));
        w.put_string(codec->type_name);
        codec->encode(w, e);
        return true;
    } catch (...) {
        w.rollback(mark);
        return false;
    }
}

}  // namespace

void register_exception_codec(const exception_codec& codec) {
    if (find_codec(codec.type_name)) return;
    // Two threads registering the same type at once may both add it: harmless.
    auto* node = new codec_node{codec, g_codecs.load(std::memory_order_relaxed)};
    while (!g_codecs.compare_exchange_weak(node->next, node, std::memory_order_release,
                                           std::memory_order_relaxed)) {
    }
}

std::string current_exception_type_name() {
    const std::type_info* type = abi::__cxa_current_exception_type();
    return type ? demangle(type->name()) : std::string("(unknown)");
}

void encode_exception(byte_writer& w, std::exception_ptr e) {
    if (!e) throw serialization_error("coexec: encode_exception was given a null exception_ptr");
    // Catch clauses run most-derived first, so each exception is recorded as the
    // closest type we can re-create; a user subclass of a standard exception
    // arrives as that standard type (same catch clauses keep working).
    // A registered user type goes first, as itself.
    if (encode_if_registered(w, e)) return;
    try {
        std::rethrow_exception(e);
    } catch (const cancelled_error& x) {
        put_what(w, exc::cancelled_error, x);
    } catch (const timeout_error& x) {
        put_what(w, exc::timeout_error, x);
    } catch (const executor_shutdown& x) {
        put_what(w, exc::executor_shutdown, x);
    } catch (const worker_died& x) {
        put_tag(w, exc::worker_died);
        w.put_u64(static_cast<std::uint64_t>(static_cast<std::int64_t>(x.pid())));
        w.put_u64(static_cast<std::uint64_t>(static_cast<std::int64_t>(x.signal())));
        w.put_u64(static_cast<std::uint64_t>(static_cast<std::int64_t>(x.exit_code())));
        w.put_string(x.task());
        w.put_string(x.cause());
    } catch (const broken_pool& x) {
        put_what(w, exc::broken_pool, x);
    } catch (const deadline_exceeded& x) {
        put_what(w, exc::deadline_exceeded, x);
    } catch (const remote_error& x) {
        // Keep the original type name and message (a worker's worker, or a re-send).
        put_tag(w, exc::remote_error);
        w.put_string(x.type_name());
        w.put_string(x.original_what());
    } catch (const serialization_error& x) {
        put_what(w, exc::serialization_error, x);
    } catch (const no_state& x) {
        put_what(w, exc::no_state, x);
    } catch (const coexec::error& x) {
        put_what(w, exc::coexec_error, x);
    } catch (const std::ios_base::failure& x) {
        put_what(w, exc::ios_failure, x);
        put_code(w, x.code());
    } catch (const std::filesystem::filesystem_error& x) {
        put_what(w, exc::filesystem_error, x);
        put_code(w, x.code());
        w.put_string(x.path1().native());
        w.put_string(x.path2().native());
    } catch (const std::system_error& x) {
        put_what(w, exc::system_error, x);
        put_code(w, x.code());
    } catch (const std::future_error& x) {
        put_what(w, exc::future_error, x);
        put_code(w, x.code());
    } catch (const std::invalid_argument& x) {
        put_what(w, exc::invalid_argument, x);
    } catch (const std::domain_error& x) {
        put_what(w, exc::domain_error, x);
    } catch (const std::length_error& x) {
        put_what(w, exc::length_error, x);
    } catch (const std::out_of_range& x) {
        put_what(w, exc::out_of_range, x);
    } catch (const std::logic_error& x) {
        put_what(w, exc::logic_error, x);
    } catch (const std::range_error& x) {
        put_what(w, exc::range_error, x);
    } catch (const std::overflow_error& x) {
        put_what(w, exc::overflow_error, x);
    } catch (const std::underflow_error& x) {
        put_what(w, exc::underflow_error, x);
    } catch (const std::runtime_error& x) {
        put_what(w, exc::runtime_error, x);
    } catch (const std::bad_array_new_length& x) {
        put_what(w, exc::bad_array_new_length, x);
    } catch (const std::bad_alloc& x) {
        put_what(w, exc::bad_alloc, x);
    } catch (const std::bad_cast& x) {
        put_what(w, exc::bad_cast, x);
    } catch (const std::bad_typeid& x) {
        put_what(w, exc::bad_typeid, x);
    } catch (const std::bad_function_call& x) {
        put_what(w, exc::bad_function_call, x);
    } catch (const std::bad_optional_access& x) {
        put_what(w, exc::bad_optional_access, x);
    } catch (const std::bad_variant_access& x) {
        put_what(w, exc::bad_variant_access, x);
    } catch (const std::bad_exception& x) {
        put_what(w, exc::bad_exception, x);
    } catch (const std::exception& x) {
        if (typeid(x) == typeid(std::exception)) {
            put_what(w, exc::std_exception, x);
        } else {
            put_tag(w, exc::unknown);
            w.put_string(current_exception_type_name());
            w.put_string(x.what());
        }
    } catch (...) {
        put_tag(w, exc::unknown);
        w.put_string(current_exception_type_name());
        w.put_string("(not a std::exception)");
    }
}

std::exception_ptr decode_exception(byte_reader& r) {
    const auto tag = static_cast<exc>(r.get());
    auto what = [&] { return r.get_string(); };
    switch (tag) {
        case exc::std_exception:
            (void)what();
            return std::make_exception_ptr(std::exception());
        case exc::logic_error:
            return std::make_exception_ptr(std::logic_error(what()));
        case exc::invalid_argument:
            return std::make_exception_ptr(std::invalid_argument(what()));
        case exc::domain_error:
            return std::make_exception_ptr(std::domain_error(what()));
        case exc::length_error:
            return std::make_exception_ptr(std::length_error(what()));
        case exc::out_of_range:
            return std::make_exception_ptr(std::out_of_range(what()));
        case exc::runtime_error:
            return std::make_exception_ptr(std::runtime_error(what()));
        case exc::range_error:
            return std::make_exception_ptr(std::range_error(what()));
        case exc::overflow_error:
            return std::make_exception_ptr(std::overflow_error(what()));
        case exc::underflow_error:
            return std::make_exception_ptr(std::underflow_error(what()));
        case exc::bad_alloc:
            return make_fixed<std::bad_alloc>(what());
        case exc::bad_array_new_length:
            return make_fixed<std::bad_array_new_length>(what());
        case exc::bad_cast:
            return make_fixed<std::bad_cast>(what());
        case exc::bad_typeid:
            return make_fixed<std::bad_typeid>(what());
        case exc::bad_function_call:
            return make_fixed<std::bad_function_call>(what());
        case exc::bad_optional_access:
            return make_fixed<std::bad_optional_access>(what());
        case exc::bad_variant_access:
            return make_fixed<std::bad_variant_access>(what());
        case exc::bad_exception:
            return make_fixed<std::bad_exception>(what());
        case exc::system_error: {
            std::string w = what();
            return make_system_error(w, get_code(r));
        }
        case exc::ios_failure: {
            std::string w = what();
            return make_ios_failure(w, get_code(r));
        }
        case exc::filesystem_error: {
            std::string w = what();
            std::error_code ec = get_code(r);
            std::string p1 = r.get_string();
            std::string p2 = r.get_string();
            return make_filesystem_error(w, ec, p1, p2);
        }
        case exc::future_error: {
            std::string w = what();
            const std::error_code ec = get_code(r);
            if (ec.category() == std::future_category()) {
                std::future_error e(static_cast<std::future_errc>(ec.value()));
                if (w == e.what()) return std::make_exception_ptr(e);
            }
            return std::make_exception_ptr(std::logic_error(w));
        }
        case exc::coexec_error:
            return std::make_exception_ptr(coexec::error(what()));
        case exc::cancelled_error:
            return std::make_exception_ptr(cancelled_error(what()));
        case exc::timeout_error:
            return std::make_exception_ptr(timeout_error(what()));
        case exc::executor_shutdown:
            return std::make_exception_ptr(executor_shutdown(what()));
        case exc::worker_died: {
            const auto pid = static_cast<int>(static_cast<std::int64_t>(r.get_u64()));
            const auto sig = static_cast<int>(static_cast<std::int64_t>(r.get_u64()));
            const auto code = static_cast<int>(static_cast<std::int64_t>(r.get_u64()));
            std::string task = r.get_string();
            return std::make_exception_ptr(worker_died(pid, sig, code, task, r.get_string()));
        }
        case exc::broken_pool:
            return std::make_exception_ptr(broken_pool(what()));
        case exc::deadline_exceeded:
            return std::make_exception_ptr(deadline_exceeded(what()));
        case exc::serialization_error:
            return std::make_exception_ptr(serialization_error(what()));
        case exc::no_state:
            return std::make_exception_ptr(no_state(what()));
        case exc::registered: {
            std::string type_name = r.get_string();
            if (const exception_codec* codec = find_codec(type_name.c_str())) {
                try {
                    return codec->decode(r);
                } catch (const serialization_error&) {
                    throw;
                } catch (const std::exception& x) {  // the type's constructor refused the input
                    throw serialization_error("coexec: cannot re-create " +
                                              demangle(type_name.c_str()) + ": " + x.what());
                }
            }
            // Registered in the worker only: the name and what() still tell the user.
            std::string original = r.get_string();
            (void)r.get_string();  // the members
            return std::make_exception_ptr(remote_error(demangle(type_name.c_str()), original));
        }
        case exc::remote_error:
        case exc::unknown: {
            std::string type_name = r.get_string();
            std::string original = r.get_string();
            return std::make_exception_ptr(remote_error(std::move(type_name), original));
        }
    }
    throw serialization_error("coexec: malformed encoded exception (unknown tag " +
                              std::to_string(static_cast<int>(tag)) + ")");
}

}  // namespace coexec::detail
