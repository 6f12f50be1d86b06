"""Throughput of one model served from 1, 2 and 4 Python threads at once.

Each thread calls ``predict_logits`` on its own 1,000-row batches of the 784-256-128-10
network, with ``pydfn.set_num_threads(1)``, so k threads use k cores. Rounds of the
thread counts are interleaved; the median of each is printed (rows/s and the speed-up
over one thread), and every thread's result is checked against a serial call.

    python benchmarks/bench_serving.py [--seconds 1.0] [--rounds 5] [--threads 1 2 4]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

import pydfn


def rows_per_second(model: pydfn.MLP, batches: list[np.ndarray], expected: list[np.ndarray], threads: int,
                    seconds: float) -> float:
    done = [0] * threads
    stop = threading.Event()
    start = threading.Barrier(threads + 1)

    def serve(i: int) -> None:
        x, want = batches[i], expected[i]
        start.wait()
        while not stop.is_set():
            got = model.predict_logits(x)
            if not np.array_equal(got, want):
                raise AssertionError(f"thread {i}: a prediction differs from the serial one")
            done[i] += len(x)

    workers = [threading.Thread(target=serve, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    pydfn.set_num_threads(1)
    model = pydfn.MLP([784, 256, 128, 10], seed=0)
    rng = np.random.default_rng(0)
    batches = [rng.random((1000, 784), dtype=np.float32) for _ in range(max(args.threads))]
    expected = [model.predict_logits(x) for x in batches]
    rates: dict[int, list[float]] = {k: [] for k in args.threads}
    for _ in range(args.rounds):
        for k in args.threads:
            rates[k].append(rows_per_second(model, batches, expected, k, args.seconds))
    base = statistics.median(rates[args.threads[0]])
    print(f"pydfn {pydfn.__version__}, 784-256-128-10, 1,000-row predict_logits, set_num_threads(1), "
          f"median of {args.rounds} interleaved rounds of {args.seconds:g} s")
    print("python threads | rows/s (median) | range | vs 1 thread")
    for k in args.threads:
        med = statistics.median(rates[k])
        print(f"{k:14d} | {med:15,.0f} | {min(rates[k]):,.0f}-{max(rates[k]):,.0f} | {med / base:.2f}x")


if __name__ == "__main__":
    main()
