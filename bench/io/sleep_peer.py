#!/usr/bin/env python3
"""Python peer of bench_io_sleep: N tasks that each time.sleep(seconds)
through concurrent.futures.ThreadPoolExecutor. Standard library only.

    sleep_peer.py --tasks 100000 --workers 1000 --seconds 0.01

A thread holds each sleep, so at most --workers sleeps overlap. Prints a
human summary on stderr and `PY|<key>|<value>` lines on stdout:
wall_s (first submit to last result) and maxrss_kib (peak RSS of this
process, from getrusage).
"""
import argparse
import concurrent.futures as cf
import resource
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=0.01)
    a = ap.parse_args()
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=a.workers) as pool:
        futures = [pool.submit(time.sleep, a.seconds) for _ in range(a.tasks)]
        for f in futures:
            f.result()
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  python ThreadPoolExecutor({a.workers}) {a.tasks} x time.sleep({a.seconds}): "
          f"{wall:.3f} s, peak RSS {rss / 1024:.1f} MiB", file=sys.stderr)
    print(f"PY|wall_s|{wall}")
    print(f"PY|maxrss_kib|{rss}")


if __name__ == "__main__":
    main()
