"""pydfn's bf16 mode against its fp32 mode: epoch time, inference time and product throughput.

Each measurement runs in its own fresh process, fp32 and bf16 interleaved, for
several rounds; prints the median and the range of each, and the bf16/fp32 speed-ups.

    python benchmarks/bf16_compare.py [--threads 2] [--batch 64] [--rounds 3] [--epochs 3]

Per round and precision: one training epoch of the tutorial network (784-256-128-10,
Adam, 54,000 synthetic rows) after a warm-up epoch, the median of --epochs epochs;
predict_logits on 10,000 rows (median of 5 calls after 2 warm-up calls); and the
throughput of one product C(M,N) = A(M,K)·B(K,N) at 64x256x784 (the first layer's
forward) and at 1024x1024x1024 (a large product, packing included; the closest
thing to each precision's peak the kernels reach), in GFLOP/s.
On a CPU without AVX512_BF16 the bf16 products run on float instructions
(_core.isa() names the kernels).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, {here!r})
import pydfn
from workload import SIZES, synthetic_data, flops_per_sample
precision, threads, batch, epochs = {precision!r}, {threads}, {batch}, {epochs}
pydfn.set_num_threads(threads)
x, y = synthetic_data()
model, adam = pydfn.MLP(SIZES, seed=0, precision=precision), pydfn.Adam()
model.train_epoch(x, y, adam, batch_size=batch, check_finite=False)  # warm-up
times = []
for _ in range(epochs):
    time.sleep(0.2)
    start = time.perf_counter()
    model.train_epoch(x, y, adam, batch_size=batch, check_finite=False)
    times.append(time.perf_counter() - start)
rows = x[:10000]
for _ in range(2):
    model.predict_logits(rows)
infer = []
for _ in range(5):
    start = time.perf_counter()
    model.predict_logits(rows)
    infer.append(time.perf_counter() - start)
rng = np.random.default_rng(0)
gflops = {{}}
for m, n, k, reps in ((64, 256, 784, 200), (1024, 1024, 1024, 3)):
    A = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    B = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    run = (lambda: pydfn._core.testing.bf16gemm(A, B)) if precision == "bf16" else (lambda: pydfn._core.testing.sgemm_nn(A, B))
    run()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            run()
        best = min(best, (time.perf_counter() - start) / reps)
    gflops[f"{{m}}x{{n}}x{{k}}"] = 2 * m * n * k / best / 1e9
print(json.dumps({{"isa": pydfn._core.isa(), "epoch": sorted(times)[len(times) // 2],
                  "infer": sorted(infer)[len(infer) // 2], "gflops": gflops,
                  "epoch_gflops": flops_per_sample() * len(x) / sorted(times)[len(times) // 2] / 1e9}}))
"""


def run(precision: str, args: argparse.Namespace) -> dict:
    code = CHILD.format(here=HERE, precision=precision, threads=args.threads, batch=args.batch,
                        epochs=args.epochs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    for r in range(args.rounds):
        for precision in ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32"):
            results[precision].append(run(precision, args))
            print(f"round {r + 1} {precision}: {json.dumps(results[precision][-1])}", flush=True)

    def stat(precision: str, key: str, sub: str | None = None) -> tuple[float, float, float]:
        values = [res[key][sub] if sub else res[key] for res in results[precision]]
        return statistics.median(values), min(values), max(values)

    print(f"\nkernels {results['bf16'][0]['isa']}, {args.threads} thread(s), batch {args.batch}, "
          f"{args.rounds} rounds (median [min-max])")
    rows = [("epoch (s)", "epoch", None, True), ("predict_logits 10,000 rows (s)", "infer", None, True),
            ("epoch GFLOP/s", "epoch_gflops", None, False)]
    rows += [(f"product {shape} GFLOP/s", "gflops", shape, False) for shape in results["fp32"][0]["gflops"]]
    for label, key, sub, lower_is_faster in rows:
        f, b = stat("fp32", key, sub), stat("bf16", key, sub)
        speedup = f[0] / b[0] if lower_is_faster else b[0] / f[0]
        print(f"{label:34s} fp32 {f[0]:8.3f} [{f[1]:.3f}-{f[2]:.3f}]   bf16 {b[0]:8.3f} [{b[1]:.3f}-{b[2]:.3f}]"
              f"   bf16 speed-up {speedup:.2f}x")


if __name__ == "__main__":
    main()
