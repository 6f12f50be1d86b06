"""`pydfn train --recipe best`, one ingredient at a time: test accuracy and wall time of each step.

    python benchmarks/recipe_steps.py [--threads 2] [--markdown]

Each step is one `pydfn train` in its own process, adding one ingredient to the
step before; the last step is the recipe itself (`--recipe best`). The first row
is the tutorial (`pydfn train` with its defaults): the time per epoch it prints
sets the recipe's budget, 800 of those epochs. The wall time is the whole
command's (start-up, data, training, test), on an otherwise idle machine.
Accuracy is bitwise the same for any thread count; the times are not.
The recipe was chosen on the validation accuracy alone: the test set only
reports.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from pydfn.cli import RECIPES

BUDGET_EPOCHS = 800  # of the tutorial's: the recipe's time budget
# (what the step adds, its flags); in turn, the flags of --recipe best.
INGREDIENTS = [
    ("the tutorial: 784-256-128-10, Adam 1e-3, batch 64, 20 epochs", []),
    ("+ cosine learning rate, 1 epoch of warm-up", ["--schedule", "cosine", "--warmup", "1"]),
    ("+ wider (1024, 512), batch 128, 90 epochs", ["--hidden", "1024,512", "--batch-size", "128", "--epochs", "90"]),
    ("+ dropout 0.3", ["--dropout", "0.3"]),
    ("+ mirrored images: `--recipe best`", ["--augment", "flip"]),
]


def run(flags: list[str], threads: int, out: str) -> dict[str, float]:
    """One `pydfn train`: its wall time and the figures it prints."""
    command = [sys.executable, "-m", "pydfn", "train", "--threads", str(threads), "--out", out,
               "--verbose", "1", *flags]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    text = done.stdout
    last_epoch = re.findall(r"^Epoch (\d+)/\d+ .*val_accuracy ([\d.]+)", text, re.M)[-1]
    test = re.search(r"^Test: loss ([\d.]+) - accuracy ([\d.]+)", text, re.M)
    per_epoch = re.search(r"^Time per epoch: ([\d.]+) s", text, re.M)
    assert test and per_epoch, text
    return {"wall": wall, "epochs": int(last_epoch[0]), "val_accuracy": float(last_epoch[1]),
            "test_loss": float(test[1]), "test_accuracy": float(test[2]), "epoch_time": float(per_epoch[1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    steps, flags = [], []  # (what the step adds, its flags, the command's flags)
    for added, more in INGREDIENTS:
        flags = [*flags, *more]
        steps.append((added, more, flags))
    if flags != list(RECIPES["best"]):
        raise SystemExit(f"the ingredients' flags {flags} are not --recipe best's {list(RECIPES['best'])}")
    steps[-1] = (*steps[-1][:2], ["--recipe", "best"])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for i, (added, more, step_flags) in enumerate(steps):
            result = run(step_flags, args.threads, os.path.join(folder, "model.npz"))
            if i == 0:
                budget = BUDGET_EPOCHS * result["epoch_time"]
                print(f"tutorial epoch {result['epoch_time']:.2f} s: the budget is {BUDGET_EPOCHS} of them, "
                      f"{budget:.0f} s", flush=True)
            rows.append((added, more, result))
            print(f"{added}: val {result['val_accuracy']:.4f}, test {result['test_accuracy']:.4f} "
                  f"(loss {result['test_loss']:.4f}), {result['epochs']} epochs, wall {result['wall']:.0f} s "
                  f"({result['wall'] / budget:.0%} of the budget)", flush=True)
    if args.markdown:
        print("\n| step | flags added | val acc | test acc | wall time |")
        print("|---|---|---:|---:|---:|")
        for added, more, result in rows:
            shown = "`" + " ".join(more) + "`" if more else "(none)"
            print(f"| {added} | {shown} | {result['val_accuracy']:.4f} | {result['test_accuracy']:.4f} | "
                  f"{result['wall']:.0f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
