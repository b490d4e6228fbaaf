// A pointer argument cannot be sent to a process worker.
// expect: an argument type is not serializable
#include <coexec/detail/codec/remote_call.hpp>

int first(const int* values) {
    return values[0];
}

int main() {
    coexec::detail::check_remote_callable<decltype(&first), const int*>();
}
