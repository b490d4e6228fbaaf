// find_package(coexec COMPONENTS boost_asio): coexec::boost_asio::async_get in a
// boost::asio::awaitable, and an asio_executor on a Boost io_context.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <coexec/boost_asio.hpp>
#include <coexec/thread_pool.hpp>
#include <cstdio>

int main() {
    coexec::thread_pool pool{{.max_workers = 1}};
    boost::asio::io_context io;
    coexec::boost_asio::asio_executor on_io{io.get_executor()};
    int v = 0;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            v = co_await coexec::boost_asio::async_get(pool.submit([] { return 40; }),
                                                       boost::asio::use_awaitable);
        },
        boost::asio::detached);
    auto two = on_io.submit([] { return 2; });
    io.run();
    v += two.get();
    std::printf("consumer_boost_asio: %d\n", v);
    return v == 42 ? 0 : 1;
}
