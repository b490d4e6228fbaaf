// process_pool::submit with a capturing lambda must not compile: its captures
// live in this process and cannot be sent to a worker.
// expect: the callable must be a function pointer, a captureless lambda or a serializable function object
#include <coexec/process_pool.hpp>

int main() {
    coexec::process_pool pool;
    int offset = 42;
    auto f = pool.submit([offset](int x) { return x + offset; }, 1);
    return f.get();
}
