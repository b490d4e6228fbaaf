// A program built against an installed coexec, found with find_package.
#include <coexec/coexec.hpp>
#include <cstdio>

int main() {
    coexec::thread_pool pool{{.max_workers = 2}};
    auto f = pool.submit([](int a, int b) { return a * b; }, 6, 7);
    int v = f.get();
    std::printf("consumer: %d\n", v);
    return v == 42 ? 0 : 1;
}
