"""Data-parallel training over MPI: epoch time for ranks x threads per rank, and the allreduce's cost.

For each (ranks, threads per rank) it launches ``mpiexec -n ranks`` on this machine
and trains the tutorial workload (784-256-128-10, Adam, batch 64, one epoch =
54,000 synthetic samples) with ``fit(distributed=True)``; it also times the
1-process C++ epoch (``fit`` without MPI) with the same threads, and a bare
allreduce of the gradient buffer (0.94 MB of float32) on 2 ranks. Prints the
median epoch time of the repeats.

    python benchmarks/bench_mpi.py [--repeats 3] [--ranks 1 2] [--threads 1 2]

Needs ``pip install 'pydfn[mpi]'``. On a machine with fewer cores than
ranks x threads the ranks oversubscribe the cores: the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import EPOCH_SAMPLES, SIZES, synthetic_data  # noqa: E402


def worker(args: argparse.Namespace) -> None:
    """Run under mpiexec (or alone for the 1-process C++ path); rank 0 prints one JSON line."""
    import pydfn

    x, y = synthetic_data(EPOCH_SAMPLES)
    model = pydfn.MLP(SIZES, seed=0)
    distributed = args.mode == "mpi"
    history = model.fit(x, y, pydfn.Adam(), epochs=args.repeats + 1, batch_size=args.batch_size,
                        verbose=0, distributed=distributed)
    result = {"epoch_seconds": history.history["time"][1:]}  # the first epoch warms up
    if distributed:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        grads = model.engine.grads_view()
        times = []
        for _ in range(200):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, grads)
            times.append(time.perf_counter() - start)
        result["allreduce_seconds"] = statistics.median(times)
        result["gradient_bytes"] = grads.nbytes
        if comm.Get_rank() != 0:
            return
    print(json.dumps(result), flush=True)


def launch(mode: str, ranks: int, threads: int, args: argparse.Namespace, mpiexec: str | None) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--mode", mode,
               "--repeats", str(args.repeats), "--batch-size", str(args.batch_size)]
    if mode == "mpi":
        command = [mpiexec, "-n", str(ranks), *command]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per configuration (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="threads per rank")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("mpi", "native"), default="mpi", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if mpiexec is None:
        sys.exit("bench_mpi.py needs mpiexec and mpi4py:  pip install 'pydfn[mpi]'")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; batch {args.batch_size}; {EPOCH_SAMPLES} samples per epoch; "
          f"median of {args.repeats} epochs after a warm-up\n")
    print(f"{'path':<22}{'ranks':>6}{'threads/rank':>14}{'epoch s':>10}{'samples/s':>12}  note")
    allreduce = None
    for threads in args.threads:
        native = launch("native", 1, threads, args, mpiexec)
        seconds = statistics.median(native["epoch_seconds"])
        print(f"{'C++ epoch (no MPI)':<22}{1:>6}{threads:>14}{seconds:>10.2f}{EPOCH_SAMPLES / seconds:>12,.0f}")
        for ranks in args.ranks:
            result = launch("mpi", ranks, threads, args, mpiexec)
            seconds = statistics.median(result["epoch_seconds"])
            note = "oversubscribed" if ranks * threads > cores else ""
            print(f"{'fit(distributed=True)':<22}{ranks:>6}{threads:>14}{seconds:>10.2f}"
                  f"{EPOCH_SAMPLES / seconds:>12,.0f}  {note}")
            if ranks == 2 and threads == 1:
                allreduce = result
    if allreduce:
        mb, s = allreduce["gradient_bytes"] / 1e6, allreduce["allreduce_seconds"]
        print(f"\nAllreduce of the gradients ({mb:.2f} MB float32) on 2 ranks, shared memory: "
              f"{s * 1e6:.0f} us (median of 200), {2 * mb / s / 1e3:.2f} GB/s algorithm bandwidth (2 x size / time)")


if __name__ == "__main__":
    main()
