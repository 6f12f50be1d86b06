"""Where a training epoch's time goes: the benchmark epoch under `perf`, its samples sorted by step.

Runs the tutorial network (784-256-128-10, Adam, 54,000 samples) for a few
epochs in a child process under ``perf record`` (a CPU-clock sample every 250 us
of running, every context switch with its call chain, every wake-up one of its
threads makes), then puts each thread's time inside the timed epochs into one
of the training step's parts: forward GEMMs, softmax-xent, the backward dX /
dW / db(+Adam) kernels, each W's Adam step, the row gather, barriers (spinning, in the futex
call, asleep in it until the last thread arrives, then woken but waiting for a
core) and time taken off the CPU by other programs (the machine is shared).
Prints thread-milliseconds per epoch, shares, each thread's part and the
hottest functions of each part. Recording the switches slows the epoch a
little (here ~8% with 1 thread, ~20% with 2): compare shares, not totals, with
compare.py.

    python benchmarks/profile_epoch.py [--threads 2] [--batch 64] [--epochs 5] [--top 3]
    python benchmarks/profile_epoch.py --run-only --epochs 1   # just the epochs, e.g. under callgrind
    python benchmarks/profile_epoch.py --kernels --threads 1     # each kernel call alone, per layer
    python benchmarks/profile_epoch.py --kernels --precision bf16   # the bf16 mode's products

--kernels needs no perf and runs on the released (stripped) wheel: it times each
kernel of a step alone at the step's shapes through pydfn._core.testing (with one
thread, in CPU time) and scales to an epoch, then the whole step from whole
epochs, what it spends beyond the kernels, and the barriers' share of that. With
--precision bf16 it times the bf16 products (packed once, as a step packs them; the
packing is not in the figure) and, when PyTorch is installed, gives each product and
the step as a share of the bf16 peak (PyTorch's 4096x4096 bf16 product, as compare.py).

Needs Linux `perf` and a _core with symbols: the default wheel is stripped, so
build one for profiling (same -O3 as a release, plus symbols and frame
pointers for the call chains):

    pip install --no-build-isolation --no-deps --config-settings=install.strip=false \\
        --config-settings=cmake.build-type=RelWithDebInfo \\
        "--config-settings=cmake.define.CMAKE_CXX_FLAGS_RELWITHDEBINFO=-O3 -g -DNDEBUG -fno-omit-frame-pointer" .

Set PYDFN_MAX_ISA to profile another kernel set.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PERIOD_NS = 250_000  # CPU-clock sampling period

# The parts of a step, matched against a sample's call chain from the leaf up;
# the first rule with a matching frame wins, so barriers come first (their
# chains also hold the step code that called them). (label, substrings of the frame's symbol).
PARTS = [
    ("barrier: spin", ("TeamBarrier::wait", "pydfn::sync_threads")),
    ("forward: sgemm_nn_bias_relu x3", ("sgemm_nn_bias_relu",)),
    ("bf16 products (forward, dX, dW) x8", ("bf16gemm",)),
    ("bf16 packing of activations and gradients", ("pack_bf16_rows", "pack_bf16_pairs")),
    ("softmax-xent forward", ("softmax_xent_forward",)),
    ("softmax-xent backward", ("softmax_xent_backward",)),
    ("backward dX: sgemm_nt_mask x2", ("sgemm_nt_mask",)),
    ("backward dW: sgemm_tn x3", ("sgemm_tn",)),
    ("bf16: optimizer step on each W, then its bf16 packs: opt_update_pack_bf16 x3", ("opt_update_pack_bf16",)),
    ("optimizer step on each W: opt_update x3", ("opt_update",)),
    ("backward db+Adam: column_sums x3", ("column_sums",)),
    ("gather of the batch rows", ("MLP::gather",)),
    ("loss sum and step (each thread), accuracy (thread 0)", ("sum_in_order", "count_correct", "opt_step")),
]
BARRIER_KERNEL = "barrier: futex syscall (on CPU)"
BARRIER_SLEEP = "barrier: asleep in futex until woken (off CPU)"
BARRIER_WOKEN = "barrier: woken, waiting for a core (off CPU)"
PREEMPTED = "preempted: runnable, core taken by another program"
OTHER_SLEEP = "other sleep (off CPU)"
REGION_OTHER = "other code in the epoch's parallel region"
OUTSIDE = "outside the C++ epoch (Python, libgomp)"
ORDER = [p for p, _ in PARTS[1:]] + [PARTS[0][0], BARRIER_KERNEL, BARRIER_SLEEP, BARRIER_WOKEN, PREEMPTED,
                                     OTHER_SLEEP, REGION_OTHER, OUTSIDE]
# Functions of libc/libm keep no frame pointer, so a sample in one loses its
# caller from the chain: these leaves name the part themselves.
LEAF_PARTS = [
    ("memmove", "gather of the batch rows"),  # MLP::gather's row copies (pack_panel's land in a kernel part)
    ("memcpy", "gather of the batch rows"),
    ("expf", "softmax-xent forward"),
    ("logf", "softmax-xent forward"),
]


# --- the child: the epochs themselves -----------------------------------------

def run_epochs(threads: int, batch: int, epochs: int, windows_path: str | None, precision: str = "fp32") -> None:
    sys.path.insert(0, HERE)
    import pydfn
    from workload import SIZES, synthetic_data
    pydfn.set_num_threads(threads)
    x, y = synthetic_data()
    model, adam = pydfn.MLP(SIZES, seed=0, precision=precision), pydfn.Adam()
    model.train_epoch(x[:batch * 4], y[:batch * 4], adam, batch_size=batch)  # warm the buffers
    windows = []  # (start, end, CPU seconds of all threads) of each epoch
    for _ in range(epochs):
        time.sleep(0.3)  # let idle OpenMP workers fall asleep, as compare.py does
        start, cpu = time.monotonic(), time.process_time()
        model.train_epoch(x, y, adam, batch_size=batch, check_finite=False)
        windows.append((start, time.monotonic(), time.process_time() - cpu))
    print(f"pydfn {pydfn.__version__} kernels {pydfn._core.isa()}, {precision}, {threads} thread(s), batch {batch}: "
          f"seconds per epoch {', '.join(f'{b - a:.3f}' for a, b, _ in windows)} "
          f"(CPU seconds {', '.join(f'{c:.3f}' for _, _, c in windows)})")
    if windows_path:
        with open(windows_path, "w") as f:
            json.dump({"isa": pydfn._core.isa(), "windows": windows}, f)


# --- the kernels alone, at the epoch's shapes ------------------------------------

def kernel_calls(core, adam, l: int, last: bool, x, w, b, dy) -> list:
    """(name, FLOP, call) of layer l's kernels: x (B, in), w (in, out), b (out), dy (B, out);
    adam: the core's OptimizerConfig."""
    import numpy as np
    (batch, n_in), n_out = x.shape, w.shape[1]
    flop = 2 * batch * n_in * n_out
    p, m, v, g = w.ravel().copy(), np.zeros(w.size, np.float32), np.ones(w.size, np.float32), w.ravel().copy()
    rows = [(f"forward  sgemm_nn_bias_relu L{l} {batch}x{n_in}x{n_out}", flop,
             lambda: core.sgemm_nn(x, w, b, not last)),
            (f"backward sgemm_tn (dW)  L{l}", flop, lambda: core.sgemm_tn(x, dy)),
            (f"backward opt_update (Adam on W) L{l}", 0, lambda: core.opt_update(p, m, v, g, 10, adam)),
            (f"backward column_sums (db) L{l}", batch * n_out, lambda: core.column_sums(dy))]
    if l > 0:
        rows.append((f"backward sgemm_nt_mask (dX) L{l}", flop, lambda: core.sgemm_nt(dy, w, x)))
    return rows


def bf16_product_calls(core, l: int, last: bool, x, w, b, dy) -> list:
    """(name, FLOP, call(repeat)) of layer l's bf16 products, each running its product `repeat`
    times after one packing of its operands."""
    (batch, n_in), n_out = x.shape, w.shape[1]
    flop = 2 * batch * n_in * n_out
    rows = [(f"forward  bf16gemm nn L{l} {batch}x{n_in}x{n_out}", flop,
             lambda repeat: core.bf16gemm(x, w, b, relu=not last, repeat=repeat)),
            (f"backward bf16gemm tn (dW) L{l}", flop, lambda repeat: core.bf16gemm(x, dy, layout="tn", repeat=repeat))]
    if l > 0:
        rows.append((f"backward bf16gemm nt (dX) L{l}", flop,
                     lambda repeat: core.bf16gemm(dy, w, mask=x, layout="nt", repeat=repeat)))
    return rows


def bf16_peak() -> float | None:
    """PyTorch's 4096x4096 bf16 product in GFLOP/s on pydfn's thread count, as compare.py
    measures the bf16 peak; None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    import pydfn
    from compare import bf16_gflops
    threads = pydfn.get_num_threads()
    torch.set_num_threads(threads)
    wall, cpu = bf16_gflops()
    return cpu if threads == 1 else wall  # as the kernels are timed: CPU time on one thread


def kernel_table(batch: int, repeats: int, precision: str = "fp32") -> None:
    """Each kernel call of a training step timed alone through pydfn._core.testing (in the
    current thread count), scaled to an epoch; the call overhead (a 1x16 column
    sum) is subtracted. sgemm_tn also pays for its fresh (in, out) output array's page faults.
    Then the whole step, from whole epochs of train_epoch, and with several threads the time
    each thread stands at the step's barriers (waiting for the slower thread, then the barrier)."""
    import timeit

    import numpy as np

    import pydfn
    sys.path.insert(0, HERE)
    from workload import EPOCH_SAMPLES, SIZES, flops_per_sample, synthetic_data
    adam_config = pydfn._core.OptimizerConfig(kind="adam", lr=1e-3)
    core, rng = pydfn._core.testing, np.random.default_rng(0)
    steps = EPOCH_SAMPLES / batch

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    # One thread: the kernel runs in this thread, so count its CPU time, which time
    # taken by other programs on a shared machine does not inflate.
    threads = pydfn.get_num_threads()
    timer = time.thread_time if threads == 1 else time.perf_counter

    def best_seconds(fn, number: int | None = None) -> float:
        number = number or max(1, int(0.02 / max(1e-7, timeit.timeit(fn, number=1))))
        return statistics.median(t / number for t in timeit.repeat(fn, number=number, repeat=repeats, timer=timer))

    tiny = rand(1, 16)
    overhead = best_seconds(lambda: core.column_sums(tiny))
    rows = []
    layers = list(zip(SIZES[:-1], SIZES[1:]))
    shapes = [(l, l == len(layers) - 1, rand(batch, n_in), rand(n_in, n_out), rand(n_out), rand(batch, n_out))
              for l, (n_in, n_out) in enumerate(layers)]
    for l, last, x, w, b, dy in shapes:
        rows += kernel_calls(core, adam_config, l, last, x, w, b, dy)
    print(f"kernels {pydfn._core.isa()}, {threads} thread(s), batch {batch}; "
          f"call overhead {1e6 * overhead:.1f} us subtracted; {steps:.2f} steps per epoch")
    line = "{:<50} {:>8.1f} {:>9.1f} {:>8}"
    print(f"{'kernel call':<50} {'us/call':>8} {'ms/epoch':>9} {'GFLOP/s':>8}")
    for name, flop, fn in rows:
        if precision == "bf16" and "sgemm" in name:
            continue  # float32 products: the bf16 ones are timed below
        seconds = max(best_seconds(fn) - overhead, 1e-9)
        print(line.format(name, 1e6 * seconds, 1e3 * seconds * steps, f"{flop / seconds / 1e9:.1f}" if flop else ""))
    peak = None
    if precision == "bf16":
        # The product alone: 11 runs after one packing, less 1 run after one packing, over 10.
        products = [(name, flop, max((best_seconds(lambda: fn(11)) - best_seconds(lambda: fn(1))) / 10, 1e-9))
                    for l, last, x, w, b, dy in shapes for name, flop, fn in bf16_product_calls(core, l, last, x, w, b, dy)]
        peak = bf16_peak()  # after the timings: PyTorch's own threads may spin on for a while
        print("bf16 products (packing excluded); bf16 peak "
              + (f"{peak:.0f} GFLOP/s (PyTorch 4096x4096 bf16 matmul)" if peak else "unknown (no PyTorch)"))
        for name, flop, seconds in products:
            share = f"  {100 * flop / seconds / 1e9 / peak:.0f}% of the bf16 peak" if peak else ""
            print(line.format(name, 1e6 * seconds, 1e3 * seconds * steps, f"{flop / seconds / 1e9:.1f}") + share)
        product_s = sum(seconds for _, _, seconds in products)

    # Adam alone over every parameter (unfused: it also reads a stored gradient)
    n_params = sum(a * b + b for a, b in layers)
    params, s1, s2, grads = rand(n_params), np.zeros(n_params, np.float32), np.ones(n_params, np.float32), \
        rand(n_params)
    adam_s = best_seconds(lambda: core.opt_update(params, s1, s2, grads, 10, adam_config)) - overhead
    print(line.format(f"opt_update (Adam) alone, all {n_params:,} params", 1e6 * adam_s, 1e3 * adam_s * steps, "")
          + f"  {1e9 * adam_s / n_params * threads:.2f} ns per parameter per thread")

    # The whole step, from whole epochs of the public train_epoch (its Python call is ~0.1% of an
    # epoch). Kernels called alone each start a parallel region, so their sum is not the step's.
    x, y = synthetic_data()
    model, adam = pydfn.MLP(SIZES, seed=0, precision=precision), pydfn.Adam()
    model.train_epoch(x[:batch * 4], y[:batch * 4], adam, batch_size=batch)  # warm the buffers

    def epoch():
        model.train_epoch(x, y, adam, batch_size=batch, check_finite=False)

    step_s = best_seconds(epoch, number=1) / steps
    flop = flops_per_sample(SIZES) * EPOCH_SAMPLES
    print(line.format(f"whole step (train_epoch in {precision}, whole epochs)", 1e6 * step_s, 1e3 * step_s * steps,
                      f"{flop / (step_s * steps) / 1e9:.1f}")
          + (f"  {100 * flop / (step_s * steps) / 1e9 / peak:.0f}% of the bf16 peak" if peak else ""))
    if precision == "bf16":
        print(f"  the bf16 products take {100 * product_s / step_s:.0f}% of the step; the rest (packing, "
              f"softmax, Adam, gather, barriers) {1e6 * (step_s - product_s):.0f} us, "
              f"{1e3 * (step_s - product_s) * steps:.0f} ms per epoch")
    if threads == 1:
        print("  (one thread: no barriers)")
        return
    # The same epochs with each barrier wait timed: the time a thread stands at a barrier
    # (the others still working, then the barrier itself).
    core.set_barrier_accounting(True)
    epoch()
    core.set_barrier_accounting(False)
    waits, wait_s = core.barrier_waits()
    per_step = waits / threads / steps
    wait_per_thread = wait_s / threads / steps
    print(line.format(f"  waiting at barriers ({per_step:.1f} per step)", 1e6 * wait_per_thread,
                      1e3 * wait_per_thread * steps, "")
          + f"  {100 * wait_per_thread / step_s:.0f}% of each thread's step")
    alone_s = best_seconds(lambda: core.barriers(1000)) / 1000
    print(line.format("  the same barriers, threads arriving together", 1e6 * per_step * alone_s,
                      1e3 * per_step * alone_s * steps, "") + f"  {1e6 * alone_s:.2f} us each")


# --- the parent: perf record, then sort the samples -----------------------------

HEADER = re.compile(r"^(?P<comm>.*?)\s+(?P<tid>\d+)\s+(?P<time>\d+\.\d+):\s+(?P<rest>.*)$")
FRAME = re.compile(r"^\s*[0-9a-f]+\s+(?P<sym>.*?)\s+\((?P<dso>[^()]*)\)$")


def records(text: str):
    """(tid, time, kind, rest, frames leaf-first) of each record of `perf script`."""
    block: list[str] = []
    for line in text.splitlines() + [""]:
        if line.strip():
            block.append(line)
            continue
        while block:
            head = HEADER.match(block[0])
            if not head:
                block.pop(0)
                continue
            # switch events have no call chain and no blank line after them
            frames, i = [], 1
            while i < len(block) and not HEADER.match(block[i]):
                m = FRAME.match(block[i])
                if m:
                    frames.append((m["sym"], m["dso"]))
                i += 1
            rest = head["rest"]
            kind = ("switch-in" if "PERF_RECORD_SWITCH IN" in rest else
                    "switch-out" if "PERF_RECORD_SWITCH OUT" in rest else
                    "sched" if "sched:sched_switch" in rest else
                    "wakeup" if "sched:sched_wakeup" in rest else
                    "sample" if "cpu-clock" in rest else "other")
            yield int(head["tid"]), float(head["time"]), kind, rest, frames
            block = block[i:]


def in_region(frames) -> bool:
    """Whether a call chain is inside the epoch's parallel region (MLP::train_batches')."""
    return any("train_batches" in sym for sym, _ in frames)


def classify_sample(frames) -> tuple[str, str]:
    """(part, leaf function) of an on-CPU sample."""
    user = [(s, d) for s, d in frames if "kernel.kallsyms" not in d]
    leaf = user[0][0] if user else (frames[0][0] if frames else "?")
    leaf = re.sub(r"\(.*", "", leaf.replace("(anonymous namespace)::", ""))
    if not in_region(frames):
        return OUTSIDE, leaf
    # the region's only system call is the barrier's futex (libc's syscall())
    if leaf == "syscall" or any("futex" in s for s, d in frames if "kernel.kallsyms" in d):
        return BARRIER_KERNEL, leaf
    for sym, _ in frames:
        for part, keys in PARTS:
            if any(k in sym for k in keys):
                return part, leaf
    for name, part in LEAF_PARTS:
        if name in leaf:
            return part, leaf
    return REGION_OTHER, leaf


def classify_sleep(sched_rest: str, frames) -> str:
    """The part of an off-CPU interval, from the call chain and state it was switched out with."""
    if not in_region(frames):
        return OUTSIDE
    state = re.search(r"prev_state=(\S+)", sched_rest)
    if state and state.group(1).startswith("R"):
        return PREEMPTED
    return BARRIER_SLEEP if any("futex" in s for s, _ in frames) else OTHER_SLEEP


def breakdown(script: str, windows: list[tuple[float, float]]):
    """Thread-seconds per part and per (part, leaf function) inside the windows, summed over the
    threads that ran the epoch's parallel region; wall seconds; those threads' ids."""
    def in_windows(t):
        return any(a <= t <= b for a, b in windows)

    def add_interval(parts, part, start, end):  # the part of [start, end] inside each window
        for a, b in windows:
            overlap = min(b, end) - max(a, start)
            if overlap > 0:
                parts[part] += overlap

    part_s: dict[int, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    leaf_s: dict[tuple[str, str], float] = collections.defaultdict(float)
    last_sched: dict[int, tuple[str, list]] = {}
    switches: dict[str, int] = collections.defaultdict(int)  # switch-outs inside the windows, by part
    out_since: dict[int, tuple[float, str]] = {}
    for tid, t, kind, rest, frames in records(script):
        if kind == "sample":
            if in_windows(t):
                part, leaf = classify_sample(frames)
                part_s[tid][part] += PERIOD_NS / 1e9
                leaf_s[(part, leaf)] += PERIOD_NS / 1e9
        elif kind == "sched":
            last_sched[tid] = (rest, frames)
        elif kind == "switch-out":
            out_since[tid] = (t, classify_sleep(*last_sched.pop(tid, ("", []))))
            if in_windows(t):
                switches[out_since[tid][1]] += 1
        elif kind == "wakeup":  # recorded when a thread of ours wakes another (the barrier's last arrival)
            woken = int(re.search(r"pid=(\d+)", rest).group(1))
            if woken in out_since and out_since[woken][1] == BARRIER_SLEEP:
                start, part = out_since[woken]
                add_interval(part_s[woken], part, start, t)
                out_since[woken] = (t, BARRIER_WOKEN)
        elif kind == "switch-in" and tid in out_since:
            start, part = out_since.pop(tid)
            add_interval(part_s[tid], part, start, t)
    # the threads of the epoch, main thread first: not the BLAS threads NumPy starts, asleep throughout
    tids = sorted(tid for tid, parts in part_s.items() if any(p != OUTSIDE for p in parts))
    return {tid: part_s[tid] for tid in tids}, leaf_s, sum(b - a for a, b in windows), switches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5, help="epochs timed and profiled")
    parser.add_argument("--top", type=int, default=3, help="hottest leaf functions shown per part")
    parser.add_argument("--run-only", action="store_true", help="run the epochs without perf")
    parser.add_argument("--kernels", action="store_true",
                        help="instead, time each kernel call alone at the step's shapes (median of --epochs repeats)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="the model's precision")
    parser.add_argument("--windows", help=argparse.SUPPRESS)  # the child writes its epochs' times here
    args = parser.parse_args(argv)
    if args.kernels:
        import pydfn
        pydfn.set_num_threads(args.threads)
        kernel_table(args.batch, max(args.epochs, 5), args.precision)
        return 0
    if args.run_only:
        run_epochs(args.threads, args.batch, args.epochs, args.windows, args.precision)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        data, windows_path = os.path.join(tmp, "perf.data"), os.path.join(tmp, "windows.json")
        child = [sys.executable, os.path.abspath(__file__), "--run-only", "--threads", str(args.threads),
                 "--batch", str(args.batch), "--epochs", str(args.epochs), "--windows", windows_path,
                 "--precision", args.precision]
        record = ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-g", "--switch-events", "-o", data,
                  "-e", f"cpu-clock/period={PERIOD_NS}/", "-e", "sched:sched_switch", "-e", "sched:sched_wakeup", "--"]
        # cwd: the repository root would shadow the installed pydfn with its source folder
        print(subprocess.run(record + child, check=True, cwd=tmp, capture_output=True, text=True).stdout.strip())
        with open(windows_path) as f:
            windows = [(a, b) for a, b, _ in json.load(f)["windows"]]
        script = subprocess.run(["perf", "script", "-i", data, "--show-switch-events",
                                 "-F", "comm,tid,time,event,period,ip,sym,dso,trace"],
                                check=True, capture_output=True, text=True).stdout
    per_thread, leaf_s, wall, switches = breakdown(script, windows)
    part_s: dict[str, float] = collections.defaultdict(float)
    for parts in per_thread.values():
        for part, seconds in parts.items():
            part_s[part] += seconds
    if not any(p.startswith(("forward", "backward")) for p in part_s):
        print("no sample fell in a kernel: is _core stripped? (see the build line in this script's help)")
    n, threads = len(windows), len(per_thread)
    total = sum(part_s.values())
    print(f"{n} epochs, {1e3 * wall / n:.1f} ms wall per epoch; {threads} thread(s) seen; "
          f"accounted thread time {1e3 * total / n:.1f} ms per epoch (wall x threads = {1e3 * wall * threads / n:.1f})")
    per = "".join(f" {'t' + str(i) + ' ms':>8}" for i in range(threads)) if threads > 1 else ""
    print(f"{'part (ms are thread-ms per epoch)':<52} {'ms':>8} {'share':>6}{per}   hottest functions")
    for part in ORDER:
        if part not in part_s:
            continue
        leaves = sorted(((s, leaf) for (p, leaf), s in leaf_s.items() if p == part), reverse=True)[:args.top]
        hot = ", ".join(f"{leaf} {100 * s / part_s[part]:.0f}%" for s, leaf in leaves)
        cols = "".join(f" {1e3 * parts.get(part, 0.0) / n:>8.1f}" for parts in per_thread.values()) if per else ""
        print(f"{part:<52} {1e3 * part_s[part] / n:>8.1f} {100 * part_s[part] / total:>5.1f}%{cols}   {hot}")
    if switches:
        print("switches off the CPU per epoch: " + ", ".join(f"{part} {count / n:,.0f}"
                                                            for part, count in sorted(switches.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
