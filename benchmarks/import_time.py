"""Wall time of `import pydfn` against `import numpy`, each in fresh interpreters.

Rounds alternate the two (so a busy machine slows both alike); prints the medians
and their ratio. The target (issue 15) is a ratio <= 1.5.

    python benchmarks/import_time.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def seconds(module: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"numpy": [], "pydfn": []}
    seconds("pydfn")  # warm the file cache
    for _ in range(args.runs):
        for module in times:
            times[module].append(seconds(module))
    numpy_s, pydfn_s = (statistics.median(times[m]) for m in ("numpy", "pydfn"))
    print(f"import numpy {numpy_s * 1e3:.0f} ms, import pydfn {pydfn_s * 1e3:.0f} ms "
          f"(medians of {args.runs} fresh interpreters, interleaved): ratio {pydfn_s / numpy_s:.2f}")


if __name__ == "__main__":
    main()
