"""Seconds per epoch of each kernel set: PYDFN_MAX_ISA=generic, avx2, avx512.

Each epoch runs in a fresh interpreter (the kernel set is chosen once per
process), the kernel sets interleaved, and the median of --repeats is printed
with the ratio to AVX2 (the target: generic within 3x of AVX2). CPU seconds are
printed too: with one thread they are the epoch's time on the CPU, which other
programs on a shared machine do not inflate as they do the wall time.

    python benchmarks/isa_compare.py [--repeats 5] [--threads 1,2] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ISAS = ["generic", "avx2", "avx512"]


def one_epoch(isa: str, threads: int, batch: int) -> tuple[str, float, float]:
    """(kernel set used, wall seconds, CPU seconds) of one epoch in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "windows.json")
        # cwd: the repository root would shadow the installed pydfn with its source folder
        subprocess.run([sys.executable, os.path.join(HERE, "profile_epoch.py"), "--run-only", "--epochs", "1",
                        "--threads", str(threads), "--batch", str(batch), "--windows", out],
                       check=True, cwd=tmp, capture_output=True, env={**os.environ, "PYDFN_MAX_ISA": isa})
        with open(out) as f:
            result = json.load(f)
    start, end, cpu = result["windows"][0]
    return result["isa"], end - start, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="comma list")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    for threads in [int(t) for t in args.threads.split(",")]:
        wall: dict[str, list[float]] = {isa: [] for isa in ISAS}
        cpu: dict[str, list[float]] = {isa: [] for isa in ISAS}
        used: dict[str, str] = {}
        for _ in range(args.repeats):
            for isa in ISAS:
                used[isa], w, c = one_epoch(isa, threads, args.batch)
                wall[isa].append(w)
                cpu[isa].append(c)
        print(f"\n{threads} thread(s), batch {args.batch}, median of {args.repeats} (fresh process each)")
        print(f"{'PYDFN_MAX_ISA':>13} {'kernels':>8} {'s/epoch':>8} {'vs avx2':>8} {'CPU s':>7} {'vs avx2':>8}")
        w2, c2 = statistics.median(wall["avx2"]), statistics.median(cpu["avx2"])
        for isa in ISAS:
            w, c = statistics.median(wall[isa]), statistics.median(cpu[isa])
            print(f"{isa:>13} {used[isa]:>8} {w:>8.3f} {w / w2:>7.2f}x {c:>7.3f} {c / c2:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
