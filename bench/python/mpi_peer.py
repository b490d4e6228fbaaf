#!/usr/bin/env python3
"""The mpi4py.futures peer of bench/mpi: the same work through MPIPoolExecutor.

Run under MPI in static mode by bench/mpi (rank 0 runs this script, the other
ranks serve tasks):

    mpirun -n 2 /usr/bin/python3 -m mpi4py.futures mpi_peer.py round_trip
    mpirun -n 2 /usr/bin/python3 -m mpi4py.futures mpi_peer.py map
    mpirun -n 3 /usr/bin/python3 -m mpi4py.futures mpi_peer.py primes

(`/usr/bin/python3`: Debian's python3-mpi4py installs for the system Python;
another python3 earlier on PATH may lack it.) Prints human-readable lines on
stderr and one `PY|<key>|<value>` line per figure on stdout. Times are in
microseconds per task (seconds for primes).
"""
import statistics
import sys
import time

from mpi4py.futures import MPIPoolExecutor


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


def emit(key, value):
    print(f"PY|{key}|{value:.6g}", flush=True)


def say(text):
    print(text, file=sys.stderr, flush=True)


def round_trip(ex):
    """One task at a time, submit then result: the per-task round trip."""
    for _ in range(200):
        ex.submit(noop).result()
    ns = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        ex.submit(noop).result()
        ns.append(time.perf_counter_ns() - t0)
    ns.sort()
    p50 = ns[len(ns) // 2] / 1000.0
    say(f"  mpi4py.futures round trip: p50 {p50:.1f} us")
    emit("round_trip_p50_us", p50)


def map_per_task(ex):
    """Per-task time through map, unchunked (chunksize 1) and chunksize 100."""
    n1, n100 = 4000, 100_000
    list(ex.map(square, range(500)))
    t0 = time.perf_counter()
    out = list(ex.map(square, range(n1)))
    t1 = time.perf_counter()
    assert out[-1] == (n1 - 1) ** 2
    out = list(ex.map(square, range(n100), chunksize=100))
    t2 = time.perf_counter()
    assert out[-1] == (n100 - 1) ** 2
    per1 = (t1 - t0) / n1 * 1e6
    per100 = (t2 - t1) / n100 * 1e6
    say(f"  mpi4py.futures map: {per1:.2f} us/task unchunked, {per100:.3f} us/task chunksize 100")
    emit("map_chunk1_us", per1)
    emit("map_chunk100_us", per100)


def primes(ex):
    below, parts = 2_000_000, 64
    step = (below + parts - 1) // parts
    starts = list(range(0, below, step))
    ends = [min(below, s + step) for s in starts]
    times = []
    total = 0
    for _ in range(3):
        t0 = time.perf_counter()
        total = sum(ex.map(count_primes_in_range, starts, ends))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    say(f"  mpi4py.futures primes below {below} in {parts} ranges: {total} primes, {med:.3f} s")
    emit("primes_s", med)
    emit("primes_total", total)


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "round_trip"
    with MPIPoolExecutor() as ex:
        {"round_trip": round_trip, "map": map_per_task, "primes": primes}[what](ex)


if __name__ == "__main__":
    main()
