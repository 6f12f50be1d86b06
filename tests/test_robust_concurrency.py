"""Threads: two models trained at once in two Python threads (the core releases the GIL)
give exactly their one-after-the-other results; one model used from two threads at once
is refused with a ValueError, never left with corrupted weights. Run in subprocesses with
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


def test_one_model_from_two_threads_is_refused_and_its_training_is_untouched():
    # A thread trains while the main thread keeps calling into the same model: each call
    # runs between two C++ calls of the other thread or is refused (either thread may be),
    # and a refused call changes nothing, so retrying the refused epochs gives exactly
    # the weights of training undisturbed.
    report = run("""
reference = flat(train(7, epochs=3))
model = pydfn.MLP([64, 48, 10], seed=7)
opt = pydfn.Adam()
def fit():
    for epoch in range(3):
        while True:
            try:
                model.train_epoch(x, y, opt, batch_size=16, seed=epoch)
                break
            except ValueError:
                pass  # the main thread held the model: nothing was trained, try again
worker = threading.Thread(target=fit)
refused, ran, messages = 0, 0, set()
worker.start()
while worker.is_alive():
    try:
        model.predict(x[:100])
        model.evaluate(x[:100], y[:100])
        ran += 1
    except ValueError as exc:
        refused += 1
        messages.add(str(exc))
worker.join()
print(json.dumps({"refused": refused, "messages": sorted(messages),
                  "same": bool(np.array_equal(flat(model), reference))}))
""")
    assert report["same"], "concurrent calls changed the training's result"
    assert report["refused"] > 0, "no call overlapped the training: the test proved nothing"
    assert report["messages"] == ["this model is already in use by another thread; use one model per thread"]

