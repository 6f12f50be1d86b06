"""What one train_step costs beside a step of an epoch (train_epoch), batch 64, tutorial network.

The issue's target: train_step within 10% of an epoch's per-step time. Each round runs one fresh
process per thread count (rounds interleaved, OPENBLAS_* unset); a process alternates 100 epoch
steps (train_epoch over 6,400 rows) and 100 train_steps on the same rows, 7 times after a warm-up,
and reports the median of each. Printed: the median over the rounds with their range.

    python benchmarks/train_step_cost.py [--rounds 5] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ROWS, BATCH, REPEATS = 6400, 64, 7


def child(threads: int) -> dict[str, float]:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    import pydfn
    import systems
    from workload import synthetic_data
    pydfn.set_num_threads(threads)
    x, y = synthetic_data(ROWS, seed=1)
    model, optimizer = systems.pydfn_model("fp32"), pydfn.Adam()
    model.train_epoch(x, y, optimizer, batch_size=BATCH)  # warm-up: buffers, threads
    steps = ROWS // BATCH
    epoch, single = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        model.train_epoch(x, y, optimizer, batch_size=BATCH)
        epoch.append((time.perf_counter() - start) / steps)
        start = time.perf_counter()
        for i in range(steps):
            model.train_step(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH], optimizer)
        single.append((time.perf_counter() - start) / steps)
    return {"epoch_step": statistics.median(epoch), "train_step": statistics.median(single)}


def cell(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="comma list")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    counts = [int(t) for t in args.threads.split(",")]
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    results: dict[int, list[dict[str, float]]] = {t: [] for t in counts}
    for r in range(args.rounds):
        for threads in counts[r % len(counts):] + counts[:r % len(counts)]:
            run = subprocess.run([sys.executable, __file__, "--child", str(threads)], capture_output=True, text=True,
                                 check=True, cwd=HERE,  # the repository root would shadow the installed pydfn
                                 env={**env, "OMP_NUM_THREADS": str(threads)})
            results[threads].append(json.loads(run.stdout.splitlines()[-1]))
        print(f"round {r + 1} of {args.rounds} done", flush=True)
    import pydfn
    print(f"\npydfn {pydfn.__version__}, {pydfn.info()['kernels']} kernels, batch {BATCH}: "
          f"median of {args.rounds} rounds [min-max]")
    for threads in counts:
        epoch = [1e6 * r["epoch_step"] for r in results[threads]]
        single = [1e6 * r["train_step"] for r in results[threads]]
        ratio = [r["train_step"] / r["epoch_step"] for r in results[threads]]
        print(f"{threads} thread(s): epoch step {cell(epoch, '.0f')} us, train_step {cell(single, '.0f')} us, "
              f"train_step / epoch step {cell(ratio, '.3f')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
