"""What ``fit(augment=Augment(2, True))`` costs: seconds per epoch with and without it.

The benchmark workload (benchmarks/workload.py: 784-256-128-10, Adam, batch 64, 54,000 rows), one-epoch
fits alternating between the two (which goes first alternates too), after one
warm-up round; prints each median of the repeats and their ratio (target: <= 1.15),
and the median of the rounds' ratios, steadier when other work shares the cores.

    python benchmarks/augment_overhead.py [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import pydfn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import SIZES, synthetic_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="epochs timed per setting (median)")
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    args = parser.parse_args()
    if args.threads:
        pydfn.set_num_threads(args.threads)
    x, y = synthetic_data()
    settings = {"plain": None, "augment": pydfn.Augment(shift=2, flip=True)}
    times: dict[str, list[float]] = {name: [] for name in settings}
    for r in range(args.repeats + 1):
        for name in sorted(settings, reverse=r % 2 == 1):
            model = pydfn.MLP(SIZES, seed=r)
            history = model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=64, verbose=0, augment=settings[name])
            if r:  # round 0 warms up
                times[name].append(history.history["time"][0])
    plain, augmented = statistics.median(times["plain"]), statistics.median(times["augment"])
    print(f"{pydfn.get_num_threads()} threads, {len(x):,} rows, {args.repeats} repeats")
    for name, values in times.items():
        print(f"  {name:<8} median {statistics.median(values):.3f} s/epoch, min {min(values):.3f}  "
              f"({' '.join(f'{t:.3f}' for t in values)})")
    paired = statistics.median(a / p for a, p in zip(times["augment"], times["plain"]))  # robust to load drift
    print(f"  ratio augment/plain: {augmented / plain:.3f} of the medians, {paired:.3f} median of each round's, "
          f"{min(times['augment']) / min(times['plain']):.3f} of the minima (the least disturbed epochs)")


if __name__ == "__main__":
    main()
