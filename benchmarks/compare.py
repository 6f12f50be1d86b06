"""Side-by-side epoch times: pydfn vs a lean NumPy loop, PyTorch eager and JAX, each in its own process.

Trains the tutorial network (784-256-128-10, Adam, one epoch = 54,000 samples) with
each system of systems.py (how each loop is written is described there), at batch 64
and 256, on 1 and 2 threads (all cores by default), and prints seconds per epoch,
samples/s, GFLOP/s, the share of this machine's SGEMM peak and how many times slower
each peer is than pydfn.

    python benchmarks/compare.py [--rounds 3] [--epochs 3] [--markdown] [--plot compare.png] [--memory]

How it measures:
- Every measurement runs in a fresh child process (a system's thread pool never meets
  another's), one child per system per cell per round; rounds are interleaved (round 1
  runs every system in every cell, then round 2, ...), with the systems' order rotated
  each round. A child trains one warm-up epoch (it holds JAX's compile and every
  first-touch cost; reported apart) and then --epochs timed epochs. A cell's figure is
  the median of all its timed epochs (rounds x epochs) with their min-max; "x pydfn" is
  the median (min-max) over the rounds of the peer's median over pydfn's in that round.
  "CPU s" is the median CPU time of the child (all its threads) per timed epoch: on a
  shared machine, where other programs take the cores, the one-thread rows' CPU seconds
  are the steadier figure (at 2 threads they include spin-waiting).
- Threads: each library's own setting (pydfn.set_num_threads, threadpoolctl for NumPy's
  BLAS, torch.set_num_threads with one inter-op thread, XLA_FLAGS for JAX's one-thread run,
  OMP/OPENBLAS/MKL_NUM_THREADS in the environment), and the child pins itself with
  os.sched_setaffinity to its first N allowed cores before it imports any of them.
- The SGEMM peak is NumPy's float32 4096x4096 matmul on the same threads, the best of 3
  after one untimed, in a child of its own each round; % of peak uses the best round.
  With a bf16 mode among the systems (pydfn-bf16, torch-bf16, jax-bf16: systems.py), the
  bf16 peak is measured the same way from PyTorch's bf16 matmul (oneDNN: AMX tiles where
  the CPU has them, else vdpbf16ps), and the bf16 modes' % of peak is of that one.
- The children run without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (removed from their
  environment only), so OpenBLAS picks its kernel for this CPU; the kernel is printed.
- Peers that are not installed are skipped with a line saying so (pip install ".[peers]").

Then inference (10,000 rows in batches of 1024, as predict_logits does by default) and
latency (one call on 1, 16 and 64 rows, the mean of 300 calls) per system, each system
in its own process per round too; --no-training / --no-inference skip either part.
--memory adds each system's extra peak RSS over one epoch at batch 64.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # removed from the children's environment
INFERENCE_SAMPLES = 10_000  # Fashion-MNIST's test set
LATENCY_ROWS = (1, 16, 64)
LATENCY_CALLS = 300


# --- the child: one system, one cell --------------------------------------------

def child(args: argparse.Namespace) -> dict:
    """Runs in a fresh process: pins the threads, then measures and returns the result."""
    args.threads = int(args.threads)
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    import numpy  # noqa: F401  (loads the BLAS that threadpool_limits caps below)
    from threadpoolctl import threadpool_info, threadpool_limits
    if args.child == "peak":
        threadpool_limits(args.threads)
        wall, cpu = sgemm_gflops()
        return {"gflops": wall, "gflops_cpu": cpu, "blas": blas_description(threadpool_info())}
    if args.child == "peak-bf16":
        import torch
        torch.set_num_threads(args.threads)
        return {"gflops": bf16_gflops()[0]}
    import systems
    if args.system.startswith("pydfn"):
        import pydfn
        pydfn.set_num_threads(args.threads)
    elif args.system.startswith("torch"):
        import torch
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        systems.TORCH_ADAM = args.torch_adam
    threadpool_limits(args.threads)  # every BLAS/OpenMP pool loaded by now
    from workload import synthetic_data
    if args.child == "epoch":
        x, y = synthetic_data()
        epoch = systems.build_epoch(args.system, x, y, args.batch)
        start = time.perf_counter()
        loss = epoch()
        out = {"warmup": time.perf_counter() - start, "epochs": [], "cpu": [], "first_loss": loss}
        for _ in range(args.epochs):
            start, cpu = time.perf_counter(), time.process_time()
            out["loss"] = epoch()
            out["epochs"].append(time.perf_counter() - start)
            out["cpu"].append(time.process_time() - cpu)
        return out
    if args.child == "memory":
        x, y = synthetic_data()
        epoch = systems.build_epoch(args.system, x, y, 64)
        before = status_kib("VmRSS:")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current RSS
        epoch()
        return {"mib": (status_kib("VmHWM:") - before) / 1024}
    # inference: the 10,000-row pass, then the latency calls; the best of 3 samples
    x, _ = synthetic_data(INFERENCE_SAMPLES, seed=1)
    out = {}
    for rows, batch, calls in [(INFERENCE_SAMPLES, args.inference_batch, 3)] + \
            [(r, r, LATENCY_CALLS) for r in LATENCY_ROWS]:
        out[str(rows)] = min(systems.call_samples(systems.build_predict(args.system, x[:rows], batch), calls, 3))
    return out


def sgemm_gflops() -> tuple[float, float]:
    """GFLOP/s of NumPy's float32 4096x4096 product, per wall second and per CPU second (all threads)."""
    import numpy as np
    return product_gflops(lambda a: a @ a, np.random.default_rng(0).random((4096, 4096), dtype=np.float32))


def bf16_gflops() -> tuple[float, float]:
    """GFLOP/s of PyTorch's bf16 4096x4096 product (oneDNN: AMX tiles where the CPU has them, else
    vdpbf16ps) on torch's current threads, per wall second and per CPU second: the bf16 peak."""
    import torch
    a = torch.rand(4096, 4096, generator=torch.Generator().manual_seed(0)).bfloat16()
    return product_gflops(lambda a: torch.matmul(a, a), a)


def product_gflops(product, a) -> tuple[float, float]:
    """GFLOP/s of the best of 3 products of the 4096x4096 matrix a with itself (after one
    untimed), per wall second and per CPU second (all threads)."""
    product(a)
    wall = cpu = float("inf")
    for _ in range(3):
        start, cpu_start = time.perf_counter(), time.process_time()
        product(a)
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - cpu_start)
    return 2 * 4096 ** 3 / wall / 1e9, 2 * 4096 ** 3 / cpu / 1e9


def blas_description(info: list[dict]) -> str:
    return ", ".join(f"{i['internal_api']} {i.get('version')} kernel {i.get('architecture')}"
                     for i in info if i["user_api"] == "blas") or "none found"


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


# --- the parent: launches the children, interleaved, then the tables ---------------------

TIMEOUT = [600.0]  # seconds a child may take (--timeout)


def run_child(mode: str, threads: int, system: str = "pydfn", **options) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    if threads == 1:  # XLA's CPU backend: no Eigen thread pool, one intra-op thread
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    argv = [sys.executable, os.path.join(HERE, "compare.py"), "--child", mode, "--system", system,
            "--threads", str(threads)]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    # cwd: the repository root would shadow the installed pydfn with its source folder
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=HERE, timeout=TIMEOUT[0])
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {TIMEOUT[0]:.0f} s (the child was stopped)"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1]}
    return json.loads(done.stdout.splitlines()[-1])


def rotated(names: list[str], k: int) -> list[str]:
    k %= len(names)
    return names[k:] + names[:k]


def median_range(values: list[float], scale: float = 1.0, fmt: str = ".3f") -> str:
    return (f"{scale * statistics.median(values):{fmt}} "
            f"[{scale * min(values):{fmt}}-{scale * max(values):{fmt}}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (a fresh process each)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process, after one warm-up")
    parser.add_argument("--threads", type=str, default=None, help="comma list (default: 1 and all cores)")
    parser.add_argument("--batches", type=str, default="64,256")
    parser.add_argument("--systems", type=str, default=",".join(SYSTEM_ORDER),
                        help="comma list of " + ", ".join(SYSTEM_ORDER))
    parser.add_argument("--torch-adam", choices=["foreach", "fused"], default="fused",
                        help="PyTorch's Adam implementation (fused measured faster here)")
    parser.add_argument("--markdown", action="store_true", help="also print the epoch table as Markdown")
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart")
    parser.add_argument("--save", metavar="JSON", help="also write every child's raw result")
    parser.add_argument("--load", metavar="JSON", help="print the tables of a --save'd run, measuring nothing")
    parser.add_argument("--memory", action="store_true", help="also compare peak memory of one epoch")
    parser.add_argument("--inference-batch", type=int, default=1024, help="predict_logits batch (its default)")
    parser.add_argument("--no-training", action="store_true", help="skip the epoch table")
    parser.add_argument("--no-inference", action="store_true", help="skip the inference and latency tables")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a child process may take")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each child's result as it comes")
    parser.add_argument("--child", choices=["peak", "peak-bf16", "epoch", "infer", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--system", default="pydfn", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0

    import systems
    from workload import EPOCH_SAMPLES, flops_per_sample
    TIMEOUT[0] = args.timeout
    cores = len(os.sched_getaffinity(0))
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    batches = [int(b) for b in args.batches.split(",")]
    names = []
    for name in args.systems.split(","):
        reason = systems.unavailable(name)
        if reason:
            print(f"skipped {name}: {reason}")
        else:
            names.append(name)
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores; Python {platform.python_version()}"
          f"; {', '.join(f'{n} {version(n)}' for n in names)}")
    print(f"children run without {' and '.join(UNSET)} "
          f"(here: {', '.join(k + '=' + os.environ.get(k, 'unset') for k in UNSET)})")

    if args.load:
        peaks, bf16_peaks, cpu_peaks, epochs, inference = load(args.load)
        thread_counts, batches = sorted(peaks), sorted({b for _, b, _ in epochs})
        names = [n for n in SYSTEM_ORDER if any(k[-1] == n for k in [*epochs, *inference])]
    else:
        peaks, bf16_peaks, cpu_peaks, epochs, inference = measure(args, thread_counts, batches, names)
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"peaks": peaks, "bf16_peaks": bf16_peaks, "cpu_peaks": cpu_peaks, "epochs": [[*k, v] for k, v in epochs.items()],
                       "inference": [[*k, v] for k, v in inference.items()]}, f)
    best_peak = {t: max(p) for t, p in peaks.items()}
    for threads in thread_counts:
        print(f"\nSGEMM peak with {threads} thread(s): best {best_peak[threads]:.0f} GFLOP/s, rounds "
              f"{', '.join(f'{p:.0f}' for p in peaks[threads])} (NumPy 4096x4096 float32 matmul)"
              + (f"; per CPU second {max(cpu_peaks[threads]):.0f}" if threads in cpu_peaks else ""))
        if threads in bf16_peaks:
            print(f"bf16 peak with {threads} thread(s): best {max(bf16_peaks[threads]):.0f} GFLOP/s, rounds "
                  f"{', '.join(f'{p:.0f}' for p in bf16_peaks[threads])} (PyTorch 4096x4096 bf16 matmul); "
                  f"the bf16 modes' % of peak is of this one")
        elif any(is_bf16(n) for n in names):
            print(f"no bf16 peak with {threads} thread(s): the bf16 modes' % of peak is of the SGEMM's")
    gflop = flops_per_sample() * EPOCH_SAMPLES / 1e9
    bf16_peak = {t: max(bf16_peaks[t]) if t in bf16_peaks else best_peak[t] for t in thread_counts}
    peak_of = {name: bf16_peak if is_bf16(name) else best_peak for name in names}
    summary = epoch_table(epochs, thread_counts, batches, names, peak_of, gflop, EPOCH_SAMPLES)
    if cpu_peaks:
        print("\nper CPU second (the epoch's GFLOP over its CPU seconds; the peak's likewise):")
        for (threads, batch, name), row in summary.items():
            rate = gflop / row[4]
            print(f"  {threads} thread(s), batch {batch:>3}, {name:>10}: {rate:6.1f} GFLOP per CPU second, "
                  f"{100 * rate / max(cpu_peaks[threads]):3.0f}% of the SGEMM's")
    if args.markdown and summary:
        markdown(summary, thread_counts, batches, names)
    if inference:
        inference_table(inference, thread_counts, names, args.inference_batch)
    if args.memory:
        print("\npeak memory of one epoch at batch 64, beyond the data (a fresh process each):")
        for name in names:
            result = run_child("memory", max(thread_counts), name, torch_adam=args.torch_adam)
            print(f"  {name:>10}: " + (f"{result['mib']:7.1f} MiB" if "mib" in result else result["error"]))
    if args.plot and summary:
        plot(summary, args.plot, names)
    return 0


SYSTEM_ORDER = ["pydfn", "pydfn-bf16", "numpy", "torch", "torch-bf16", "jax", "jax-bf16"]


def is_bf16(name: str) -> bool:
    """Whether system `name` is a bf16 mode (products of bf16 inputs, float32 sums)."""
    return name.endswith("-bf16")


def measure(args, thread_counts, batches, names) -> tuple[dict, dict, dict, dict, dict]:
    """Runs the children, round after round: the SGEMM (and bf16) peaks, the epochs, the inference passes."""
    peaks: dict[int, list[float]] = {t: [] for t in thread_counts}
    bf16_peaks: dict[int, list[float]] = {}
    epochs: dict[tuple, list[dict]] = {}
    cpu_peaks: dict[int, list[float]] = {}
    inference: dict[tuple, list[dict]] = {}
    for r in range(args.rounds):
        for threads in thread_counts:
            result = run_child("peak", threads)
            if "error" in result:
                sys.exit(f"the SGEMM peak child failed: {result['error']}")
            peaks[threads].append(result["gflops"])
            cpu_peaks.setdefault(threads, []).append(result["gflops_cpu"])
            if r == 0:
                print(f"NumPy BLAS with {threads} thread(s): {result['blas']}")
            if any(is_bf16(n) for n in names):
                result = run_child("peak-bf16", threads)
                if "error" in result and r == 0:
                    print(f"no bf16 peak with {threads} thread(s) (the bf16 modes' % of peak is of the SGEMM's): "
                          f"{result['error']}")
                if "gflops" in result:
                    bf16_peaks.setdefault(threads, []).append(result["gflops"])
            for batch in [] if args.no_training else batches:
                for name in rotated(names, r):
                    result = run_child("epoch", threads, name, batch=batch, epochs=args.epochs,
                                       torch_adam=args.torch_adam)
                    epochs.setdefault((threads, batch, name), []).append(result)
                    if args.verbose:
                        print(f"  round {r + 1}, {threads} thread(s), batch {batch}, {name}: {result}", flush=True)
            for name in [] if args.no_inference else rotated(names, r):
                inference.setdefault((threads, name), []).append(
                    run_child("infer", threads, name, inference_batch=args.inference_batch))
        print(f"round {r + 1} of {args.rounds} done", flush=True)
    return peaks, bf16_peaks, cpu_peaks, epochs, inference


def load(path: str) -> tuple[dict, dict, dict, dict, dict]:
    with open(path) as f:
        saved = json.load(f)
    return ({int(t): p for t, p in saved["peaks"].items()}, {int(t): p for t, p in saved.get("bf16_peaks", {}).items()},
            {int(t): p for t, p in saved.get("cpu_peaks", {}).items()}, {tuple(e[:-1]): e[-1] for e in saved["epochs"]},
            {tuple(e[:-1]): e[-1] for e in saved["inference"]})


def version(name: str) -> str:
    module = name.removesuffix("-bf16")
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version
    try:
        return dist_version(module)
    except PackageNotFoundError:
        return "?"


def epoch_table(epochs, thread_counts, batches, names, peak_of, gflop, samples) -> dict:
    """Prints the epoch table (peak_of[name][threads]: the peak its % is of); returns
    {(threads, batch, name): (median s, min, max, ratio list)}."""
    summary = {}
    for threads in thread_counts:
        for batch in batches:
            print(f"\n{threads} thread(s), batch {batch}: seconds per epoch, median [min-max] of the timed epochs")
            print(f"{'system':>10} {'s/epoch':>21} {'warm-up s':>9} {'samples/s':>10} {'GFLOP/s':>8} "
                  f"{'% peak':>7} {'CPU s':>6} {'x pydfn (per round)':>22} {'x pydfn in CPU s':>22}")
            base = [r if "epochs" in r else None for r in epochs.get((threads, batch, "pydfn"), [])]
            for name in names:
                results = epochs.get((threads, batch, name), [])
                errors = [r["error"] for r in results if "error" in r]
                done = [r for r in results if "epochs" in r]
                if not done:
                    print(f"{name:>10} failed: {errors[0] if errors else 'not run'}")
                    continue
                times = [t for r in done for t in r["epochs"]]
                med = statistics.median(times)
                cpu = statistics.median(c for r in done for c in r["cpu"])
                pairs = [(r, b) for r, b in zip(results, base) if b and "epochs" in r]
                ratios = [statistics.median(r["epochs"]) / statistics.median(b["epochs"]) for r, b in pairs]
                cpu_ratios = [statistics.median(r["cpu"]) / statistics.median(b["cpu"]) for r, b in pairs]
                summary[threads, batch, name] = (med, min(times), max(times), ratios, cpu, cpu_ratios)
                warm = statistics.median(r["warmup"] for r in done)
                rate = gflop / med
                ratio, cpu_ratio = (median_range(r, fmt=".2f") if name != "pydfn" and r else ""
                                    for r in (ratios, cpu_ratios))
                print(f"{name:>10} {median_range(times):>21} {warm:>9.3f} {samples / med:>10,.0f} {rate:>8.1f} "
                      f"{100 * rate / peak_of[name][threads]:>6.0f}% {cpu:>6.2f} {ratio:>22} {cpu_ratio:>22}")
                if errors:
                    print(f"{'':>10} ({len(errors)} of {len(results)} rounds failed: {errors[0]})")
            peers = [(summary[threads, batch, n][0], n) for n in names
                     if not n.startswith("pydfn") and (threads, batch, n) in summary]
            if peers:
                print(f"fastest peer: {min(peers)[1]}")
    return summary


def markdown(summary, thread_counts, batches, names) -> None:
    cells = [(t, b) for t in thread_counts for b in batches]

    def ratio_text(name, ratios) -> str:
        if name == "pydfn" or not ratios:
            return ""
        return f", {statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"

    def table(cell_text) -> None:
        print("\n| system | " + " | ".join(f"batch {b}, {t} thr" for t, b in cells) + " |")
        print("|---|" + "---:|" * len(cells))
        for name in names:
            row = [cell_text(name, summary[(*cell, name)]) if (*cell, name) in summary else "—" for cell in cells]
            print(f"| {name} | " + " | ".join(row) + " |")

    table(lambda name, s: f"{s[0]:.3f} s ({s[1]:.3f}–{s[2]:.3f})" + ratio_text(name, s[3]))
    print("\nCPU seconds per epoch (median; all the child's threads), and x pydfn in CPU seconds:")
    table(lambda name, s: f"{s[4]:.2f} s" + ratio_text(name, s[5]))


def inference_table(inference, thread_counts, names, batch: int) -> None:
    print(f"\ninference: {INFERENCE_SAMPLES:,} rows in batches of {batch} (ms per pass), and latency: one call "
          f"on {', '.join(map(str, LATENCY_ROWS))} rows (us per call, mean of {LATENCY_CALLS}); "
          f"median [min-max] of the rounds")
    keys = [str(INFERENCE_SAMPLES)] + [str(r) for r in LATENCY_ROWS]
    print(f"{'threads':>7} {'system':>10} " + " ".join(f"{k + ' rows':>24}" for k in keys))
    for threads in thread_counts:
        for name in names:
            results = inference.get((threads, name), [])
            errors = [r["error"] for r in results if "error" in r]
            if errors:
                print(f"{threads:>7} {name:>10} failed: {errors[0]}")
                continue
            cols = [median_range([r[k] for r in results], 1e3 if k == keys[0] else 1e6,
                                 ".2f" if k == keys[0] else ".1f") for k in keys]
            print(f"{threads:>7} {name:>10} " + " ".join(f"{c:>24}" for c in cols))


def plot(summary, path: str, names: list[str]) -> None:
    from pydfn.plot import new_figure
    cells = sorted({(t, b) for t, b, _ in summary})
    names = [n for n in names if any((*c, n) in summary for c in cells)]
    fig = new_figure(figsize=(8, 4))
    ax = fig.subplots()
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        values = [summary[(*c, name)][0] if (*c, name) in summary else 0 for c in cells]
        ax.bar([i + k * width for i in range(len(cells))], values, width, label=name)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(cells))])
    ax.set_xticklabels([f"{t} thr, batch {b}" for t, b in cells])
    ax.set_ylabel("seconds per epoch (54,000 samples)")
    ax.set_title("784-256-128-10 MLP, Adam: one epoch, each system in its own process (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
