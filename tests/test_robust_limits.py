"""Resource limits: predicting a million rows takes memory for the outputs plus one batch,
not for a million rows of activations; the thread count (OMP_NUM_THREADS=1, or 8 threads
on fewer cores) never changes the weights. Each in a fresh interpreter."""

from __future__ import annotations

import json
import os

import pytest

from _subprocess import run_python


def run(code: str, timeout: float = 300, **env: str) -> dict:
    return json.loads(run_python(code, timeout, **env))


@pytest.mark.skipif(bool(os.environ.get("PYDFN_SANITIZED")), reason="ASan's shadow memory inflates the RSS")
def test_predict_on_a_million_rows_takes_memory_for_its_outputs_not_its_activations():
    report = run("""
import json, resource
import numpy as np, pydfn
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
x = np.random.default_rng(0).random((1_000_000, 32), dtype=np.float32)  # 128 MB
model = pydfn.MLP([32, 256, 10], seed=0)
head = model.predict(x[:1000])  # warm up (first allocations, thread pool)
before = peak()
labels = model.predict(x)
after = peak()
print(json.dumps({"grew": after - before, "same": bool(np.array_equal(labels[:1000], head)),
                  "n": len(labels)}))
""")
    assert report["n"] == 1_000_000 and report["same"]
    outputs = 1_000_000 * 10 * 4 + 1_000_000 * 8  # float32 logits, then int64 labels
    activations = 1_000_000 * (256 + 10) * 4  # what an unbatched forward pass would hold: ~1 GB
    assert report["grew"] < outputs + (64 << 20) < activations, report


def test_one_thread_from_the_environment_and_eight_threads_give_the_same_weights():
    code = """
import hashlib, json
import numpy as np, pydfn
THREADS
rng = np.random.default_rng(0)
x = rng.random((500, 40), dtype=np.float32)
y = rng.integers(0, 10, 500)
model = pydfn.MLP([40, 64, 32, 10], seed=0)
model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=32, verbose=0)
w = np.concatenate([a.ravel() for a in model.get_weights()])
print(json.dumps({"threads": pydfn.get_num_threads(), "sha": hashlib.sha256(w.tobytes()).hexdigest()}))
"""
    one = run(code.replace("THREADS", ""), OMP_NUM_THREADS="1")
    eight = run(code.replace("THREADS", "pydfn.set_num_threads(8)"), OMP_NUM_THREADS="1")
    assert one["threads"] == 1
    assert eight["threads"] == 8 or not pydfn_has_openmp()
    assert one["sha"] == eight["sha"]


def pydfn_has_openmp() -> bool:
    from pydfn import _core
    return _core.has_openmp()
