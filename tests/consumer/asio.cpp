// find_package(coexec COMPONENTS asio): coexec::async_get in an asio::awaitable,
// and asio_executor, both from <coexec/coexec.hpp> (coexec::asio brings them).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <coexec/coexec.hpp>
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
    coexec::asio_executor on_io{io.get_executor()};
    auto one = on_io.submit([] { return 1; });
    io.restart();
    io.run();
    std::printf("consumer_asio: %d %d\n", v, one.get());
    return v == 42 && one.get() == 1 ? 0 : 1;
}
