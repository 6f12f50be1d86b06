"""Side-by-side epoch times: pydfn vs the NumPy reference (and PyTorch when installed).

Trains the tutorial network (784-256-128-10, Adam, one epoch = 54,000 samples)
with each implementation in turn, interleaved, for 1 and all threads and batch
sizes 64 and 256, and prints the median of the repeats with GFLOP/s, the share
of this machine's SGEMM peak (NumPy 4096x4096 matmul, same threads) and the
ratios. NumPy's BLAS thread count is set with threadpoolctl.

    python benchmarks/compare.py [--repeats 5] [--plot compare.png] [--memory] [--no-training]

Then inference: the logits of 10,000 test-set-sized rows (predict_logits at its
default batch of 1024; NumPy's forward in the same batches), median of
--repeats passes each (each after one untimed pass), interleaved, same thread
counts. --no-training skips the epoch table. And latency: one predict_logits call
on 1, 16 and 64 rows (a server's requests), the mean of 300 calls in a row.

--memory also reports each implementation's peak memory over one epoch (Linux:
the peak RSS during the epoch minus the RSS before it, data and model loaded),
each measured in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import pydfn
from pydfn.reference import ReferenceAdam, ReferenceMLP
from pydfn.reference import train_epoch as reference_epoch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import EPOCH_SAMPLES, SIZES, flops_per_sample, synthetic_data  # noqa: E402

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover - told to the user below
    sys.exit("compare.py needs threadpoolctl:  pip install threadpoolctl")


def sgemm_peak(threads: int) -> float:
    """GFLOP/s of NumPy's float32 4096x4096 matmul, best of 3."""
    a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(3))
    return 2 * 4096 ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pydfn_epoch(x, y, batch):
    model, adam = pydfn.MLP(SIZES, seed=0), pydfn.Adam()
    model.train_epoch(x[:batch * 4], y[:batch * 4], adam, batch_size=batch)  # warm the buffers
    return lambda: model.train_epoch(x, y, adam, batch_size=batch, check_finite=False)


def numpy_epoch(x, y, batch):
    model = ReferenceMLP(SIZES, seed=0)
    adam = ReferenceAdam(model.params)
    order = np.random.default_rng(1).permutation(len(x))
    return lambda: reference_epoch(model, adam, x, y, order, batch)


def torch_epoch(x, y, batch):
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        for start in range(0, len(xt), batch):
            opt.zero_grad()
            loss_fn(net(xt[start:start + batch]), yt[start:start + batch]).backward()
            opt.step()
    return epoch


def measure(threads: int, batch: int, repeats: int, x, y, with_torch: bool) -> dict[str, float]:
    """Median seconds per epoch of each implementation, runs interleaved."""
    pydfn.set_num_threads(threads)
    runners = {"pydfn": pydfn_epoch(x, y, batch), "numpy": numpy_epoch(x, y, batch)}
    if with_torch:
        import torch
        torch.set_num_threads(threads)
        runners["torch"] = torch_epoch(x, y.astype(np.int64), batch)
    times: dict[str, list[float]] = {name: [] for name in runners}
    with threadpool_limits(threads, user_api="blas"):
        for _ in range(repeats):
            for name, run in runners.items():
                # Idle BLAS and OpenMP workers spin for a while after their last
                # call; let them sleep so each epoch pays only for its own threads.
                time.sleep(0.3)
                times[name].append(_timed(run))
    return {name: statistics.median(t) for name, t in times.items()}


INFERENCE_SAMPLES = 10_000  # Fashion-MNIST's test set


def pydfn_predict(x, batch):
    model = pydfn.MLP(SIZES, seed=0)
    model.predict_logits(x[:batch], batch_size=batch)  # warm the buffers
    return lambda: model.predict_logits(x, batch_size=batch)


def numpy_predict(x, batch):
    model = ReferenceMLP(SIZES, seed=0)
    return lambda: np.concatenate([model.forward(x[start:start + batch])[-1]
                                   for start in range(0, len(x), batch)])


def torch_predict(x, batch):
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, 10))
    xt = torch.from_numpy(x)

    def predict():
        with torch.no_grad():
            return torch.cat([net(xt[start:start + batch]) for start in range(0, len(xt), batch)])
    return predict


def measure_inference(threads: int, batch: int, repeats: int, x, with_torch: bool,
                      calls: int = 1) -> dict[str, float]:
    """Median seconds of one pass of predict_logits over x per implementation, interleaved
    (each sample the mean of `calls` passes in a row)."""
    pydfn.set_num_threads(threads)
    runners = {"pydfn": pydfn_predict(x, batch), "numpy": numpy_predict(x, batch)}
    if with_torch:
        import torch
        torch.set_num_threads(threads)
        runners["torch"] = torch_predict(x, batch)
    times: dict[str, list[float]] = {name: [] for name in runners}
    with threadpool_limits(threads, user_api="blas"):
        for _ in range(repeats):
            for name, run in runners.items():
                # As in measure(), the other implementation's workers fall asleep; then as
                # many untimed passes as timed: a ~20 ms pass timed straight after an idle
                # pause ran up to 2.5x slower here (cold core: caches, clock; the idle
                # virtual core takes a while to be given a real one again).
                time.sleep(0.3)
                for _ in range(calls):
                    run()
                times[name].append(_timed(lambda: [run() for _ in range(calls)]) / calls)
    return {name: statistics.median(t) for name, t in times.items()}


MEMORY_CHILD = """
import sys
sys.path.insert(0, {here!r})
import compare
from workload import synthetic_data

def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

x, y = synthetic_data()
epoch = compare.{runner}(x, y, 64)
before = status_kib("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
epoch()
print(status_kib("VmHWM:") - before)
"""


def peak_memory_mib(runner: str) -> float:
    """Extra peak RSS (MiB) of one epoch of ``runner``, in a fresh interpreter."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = MEMORY_CHILD.format(here=here, runner=runner)
    # cwd: `python -c` puts it first on sys.path, and the repository root would
    # shadow the installed pydfn with its uncompiled source folder.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=here)
    return int(out.stdout.split()[-1]) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="epochs timed per cell (median)")
    parser.add_argument("--threads", type=str, default=None, help="comma list (default: 1 and all cores)")
    parser.add_argument("--batches", type=str, default="64,256")
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart")
    parser.add_argument("--memory", action="store_true", help="also compare peak memory of one epoch")
    parser.add_argument("--inference-batch", type=int, default=1024, help="predict_logits batch (its default)")
    parser.add_argument("--no-training", action="store_true", help="skip the epoch table (inference only)")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    batches = [int(b) for b in args.batches.split(",")]
    try:
        import torch  # noqa: F401
        with_torch = True
    except ImportError:
        with_torch = False

    blas = [f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
            for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores; pydfn {pydfn.__version__} "
          f"kernels {pydfn._core.isa()}; NumPy {np.__version__} BLAS {', '.join(blas) or 'none'}"
          + (f"; torch {torch.__version__}" if with_torch else "; torch not installed"))
    x, y = synthetic_data()
    gflop = flops_per_sample() * EPOCH_SAMPLES / 1e9
    header = (f"{'threads':>7} {'batch':>5} {'impl':>6} {'s/epoch':>8} {'samples/s':>10} {'GFLOP/s':>8} "
              f"{'% peak':>7} {'vs numpy':>9}" + (f" {'vs torch':>9}" if with_torch else ""))
    rows = []
    peaks = {}
    for threads in thread_counts:
        peak = peaks[threads] = sgemm_peak(threads)
        print(f"\nSGEMM peak with {threads} thread(s): {peak:.0f} GFLOP/s (NumPy 4096x4096 float32 matmul)")
        print(header)
        for batch in [] if args.no_training else batches:
            medians = measure(threads, batch, args.repeats, x, y, with_torch)
            for name, seconds in medians.items():
                print(f"{threads:>7} {batch:>5} {name:>6} {seconds:>8.3f} "
                      + rates(seconds, EPOCH_SAMPLES, gflop, peak, medians))
                rows.append((threads, batch, name, seconds))
    inference(thread_counts, peaks, args.inference_batch, args.repeats, with_torch)
    latency(thread_counts, args.repeats, with_torch)
    if args.memory:
        print("\npeak memory of one epoch at batch 64, beyond the data (fresh interpreter each):")
        for name in ["pydfn", "numpy"] + (["torch"] if with_torch else []):
            print(f"  {name:>6}: {peak_memory_mib(name + '_epoch'):7.1f} MiB")
    if args.plot and rows:
        plot(rows, args.plot)
    return 0


def inference(thread_counts: list[int], peaks: dict[int, float], batch: int, repeats: int,
              with_torch: bool) -> None:
    """The inference table: one forward pass over INFERENCE_SAMPLES rows."""
    x, _ = synthetic_data(INFERENCE_SAMPLES, seed=1)
    products = [a * b for a, b in zip(SIZES[:-1], SIZES[1:])]
    gflop = 2 * sum(products) * INFERENCE_SAMPLES / 1e9
    print(f"\ninference: predict_logits of {INFERENCE_SAMPLES:,} rows, batch {batch} ({gflop:.2f} GFLOP)")
    print(f"{'threads':>7} {'impl':>6} {'ms/pass':>8} {'samples/s':>10} {'GFLOP/s':>8} {'% peak':>7} "
          f"{'vs numpy':>9}" + (f" {'vs torch':>9}" if with_torch else ""))
    for threads in thread_counts:
        medians = measure_inference(threads, batch, repeats, x, with_torch)
        for name, seconds in medians.items():
            print(f"{threads:>7} {name:>6} {1e3 * seconds:>8.2f} "
                  + rates(seconds, INFERENCE_SAMPLES, gflop, peaks[threads], medians))


LATENCY_ROWS = (1, 16, 64)


def latency(thread_counts: list[int], repeats: int, with_torch: bool, calls: int = 300) -> None:
    """The latency table: one predict_logits call on a few rows, as a server makes them."""
    x, _ = synthetic_data(max(LATENCY_ROWS), seed=1)
    print(f"\nlatency: one predict_logits call on a few rows (mean of {calls} calls, median of {repeats})")
    print(f"{'threads':>7} {'rows':>5} {'impl':>6} {'us/call':>8} {'vs numpy':>9}"
          + (f" {'vs torch':>9}" if with_torch else ""))
    for threads in thread_counts:
        for rows in LATENCY_ROWS:
            medians = measure_inference(threads, rows, repeats, x[:rows], with_torch, calls)
            for name, seconds in medians.items():
                line = f"{threads:>7} {rows:>5} {name:>6} {1e6 * seconds:>8.1f} {medians['numpy'] / seconds:>8.2f}x"
                if "torch" in medians:
                    line += f" {medians['torch'] / seconds:>8.2f}x"
                print(line)


def rates(seconds: float, samples: int, gflop: float, peak: float, medians: dict[str, float]) -> str:
    """A row's samples/s, GFLOP/s, % of peak and ratios to NumPy (and PyTorch, when measured)."""
    rate = gflop / seconds
    line = f"{samples / seconds:>10,.0f} {rate:>8.1f} {100 * rate / peak:>6.0f}% {medians['numpy'] / seconds:>8.2f}x"
    if "torch" in medians:
        line += f" {medians['torch'] / seconds:>8.2f}x"
    return line


def plot(rows, path: str) -> None:
    from pydfn.plot import pyplot
    plt = pyplot()
    labels = sorted({(t, b) for t, b, _, _ in rows})
    names = sorted({n for _, _, n, _ in rows}, key=["pydfn", "numpy", "torch"].index)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        values = [next(s for t, b, n, s in rows if (t, b) == label and n == name) for label in labels]
        ax.bar([i + k * width for i in range(len(labels))], values, width, label=name)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(labels))])
    ax.set_xticklabels([f"{t} thr, batch {b}" for t, b in labels])
    ax.set_ylabel("seconds per epoch (54,000 samples)")
    ax.set_title("784-256-128-10 MLP, Adam: one epoch (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
