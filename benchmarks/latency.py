"""Inference latency of the tutorial network (784-256-128-10): one call on 1, 64 and 10,000 rows.

Systems: pydfn's C API from a C program (benchmarks/c_api/latency.c, built here with CMake
against the installed pydfn), pydfn from Python (``predict_logits``, ``predict_proba``), the
lean NumPy forward, PyTorch under ``inference_mode`` and onnxruntime running pydfn's own ONNX
export; all with the same weights, computing the logits (``predict_proba`` the probabilities).

    python benchmarks/latency.py [--rounds 5] [--threads 1] [--systems c,pydfn,numpy,torch,onnxruntime]
                                 [--precision fp32|bf16]

--precision bf16 makes pydfn's model (from C and from Python) a bf16 one; the peers stay float32.

Each system runs in a fresh process per round (rounds interleaved, the order rotated), pinned
to its first N cores, with its own thread setting and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
removed from its environment. A figure is a call's time, the median of 7 samples, each the mean
of a run of calls after as many untimed ones (2,000 calls of 1 row, 300 of 64, 5 of 10,000);
the table shows the median over the rounds with their range, in microseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROWS = (1, 64, 10_000)
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SYSTEMS = ("c", "pydfn", "pydfn-proba", "numpy", "torch", "onnxruntime")
LABELS = {"c": "pydfn C API (C program)", "pydfn": "pydfn predict_logits (Python)",
          "pydfn-proba": "pydfn predict_proba (Python)", "numpy": "NumPy forward",
          "torch": "PyTorch inference_mode", "onnxruntime": "onnxruntime, pydfn's ONNX"}


def calls_for(rows: int) -> int:
    return 5 if rows >= 1000 else 300 if rows >= 64 else 2000


def child(system: str, threads: int, work: str, exe: str, precision: str) -> dict[str, float]:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    import numpy as np
    from threadpoolctl import threadpool_limits

    import pydfn
    import systems
    from workload import synthetic_data
    pydfn.set_num_threads(threads)
    x, _ = synthetic_data(ROWS[-1], seed=1)
    model = systems.pydfn_model(precision)  # the same Glorot weights as the peers' (seed 0)
    if system == "c":
        model.save(os.path.join(work, "model.npz"))
        x.astype("<f4").tofile(os.path.join(work, "x.f32"))
        out = subprocess.run([exe, os.path.join(work, "model.npz"), os.path.join(work, "x.f32"), str(threads),
                              *map(str, ROWS)], check=True, capture_output=True, text=True).stdout
        return json.loads(out)
    if system == "onnxruntime":
        import onnxruntime as ort
        path = os.path.join(work, f"model-{os.getpid()}.onnx")
        model.to_onnx(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        build = lambda xs: lambda: session.run(None, {"input": xs})  # noqa: E731
    elif system == "torch":
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        build = lambda xs: systems.build_predict("torch", xs, 1024)  # noqa: E731
    elif system == "pydfn-proba":
        build = lambda xs: lambda: model.predict_proba(xs)  # noqa: E731
    elif system == "pydfn":
        build = lambda xs: lambda: model.predict_logits(xs)  # noqa: E731
    else:
        build = lambda xs: systems.build_predict("numpy", xs, 1024)  # noqa: E731
    threadpool_limits(threads)
    return {str(rows): statistics.median(systems.call_samples(build(np.ascontiguousarray(x[:rows])), calls_for(rows), 7))
            for rows in ROWS}


def build_c_program(work: str) -> str:
    """benchmarks/c_api/latency.c built against the installed pydfn; the executable's path."""
    import pydfn
    cmake = shutil.which("cmake")
    if cmake is None:
        sys.exit("needs cmake (pip install cmake) to build the C program")
    build = os.path.join(work, "build")
    subprocess.run([cmake, "-S", os.path.join(HERE, "c_api"), "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                    f"-Dpydfn_DIR={pydfn.get_cmake_dir()}"], check=True, capture_output=True)
    subprocess.run([cmake, "--build", build], check=True, capture_output=True)
    return os.path.join(build, "latency")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma list of " + ", ".join(SYSTEMS))
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="pydfn's (the peers': fp32)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--exe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.work, args.exe, args.precision)))
        return 0
    names = args.systems.split(",")
    unknown = sorted(set(names) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update({k: str(args.threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as work:
        exe = build_c_program(work) if "c" in names else ""
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                run = subprocess.run([sys.executable, __file__, "--child", name, "--threads", str(args.threads),
                                      "--work", work, "--exe", exe, "--precision", args.precision], capture_output=True, text=True, env=env,
                                     cwd=work)
                if run.returncode != 0:
                    print(f"{name} failed: {run.stderr.strip().splitlines()[-1:]}")
                    continue
                results[name].append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} of {args.rounds} done", flush=True)
    import pydfn
    print(f"\npydfn {pydfn.__version__} ({args.precision}), {pydfn.info()['kernels']} kernels, {args.threads} thread(s); "
          f"microseconds per call, median of {args.rounds} rounds [min-max]")
    print(f"{'system':<32}" + "".join(f"{f'{rows:,} rows':>26}" for rows in ROWS))
    for name in names:
        cells = []
        for rows in ROWS:
            values = [1e6 * r[str(rows)] for r in results[name]]
            cells.append(f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]" if values else "-")
        print(f"{LABELS[name]:<32}" + "".join(f"{c:>26}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
