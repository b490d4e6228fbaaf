// find_package(coexec COMPONENTS asio): coexec::async_get in an asio::awaitable.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <coexec/asio.hpp>
#include <coexec/thread_pool.hpp>
#include <cstdio>

int main() {
    coexec::thread_pool pool{{.max_workers = 1}};
    asio::io_context io;
    int v = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            v = co_await coexec::async_get(pool.submit([] { return 42; }), asio::use_awaitable);
        },
        asio::detached);
    io.run();
    std::printf("consumer_asio: %d\n", v);
    return v == 42 ? 0 : 1;
}
