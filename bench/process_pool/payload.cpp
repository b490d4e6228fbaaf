// 64 MiB between the parent and a worker, 2 workers, median of 5 each:
//
//   to a worker      the task takes the data and returns its size
//   from a worker    the task builds the data (every byte 1) and returns it
//   there and back   the task changes one byte per page and returns the data
//
//   coexec   by value (std::vector<unsigned char>, encoded and copied) and as
//            a shared_buffer (a descriptor crosses, the pages are shared;
//            "from a worker" makes and fills the buffer in the worker)
//   python   ProcessPoolExecutor with bytes (pickle), the same three shapes
#include <coexec/detail/codec/byte_buffers.hpp>
#include <coexec/process_pool.hpp>
#include <coexec/shared_buffer.hpp>

#include <cstdio>
#include <cstring>
#include <vector>

#include "bench_report.hpp"
#include "python_peer.hpp"

namespace {

constexpr std::size_t mib = 64;
constexpr std::size_t size = mib << 20;

std::size_t value_size(std::vector<unsigned char> data) {
    return data.size();
}

std::vector<unsigned char> build_value(std::size_t n) {
    return std::vector<unsigned char>(n, 1);
}

std::vector<unsigned char> touch_value(std::vector<unsigned char> data) {
    for (std::size_t i = 0; i < data.size(); i += 4096)
        data[i] ^= 1;
    return data;
}

std::size_t shared_size(coexec::shared_buffer buffer) {
    return buffer.size();
}

coexec::shared_buffer build_shared(std::size_t n) {
    coexec::shared_buffer buffer(n);
    std::memset(buffer.data(), 1, n);
    return buffer;
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

struct shapes {
    double to = 0;    // to a worker
    double from = 0;  // from a worker
    double both = 0;  // there and back
};

}  // namespace

int main() {
    coexec::process_pool::prepare();
    shapes value;
    shapes shared;
    {
        coexec::process_pool pool{{.max_workers = 2}};
        std::vector<unsigned char> data(size, 0);
        coexec::shared_buffer buffer(size);
        pool.submit(&touch_value, std::vector<unsigned char>(16)).get();  // warm-up
        value.to = median_ms(5, [&] {
            if (pool.submit(&value_size, data).get() != size) std::abort();
        });
        value.from = median_ms(5, [&] {
            auto out = pool.submit(&build_value, size).get();
            if (out.size() != size || out[size - 1] != 1) std::abort();
        });
        value.both = median_ms(5, [&] {
            auto out = pool.submit(&touch_value, data).get();
            if (out.size() != size || out[0] != 1) std::abort();
        });
        shared.to = median_ms(5, [&] {
            if (pool.submit(&shared_size, buffer).get() != size) std::abort();
        });
        shared.from = median_ms(5, [&] {
            auto out = pool.submit(&build_shared, size).get();
            if (out.size() != size || out.data()[size - 1] != std::byte{1}) std::abort();
        });
        shared.both = median_ms(5, [&] {
            auto out = pool.submit(&touch_shared, buffer).get();
            if (out.size() != size) std::abort();
        });
    }
    // The floors, in this process and this run: what building the data costs
    // by itself, before any of it crosses (the "from a worker" tasks do this).
    const double fresh_vector = median_ms(5, [] {
        std::vector<unsigned char> v(size, 1);
        if (v[size / 2] != 1) std::abort();
    });
    // "From a worker, by value" makes two new vectors whatever the transport:
    // the task's, and the caller's result, which the data is copied into (as
    // the decoder does it: reserved, transparent huge pages asked for, one copy).
    const double fresh_pair = median_ms(5, [] {
        std::vector<unsigned char> built(size, 1);
        std::vector<unsigned char> received;
        received.reserve(size);
        coexec::detail::advise_bulk_fill(received.data(), size);
        received.assign(built.begin(), built.end());
        if (received[size / 2] != 1) std::abort();
    });
    const double fresh_shared = median_ms(5, [] {
        coexec::shared_buffer b(size);
        std::memset(b.data(), 1, size);
        if (b.data()[size / 2] != std::byte{1}) std::abort();
    });
    std::printf("%zu MiB between the parent and a worker, 2 workers (median of 5, ms)\n", mib);
    std::printf("                          to a worker  from a worker  there and back\n");
    std::printf("  coexec by value         %11.2f  %13.2f  %14.2f\n", value.to, value.from,
                value.both);
    std::printf("  coexec shared_buffer    %11.2f  %13.2f  %14.2f\n", shared.to, shared.from,
                shared.both);

    std::printf(
        "  floor: a new vector of %zu MiB, filled, in one process %.2f ms; the same and a "
        "copy into a second new one %.2f ms; a new shared_buffer, filled, %.2f ms\n",
        mib, fresh_vector, fresh_pair, fresh_shared);

    auto py = coexec_bench::run_python("process_pool_peers.py", "payload --workers 2 --reps 5");
    if (!py) return 0;
    using coexec_bench::better;
    const char* peer = "Python PPE (pickle)";
    coexec_bench::report("64 MiB to a worker, by value", value.to, "ms", peer, (*py)["to_ms"],
                         better::lower);
    coexec_bench::report("64 MiB from a worker, by value", value.from, "ms", peer, (*py)["from_ms"],
                         better::lower);
    coexec_bench::report("64 MiB there and back, by value", value.both, "ms", peer, (*py)["ppe_ms"],
                         better::lower);
    coexec_bench::report("64 MiB to a worker, shared_buffer", shared.to, "ms", peer, (*py)["to_ms"],
                         better::lower);
    coexec_bench::report("64 MiB made in a worker, shared_buffer", shared.from, "ms", peer,
                         (*py)["from_ms"], better::lower);
    coexec_bench::report("64 MiB there and back, shared_buffer", shared.both, "ms", peer,
                         (*py)["ppe_ms"], better::lower);
    std::printf(
        "NOTE|64 MiB payload floors, same run: building a new 64 MiB vector alone takes "
        "%.1f ms, building one and copying it into a second new one (what 'from a worker, "
        "by value' must do at least: the task's vector and the caller's) %.1f ms, which is "
        "%.2fx Python's 'from a worker'; filling a new 64 MiB shared_buffer alone %.1f ms "
        "(fresh pages: the kernel faults and zeroes each one; on this host shared memory "
        "gets no huge pages)\n",
        fresh_vector, fresh_pair, (*py)["from_ms"] / fresh_pair, fresh_shared);
    coexec_bench::note(
        "64 MiB payload: to a worker = the task returns the size; from a worker = the task "
        "builds the data (or fills a new shared_buffer) and returns it; there and back = the "
        "task changes one byte per 4 KiB page and returns the data; median of 5 on each side.");
    return 0;
}
