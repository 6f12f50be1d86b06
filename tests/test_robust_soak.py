"""Soak (issue 33, item 5): 8 threads predict one row at a time on one model, through Python's
predict_proba and through the C API's pydfn_predict_proba (ctypes releases the GIL, so the C calls
really overlap), fp32 and bf16. Every result must equal, bit for bit, the one-thread result for
that row; the process must not crash; its resident memory must not grow.

The suite runs each soak for PYDFN_SOAK_SECONDS (default 2 s); `.ci/soak` runs the same code for
20 s and prints the numbers. Each soak runs in a fresh interpreter, with a timeout, so a crash or a
deadlock fails the test, and the memory measured is the soak's alone."""

from __future__ import annotations

import json
import os

import pytest

from _subprocess import run_python

SECONDS = float(os.environ.get("PYDFN_SOAK_SECONDS", "2"))
THREADS = 8

SOAK = """
import ctypes, gc, json, os, tempfile, threading, time
import numpy as np
import pydfn

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

rng = np.random.default_rng(0)
x = rng.random((256, 20), dtype=np.float32)
model = pydfn.MLP([20, 32, 4], precision=PRECISION, seed=1)
model.fit(x, rng.integers(0, 4, 256), pydfn.Adam(), epochs=2, batch_size=32, verbose=0)

if API == "python":
    def predict(i):
        return model.predict_proba(x[i:i + 1])
else:  # the C API on the model's checkpoint, as a C program would load it
    c_float_p = ctypes.POINTER(ctypes.c_float)
    lib = ctypes.CDLL(os.path.join(pydfn.get_library_dir(), "libpydfn.so"))
    lib.pydfn_last_error.restype = ctypes.c_char_p
    lib.pydfn_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.pydfn_predict_proba.argtypes = [ctypes.c_void_p, c_float_p, ctypes.c_size_t, ctypes.c_size_t, c_float_p]
    path = os.path.join(tempfile.mkdtemp(), "m.npz")
    model.save(path)
    handle = ctypes.c_void_p()
    assert lib.pydfn_model_load(path.encode(), ctypes.byref(handle)) == 0, lib.pydfn_last_error()

    def predict(i):
        out = np.empty((1, 4), np.float32)
        status = lib.pydfn_predict_proba(handle, x[i:].ctypes.data_as(c_float_p), 1, 20, out.ctypes.data_as(c_float_p))
        assert status == 0, lib.pydfn_last_error()  # the message is the calling thread's
        return out

expected = [predict(i).tobytes() for i in range(len(x))]  # one thread, one row at a time
ready = threading.Barrier(THREADS + 1)
go, stop = threading.Event(), threading.Event()
calls, wrong = [0] * THREADS, []

def serve(t):
    rows = range(t, t + len(x))  # each thread starts at another row
    for i in rows:  # warm-up: workspaces, allocator arenas
        predict(i % len(x))
    ready.wait()
    go.wait()
    while not stop.is_set():
        for i in rows:
            if predict(i % len(x)).tobytes() != expected[i % len(x)]:
                wrong.append((t, i % len(x)))
                stop.set()
            calls[t] += 1

threads = [threading.Thread(target=serve, args=(t,)) for t in range(THREADS)]
for t in threads:
    t.start()
ready.wait()
gc.collect()
before = peak = rss()
start = time.perf_counter()
go.set()
while time.perf_counter() - start < SECONDS and not stop.is_set():
    time.sleep(0.05)
    peak = max(peak, rss())
stop.set()
for t in threads:
    t.join()
seconds = time.perf_counter() - start
gc.collect()
print(json.dumps({"calls": calls, "wrong": wrong[:5], "seconds": seconds,
                  "growth": rss() - before, "peak_growth": peak - before}))
"""


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("api", ["python", "c"])
def test_eight_threads_predicting_one_row_at_a_time_get_the_serial_results(api, precision):
    code = f"API, PRECISION, THREADS, SECONDS = {api!r}, {precision!r}, {THREADS}, {SECONDS}\n" + SOAK
    report = json.loads(run_python(code, timeout=SECONDS + 120, OMP_NUM_THREADS="2").splitlines()[-1])
    calls = sum(report["calls"])
    print(f"soak {api} {precision}: {calls} calls by {THREADS} threads in {report['seconds']:.1f} s, "
          f"RSS growth {report['growth'] / 1024:.0f} KB (peak {report['peak_growth'] / 1024:.0f} KB)")
    assert report["wrong"] == [], f"results differ from the serial ones at (thread, row) {report['wrong']}"
    assert min(report["calls"]) > 0, report["calls"]  # every thread served
    if not os.environ.get("PYDFN_SANITIZED"):  # ASan's shadow memory and quarantine inflate the RSS
        assert report["growth"] < 4 * 2**20, f"resident memory grew {report['growth'] / 2**20:.1f} MB"
