// An enum without a fixed underlying type only holds the range of its
// enumerators, which the codec cannot check: it is refused.
// expect: an argument type is not serializable: an enum without a fixed underlying type
#include <coexec/detail/codec/remote_call.hpp>

enum shape { circle, square };

int corners(shape s) {
    return s == square ? 4 : 0;
}

int main() {
    coexec::detail::check_remote_callable<decltype(&corners), shape>();
}
