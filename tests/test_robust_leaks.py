"""Long runs do not leak: 10,000 calls each of predict, train_step, save and load, to_onnx and
pickle grow the resident memory of a fresh process by less than a few MB (issue 33, item 5).

Each loop runs in its own interpreter after a warm-up of 500 calls (buffers, caches and the
allocator's arenas settle there), and the growth is measured over the next 10,000."""

from __future__ import annotations

import os

import pytest

from _subprocess import run_python

pytestmark = pytest.mark.skipif(bool(os.environ.get("PYDFN_SANITIZED")),
                                reason="ASan's shadow memory and quarantine inflate the RSS")

LOOP = """
import gc, io, os, pickle, tempfile
import numpy as np
import pydfn

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

rng = np.random.default_rng(0)
x, y = rng.random((64, 30), dtype=np.float32), rng.integers(0, 4, 64)
model = pydfn.MLP([30, 32, 4], seed=0)
adam = pydfn.Adam()
model.train_step(x, y, adam)
folder = tempfile.mkdtemp()
path = os.path.join(folder, "m.npz")
calls = {
    "predict": lambda: model.predict_proba(x),
    "train_step": lambda: model.train_step(x, y, adam),
    "save_load": lambda: (model.save(path), pydfn.load(path)),
    "to_onnx": lambda: model.to_onnx(os.path.join(folder, "m.onnx")),
    "pickle": lambda: pickle.loads(pickle.dumps(model)),
}
call = calls[NAME]
for _ in range(500):
    call()
gc.collect()
before = rss()
for _ in range(10_000):
    call()
gc.collect()
print(rss() - before)
"""


@pytest.mark.parametrize("name", ["predict", "train_step", "save_load", "to_onnx", "pickle"])
def test_ten_thousand_calls_leak_nothing(name):
    if name == "to_onnx":
        pytest.importorskip("onnx")
    growth = int(run_python(f"NAME = {name!r}\n" + LOOP, timeout=300).split()[-1])
    assert growth < 4 * 2**20, f"{name}: resident memory grew {growth / 2**20:.1f} MB over 10,000 calls"
