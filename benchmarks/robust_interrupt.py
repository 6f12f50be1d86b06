"""Ctrl-C latency of fit: how long after SIGINT the KeyboardInterrupt reaches the caller,
on the tutorial network (784-256-128-10, batch 64). Each repeat is a fresh interpreter
interrupted at a random moment of its second epoch.

    python benchmarks/robust_interrupt.py [repeats]     # run from outside the source folder
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import os, sys, time
import numpy as np, pydfn
ready = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.random((20000, 784), dtype=np.float32)
y = rng.integers(0, 10, 20000)
model = pydfn.MLP([784, 256, 128, 10])
def hook(epoch, logs):
    open(ready, "w").write(str(logs["time"] / (20000 / 64)))  # seconds per batch
try:
    model.fit(x, y, pydfn.Adam(), epochs=1000, callbacks=[hook], verbose=0)
except KeyboardInterrupt:
    print(time.time(), flush=True)
"""


def once(seed: int) -> tuple[float, float]:
    """(latency in seconds, seconds per batch) of one interrupted fit."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready")
        child = subprocess.Popen([sys.executable, "-c", CHILD, ready], stdout=subprocess.PIPE, text=True, cwd=tmp)
        try:
            while not os.path.exists(ready) or not open(ready).read():
                time.sleep(0.01)
            time.sleep(random.Random(seed).uniform(0.0, 0.5))  # somewhere in epoch 2
            sent = time.time()
            child.send_signal(signal.SIGINT)
            out, _ = child.communicate(timeout=60)
        finally:
            child.kill()
        return float(out) - sent, float(open(ready).read())


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    results = [once(seed) for seed in range(repeats)]
    latency = [r[0] for r in results]
    batch = statistics.median(r[1] for r in results)
    print(json.dumps({"repeats": repeats, "latency_median_s": round(statistics.median(latency), 4),
                      "latency_max_s": round(max(latency), 4), "seconds_per_batch": round(batch, 5),
                      "latency_in_batches_median": round(statistics.median(latency) / batch, 1)}))


if __name__ == "__main__":
    main()
