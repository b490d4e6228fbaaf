// A struct holding a pointer cannot be sent: the pointer would point into the
// sender's memory (and a worker could make the parent read any address).
// expect: an argument type is not serializable: it is or holds a pointer
#include <coexec/detail/codec/remote_call.hpp>

#include <vector>

struct span_like {
    const double* data;
    int size;
};

double sum(std::vector<span_like> parts) {
    return parts.empty() ? 0.0 : parts[0].data[0];
}

int main() {
    coexec::detail::check_remote_callable<decltype(&sum), std::vector<span_like>>();
}
