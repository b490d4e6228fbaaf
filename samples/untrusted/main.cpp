// samples/untrusted — run code you do not trust: an expression evaluator fed
// hostile input, in process workers with limits and sandbox::compute.
//
// The evaluator (below) stands for any user-supplied code: a plugin, a
// parser of uploaded files, a script compiled to native code. It has the
// usual weaknesses: a recursive-descent parser (deep nesting overflows its
// stack), sum_to(n) materialises n numbers (a huge n exhausts memory),
// fib(n) is exponential (a large n never ends), and include("path") reads a
// number from a file (a way out to the file system). Each hostile input
// fails its own future with a clear error, and the host carries on:
//
//   stack overflow      → worker_died (SIGSEGV)
//   huge allocation     → std::bad_alloc              (limits.memory)
//   endless computation → worker_died naming the cpu_time limit (limits.cpu_time)
//   reading a file      → std::system_error, EPERM    (sandbox::compute)
//
//   untrusted                 the built-in list of inputs
//   untrusted EXPR...         your own expressions
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "coexec/process_pool.hpp"

namespace {

// ---------------------------------------------------------------------------
// The untrusted code: a small evaluator of arithmetic expressions.
//   expr   := term (('+' | '-') term)*
//   term   := factor (('*' | '/') factor)*
//   factor := number | '(' expr ')' | '-' factor | name '(' argument ')'
// ---------------------------------------------------------------------------

class evaluator {
  public:
    explicit evaluator(const std::string& text) : m_text(text) {}

    double run() {
        const double v = expr();
        skip_space();
        if (m_pos != m_text.size()) fail("unexpected '" + std::string(1, m_text[m_pos]) + "'");
        return v;
    }

  private:
    double expr() {
        double v = term();
        for (;;) {
            if (eat('+')) {
                v += term();
            } else if (eat('-')) {
                v -= term();
            } else {
                return v;
            }
        }
    }

    double term() {
        double v = factor();
        for (;;) {
            if (eat('*')) {
                v *= factor();
            } else if (eat('/')) {
                v /= factor();
            } else {
                return v;
            }
        }
    }

    double factor() {
        if (eat('(')) {  // recursion per parenthesis: no depth limit
            const double v = expr();
            expect(')');
            return v;
        }
        if (eat('-')) return -factor();
        skip_space();
        if (m_pos < m_text.size() && std::isalpha(static_cast<unsigned char>(m_text[m_pos]))) {
            return call();
        }
        return number();
    }

    double call() {
        std::string name;
        while (m_pos < m_text.size() &&
               (std::isalnum(static_cast<unsigned char>(m_text[m_pos])) || m_text[m_pos] == '_'))
            name += m_text[m_pos++];
        expect('(');
        double result = 0;
        if (name == "include") {
            result = include(string_literal());
        } else {
            const double x = expr();
            if (name == "sum_to") {
                result = sum_to(x);
            } else if (name == "fib") {
                result = fib(static_cast<long>(x));
            } else {
                fail("unknown function " + name);
            }
        }
        expect(')');
        return result;
    }

    static double sum_to(double n) {
        std::vector<double> values(static_cast<std::size_t>(n));  // no size limit
        std::iota(values.begin(), values.end(), 0.0);
        return std::accumulate(values.begin(), values.end(), 0.0);
    }

    static double fib(long n) { return n < 2 ? static_cast<double>(n) : fib(n - 1) + fib(n - 2); }

    static double include(const std::string& path) {
        std::FILE* f = std::fopen(path.c_str(), "r");
        if (f == nullptr) {
            throw std::system_error(errno, std::generic_category(), "include(\"" + path + "\")");
        }
        double v = 0;
        const int n = std::fscanf(f, "%lf", &v);
        std::fclose(f);
        if (n != 1) fail("include: " + path + " does not start with a number");
        return v;
    }

    double number() {
        skip_space();
        const char* begin = m_text.c_str() + m_pos;
        char* end = nullptr;
        const double v = std::strtod(begin, &end);
        if (end == begin) fail("expected a number");
        m_pos += static_cast<std::size_t>(end - begin);
        return v;
    }

    std::string string_literal() {
        expect('"');
        std::string s;
        while (m_pos < m_text.size() && m_text[m_pos] != '"')
            s += m_text[m_pos++];
        expect('"');
        return s;
    }

    void skip_space() {
        while (m_pos < m_text.size() && std::isspace(static_cast<unsigned char>(m_text[m_pos])))
            ++m_pos;
    }
    bool eat(char c) {
        skip_space();
        if (m_pos < m_text.size() && m_text[m_pos] == c) {
            ++m_pos;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c)) fail(std::string("expected '") + c + "'");
    }
    [[noreturn]] static void fail(const std::string& why) { throw std::invalid_argument(why); }

    const std::string& m_text;
    std::size_t m_pos = 0;
};

// What the pool runs: a plain function, so it can be sent to a worker.
double evaluate(std::string expression) {
    return evaluator(expression).run();
}

// ---------------------------------------------------------------------------
// The host
// ---------------------------------------------------------------------------

std::string shorten(const std::string& s) {
    if (s.size() <= 48) return s;
    return s.substr(0, 20) + "..." + s.substr(s.size() - 20) + " (" + std::to_string(s.size()) +
           " characters)";
}

std::vector<std::string> hostile_inputs() {
    const std::size_t depth = 1'000'000;
    return {
        "1 + 2 * (3 - 4) / 8",
        std::string(depth, '(') + "1" + std::string(depth, ')'),  // stack overflow
        "sum_to(4e9)",                                            // 32 GB of doubles
        "fib(100)",                                               // 2^69 calls
        "include(\"/etc/passwd\")",                               // the file system
        "sum_to(1e6) / fib(20)",                                  // fine again
    };
}

}  // namespace

int main(int argc, char** argv) {
    coexec::process_pool::prepare();  // the fork server, while single-threaded

    std::vector<std::string> inputs;
    for (int i = 1; i < argc; ++i)
        inputs.emplace_back(argv[i]);
    if (inputs.empty()) inputs = hostile_inputs();

    coexec::process_pool pool{{
        .max_workers = 2,
        .limits = {.memory = std::size_t{512} << 20,  // address space per worker
                   .cpu_time = std::chrono::seconds{2},
                   .open_files = 16},
        .sandbox = coexec::sandbox::compute,
    }};
    std::printf(
        "untrusted: %zu expressions, each in a sandboxed worker "
        "(memory 512 MiB, cpu_time 2 s, no files, sockets or programs)\n",
        inputs.size());

    std::vector<coexec::future<double>> results;
    for (const auto& e : inputs)
        results.push_back(pool.submit(evaluate, e));

    int values = 0;
    int errors = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        std::printf("[%zu] %s\n", i + 1, shorten(inputs[i]).c_str());
        try {
            std::printf("    = %g\n", results[i].get());
            ++values;
        } catch (const coexec::worker_died& e) {
            std::printf("    worker_died: %s\n", e.what());
            ++errors;
        } catch (const std::bad_alloc&) {
            std::printf("    std::bad_alloc: the task ran out of its memory limit\n");
            ++errors;
        } catch (const std::system_error& e) {
            std::printf("    std::system_error: %s\n", e.what());
            ++errors;
        } catch (const std::exception& e) {
            std::printf("    error: %s\n", e.what());
            ++errors;
        }
    }
    std::printf("the host carried on: %d values, %d errors, %llu workers replaced\n", values,
                errors, static_cast<unsigned long long>(pool.stats().respawns));
    return 0;
}
