"""Threads: two models trained at once in two Python threads (the core releases the GIL)
give exactly their one-after-the-other results; one model used from two threads at once
serializes the calls, never leaving corrupted weights. Run in subprocesses with
a timeout, so a deadlock or crash fails the test instead of the run."""

from __future__ import annotations

import json

from _subprocess import run_python

COMMON = """
import json, threading
import numpy as np, pydfn
rng = np.random.default_rng(0)
x = rng.random((4000, 64), dtype=np.float32)
y = rng.integers(0, 10, 4000)

def train(seed, epochs=2):
    model = pydfn.MLP([64, 48, 10], seed=seed)
    opt = pydfn.Adam()
    for epoch in range(epochs):
        model.train_epoch(x, y, opt, batch_size=16, seed=epoch)
    return model

def flat(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])
"""


def run(code: str, timeout: float = 120) -> dict:
    return json.loads(run_python(COMMON + code, timeout, OMP_NUM_THREADS="2"))


def test_two_models_in_two_threads_equal_training_them_one_after_the_other():
    report = run("""
alone = [flat(train(seed)) for seed in (1, 2)]
together = {}
threads = [threading.Thread(target=lambda s=s: together.__setitem__(s, flat(train(s)))) for s in (1, 2)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"same": [bool(np.array_equal(alone[i], together[s])) for i, s in enumerate((1, 2))],
                  "differ": bool(not np.array_equal(alone[0], alone[1]))}))
""")
    assert report == {"same": [True, True], "differ": True}


def test_one_model_from_two_threads_waits_and_its_training_is_untouched():
    # A thread trains while the main thread keeps calling into the same model: each call
    # waits for the other thread's core call to end (none is refused), and the reads
    # change nothing, so the weights are exactly those of training undisturbed.
    report = run("""
reference = flat(train(7, epochs=3))
model = pydfn.MLP([64, 48, 10], seed=7)
opt = pydfn.Adam()
def fit():
    for epoch in range(3):
        model.train_epoch(x, y, opt, batch_size=16, seed=epoch)
worker = threading.Thread(target=fit)
ran = 0
worker.start()
while worker.is_alive():
    model.predict(x[:100])
    model.evaluate(x[:100], y[:100])
    ran += 1
worker.join()
print(json.dumps({"ran": ran, "same": bool(np.array_equal(flat(model), reference))}))
""")
    assert report["same"], "concurrent calls changed the training's result"
    assert report["ran"] > 0
