// 64 MiB to a worker and back: the worker changes one byte per page and
// returns the data. Median of 5 round trips, 2 workers.
//
//   coexec   by value (std::vector<unsigned char>, encoded and copied both
//            ways) and as a shared_buffer (a descriptor crosses, the pages
//            are shared)
//   python   ProcessPoolExecutor.submit(touch, bytes).result() (pickle)
#include <coexec/process_pool.hpp>
#include <coexec/shared_buffer.hpp>

#include <cstdio>
#include <vector>

#include "bench_report.hpp"
#include "python_peer.hpp"

namespace {

constexpr std::size_t mib = 64;
constexpr std::size_t size = mib << 20;

std::vector<unsigned char> touch_value(std::vector<unsigned char> data) {
    for (std::size_t i = 0; i < data.size(); i += 4096)
        data[i] ^= 1;
    return data;
}

coexec::shared_buffer touch_shared(coexec::shared_buffer buffer) {
    auto* bytes = buffer.data();
    for (std::size_t i = 0; i < buffer.size(); i += 4096)
        bytes[i] ^= std::byte{1};
    return buffer;
}

template <class Once>
double median_ms(int reps, Once&& once) {
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
        auto t0 = coexec_bench::clock::now();
        once();
        ms.push_back(coexec_bench::seconds_between(t0, coexec_bench::clock::now()) * 1e3);
    }
    return coexec_bench::median(ms);
}

}  // namespace

int main() {
    coexec::process_pool::prepare();
    double by_value = 0;
    double shared = 0;
    {
        coexec::process_pool pool{{.max_workers = 2}};
        std::vector<unsigned char> data(size, 0);
        coexec::shared_buffer buffer(size);
        pool.submit(&touch_value, std::vector<unsigned char>(16)).get();  // warm-up
        by_value = median_ms(5, [&] {
            auto out = pool.submit(&touch_value, data).get();
            if (out.size() != size || out[0] != 1) std::abort();
        });
        shared = median_ms(5, [&] {
            auto out = pool.submit(&touch_shared, buffer).get();
            if (out.size() != size) std::abort();
        });
    }
    std::printf("%zu MiB to a worker and back, 2 workers (median of 5)\n", mib);
    std::printf("  coexec by value         %8.2f ms\n", by_value);
    std::printf("  coexec shared_buffer    %8.2f ms\n", shared);

    auto py = coexec_bench::run_python("process_pool_peers.py", "payload --workers 2 --reps 5");
    if (!py) return 0;
    using coexec_bench::better;
    coexec_bench::report("64 MiB there and back, by value", by_value, "ms", "Python PPE (pickle)",
                         (*py)["ppe_ms"], better::lower);
    coexec_bench::report("64 MiB there and back, shared_buffer", shared, "ms",
                         "Python PPE (pickle)", (*py)["ppe_ms"], better::lower);
    coexec_bench::note(
        "64 MiB payload: the task changes one byte per 4 KiB page and returns the data; "
        "median of 5 round trips on each side.");
    return 0;
}
