"""The Python version of the headline pipeline: the seeds' two-pool design.

A ThreadPoolExecutor reads the files and writes the results (I/O), a
ProcessPoolExecutor compresses them with zlib (CPU), as the seeds advise:
"thread pool for fetch, process pool for heavy transform". Standard library
only. Prints PY|<key>|<value> lines for bench/pipeline.

usage: pipeline_peer.py INPUT OUTPUT WORKERS LEVEL
"""
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed


def walk(root):
    for dirpath, _, names in os.walk(root):
        for name in names:
            if not name.startswith("."):
                full = os.path.join(dirpath, name)
                yield os.path.relpath(full, root)


def read(root, rel):
    with open(os.path.join(root, rel), "rb") as f:
        return rel, f.read()


def compress(rel, data, level):
    return rel, len(data), zlib.compress(data, level)


def write(root, rel, data):
    path = os.path.join(root, rel + ".zz")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def main():
    src, dst, workers, level = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    start = time.perf_counter()
    original = written = files = 0
    with ThreadPoolExecutor(max_workers=4) as io, ProcessPoolExecutor(max_workers=workers) as cpu:
        reads = [io.submit(read, src, rel) for rel in walk(src)]
        compressions = [cpu.submit(compress, *f.result(), level) for f in as_completed(reads)]
        writes = []
        for f in as_completed(compressions):
            rel, size, data = f.result()
            original += size
            files += 1
            writes.append(io.submit(write, dst, rel, data))
        written = sum(w.result() for w in writes)
    seconds = time.perf_counter() - start
    print(f"  python two-pool: {files} files, {original / 2**20:.1f} MiB -> {written / 2**20:.1f} MiB "
          f"in {seconds:.2f} s", file=sys.stderr)
    print(f"PY|seconds|{seconds}")
    print(f"PY|mib|{original / 2**20}")
    print(f"PY|compressed_mib|{written / 2**20}")


if __name__ == "__main__":
    main()
