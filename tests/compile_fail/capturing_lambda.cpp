// A lambda with captures cannot be sent to a process worker.
// expect: the callable must be a function pointer, a captureless lambda or a serializable function
// object
#include <coexec/detail/codec/remote_call.hpp>

int main() {
    int offset = 1;
    auto add_offset = [offset](int x) { return x + offset; };
    coexec::detail::check_remote_callable<decltype(add_offset), int>();
}
