#!/usr/bin/env python3
"""Python peers of bench/process_pool: the same work through
concurrent.futures.ProcessPoolExecutor and multiprocessing.Pool.

Standard library only. Run by the C++ benchmark executables as a subprocess:

    process_pool_peers.py <benchmark> [--workers N] [...]

Prints human-readable lines on stderr and one `PY|<key>|<value>` line per
figure on stdout, which the caller parses. Times are in microseconds, rates
per second.
"""
import argparse
import concurrent.futures as cf
import multiprocessing as mp
import statistics
import sys
import time


def noop():
    return 1


def square(x):
    return x * x


def is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    i = 3
    while i * i <= n:
        if n % i == 0:
            return False
        i += 2
    return True


def count_primes_in_range(start, end):
    return sum(1 for n in range(start, end) if is_prime(n))


def touch(payload):
    """Changes one byte per page and returns the payload (a round trip)."""
    buf = bytearray(payload)
    for i in range(0, len(buf), 4096):
        buf[i] ^= 1
    return buf


def size_of(payload):
    """Takes the payload and returns its size (one way: to a worker)."""
    return len(payload)


def build(n):
    """Builds n bytes, every one 1, and returns them (one way: from a worker)."""
    return b"\x01" * n


def emit(key, value):
    print(f"PY|{key}|{value:.6g}", flush=True)


def say(text):
    print(text, file=sys.stderr, flush=True)


def percentiles(ns):
    ns = sorted(ns)
    at = lambda q: ns[min(len(ns) - 1, int(q * (len(ns) - 1) + 0.5))] / 1000.0
    return at(0.50), at(0.99)


def round_trip(args):
    def measure(call):
        for _ in range(args.warmup):
            call()
        ns = []
        for _ in range(args.n):
            t0 = time.perf_counter_ns()
            call()
            ns.append(time.perf_counter_ns() - t0)
        return percentiles(ns)

    with cf.ProcessPoolExecutor(args.workers) as ex:
        p50, p99 = measure(lambda: ex.submit(noop).result())
    say(f"  python PPE submit().result()       p50 {p50:8.2f} us  p99 {p99:8.2f} us")
    emit("ppe_p50_us", p50)
    emit("ppe_p99_us", p99)
    with mp.Pool(args.workers) as pool:
        p50, p99 = measure(lambda: pool.apply(noop))
    say(f"  python Pool.apply()                p50 {p50:8.2f} us  p99 {p99:8.2f} us")
    emit("pool_p50_us", p50)
    emit("pool_p99_us", p99)


def map_bench(args):
    def rate(n, run):
        t0 = time.perf_counter()
        out = run(range(n))
        dt = time.perf_counter() - t0
        assert len(out) == n and out[-1] == (n - 1) * (n - 1)
        return n / dt

    with cf.ProcessPoolExecutor(args.workers) as ex:
        ex.submit(noop).result()
        r1 = rate(args.n_chunk1, lambda xs: list(ex.map(square, xs, chunksize=1)))
        r1000 = rate(args.n, lambda xs: list(ex.map(square, xs, chunksize=1000)))
    with mp.Pool(args.workers) as pool:
        pool.apply(noop)
        rpool = rate(args.n, lambda xs: pool.map(square, xs))
    say(f"  python PPE.map chunksize=1    {args.n_chunk1:7d} tasks {r1:12.0f} tasks/s")
    say(f"  python PPE.map chunksize=1000 {args.n:7d} tasks {r1000:12.0f} tasks/s")
    say(f"  python Pool.map (default)     {args.n:7d} tasks {rpool:12.0f} tasks/s")
    emit("ppe_chunk1_per_s", r1)
    emit("ppe_chunk1000_per_s", r1000)
    emit("pool_map_per_s", rpool)


def split(below, parts):
    step = (below + parts - 1) // parts
    return [(s, min(below, s + step)) for s in range(0, below, step)]


def primes(args):
    ranges = split(args.below, args.ranges)
    starts, ends = zip(*ranges)
    t0 = time.perf_counter()
    serial = sum(count_primes_in_range(s, e) for s, e in ranges)
    t_serial = time.perf_counter() - t0
    with cf.ProcessPoolExecutor(args.workers) as ex:
        ex.submit(noop).result()
        t0 = time.perf_counter()
        parallel = sum(ex.map(count_primes_in_range, starts, ends))
        t_par = time.perf_counter() - t0
    assert serial == parallel
    eff = t_serial / (args.workers * t_par)
    say(f"  python serial {t_serial:.3f} s, PPE({args.workers}) {t_par:.3f} s, "
        f"efficiency {eff * 100:.0f}% ({serial} primes)")
    emit("serial_s", t_serial)
    emit("parallel_s", t_par)
    emit("efficiency", eff)
    emit("primes", serial)


def payload(args):
    data = bytes(args.mib << 20)
    n = len(data)

    def median_ms(call):
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    def to_worker():
        assert ex.submit(size_of, data).result() == n

    def from_worker():
        out = ex.submit(build, n).result()
        assert len(out) == n and out[-1] == 1

    def there_and_back():
        out = ex.submit(touch, data).result()
        assert len(out) == n and out[0] == 1

    with cf.ProcessPoolExecutor(args.workers) as ex:
        ex.submit(noop).result()
        to_ms = median_ms(to_worker)
        from_ms = median_ms(from_worker)
        both_ms = median_ms(there_and_back)
    say(f"  python PPE {args.mib} MiB (pickle): to a worker {to_ms:.1f} ms, from a worker "
        f"{from_ms:.1f} ms, there and back {both_ms:.1f} ms")
    emit("to_ms", to_ms)
    emit("from_ms", from_ms)
    emit("ppe_ms", both_ms)


def startup(args):
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        with cf.ProcessPoolExecutor(args.workers) as ex:
            ex.submit(noop).result()
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    say(f"  python PPE({args.workers}) start -> first result: {t * 1e3:.2f} ms "
        f"(median of {args.reps})")
    emit("ppe_ms", t * 1e3)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("benchmark", choices=["round_trip", "map", "primes", "payload", "startup"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--n-chunk1", type=int, default=20_000)
    p.add_argument("--below", type=int, default=2_000_000)
    p.add_argument("--ranges", type=int, default=64)
    p.add_argument("--mib", type=int, default=64)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    say(f"python {sys.version.split()[0]}, start method {mp.get_start_method()}")
    if args.benchmark == "round_trip":
        args.n = args.n or 10_000
        round_trip(args)
    elif args.benchmark == "map":
        args.n = args.n or 200_000
        map_bench(args)
    elif args.benchmark == "primes":
        primes(args)
    elif args.benchmark == "payload":
        payload(args)
    else:
        startup(args)


if __name__ == "__main__":
    main()
