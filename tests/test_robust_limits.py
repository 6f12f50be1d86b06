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


OUT_OF_MEMORY = """
import json, resource
import numpy as np, pydfn
pydfn.set_num_threads(THREADS)
# 32 MB to gather a batch of 8 rows; the first product packs panels of W (1e6 rows, 17
# columns: a partial panel on every ISA), >= 32 MB of kernel scratch a thread.
model = pydfn.MLP([1_000_000, 17, 2], seed=0)
rng = np.random.default_rng(0)
x = rng.random((8, 1_000_000), dtype=np.float32)
y = np.array([0, 1] * 4)
opt = pydfn.Adam()
before = [w.copy() for w in model.get_weights()]
soft, hard = resource.getrlimit(resource.RLIMIT_AS)

def address_space():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()

outcome = {}
for name, call in [("predict_logits", lambda: model.predict_logits(x)),
                   ("train_step", lambda: model.train_step(x, y, opt)),
                   ("train_epoch", lambda: model.train_epoch(x, y, opt, batch_size=8))]:
    resource.setrlimit(resource.RLIMIT_AS, (address_space() + (48 << 20), hard))
    try:
        call()
        outcome[name] = "ran"
    except MemoryError:
        outcome[name] = "MemoryError"
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
outcome["unchanged"] = all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
outcome["usable"] = model.predict_logits(x).shape == (8, 2)
print(json.dumps(outcome))
"""


@pytest.mark.skipif(bool(os.environ.get("PYDFN_SANITIZED")), reason="ASan reserves terabytes of address space")
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
@pytest.mark.parametrize("threads", [1, 2])
def test_running_out_of_memory_raises_memory_error_and_changes_nothing(threads):
    # Memory a call needs inside its parallel region (the kernels' per-thread
    # scratch) is allocated before the region: a std::bad_alloc inside one would
    # end the process (SIGABRT), with one thread too.
    outcome = run(OUT_OF_MEMORY.replace("THREADS", str(threads)), timeout=120)
    assert outcome == {"predict_logits": "MemoryError", "train_step": "MemoryError",
                       "train_epoch": "MemoryError", "unchanged": True, "usable": True}
