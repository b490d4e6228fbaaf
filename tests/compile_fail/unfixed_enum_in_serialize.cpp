// Also when a user serialize() names such an enum: decoding it is refused.
// expect: coexec: an enum without a fixed underlying type cannot be decoded safely
#include <coexec/detail/codec/values.hpp>

enum shape { circle, square };

struct drawing {
    shape s = circle;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(s);
    }
};

int main() {
    coexec::detail::byte_reader r({});
    (void)coexec::detail::decode<drawing>(r);
}
