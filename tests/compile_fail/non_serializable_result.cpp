// A result type without serialization cannot come back from a process worker.
// expect: the result type is not serializable
#include <coexec/detail/codec/remote_call.hpp>

#include <string>

struct report {
    std::string text;  // not trivially copyable, and no serialize()
};

report make_report(int n) {
    return {std::to_string(n)};
}

int main() {
    coexec::detail::check_remote_callable<decltype(&make_report), int>();
}
