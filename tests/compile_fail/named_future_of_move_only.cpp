// co_await on a named future copies its value: a move-only value must be
// moved out with co_await std::move(f).
// expect: co_await on a named future<T> copies its value, and T cannot be copied
#include <coexec/future.hpp>
#include <coexec/task.hpp>

#include <memory>

coexec::task<int> first_of(coexec::future<std::unique_ptr<int>> f) {
    auto p = co_await f;
    co_return *p;
}

int main() {}
