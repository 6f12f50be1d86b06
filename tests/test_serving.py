"""Serving one model from many Python threads: predictions and evaluations run at once
(each has its own buffers in the core; the GIL is released) and equal a serial run bit
for bit; training and predicting the same model from two threads never tear a result;
two threads' train_steps are serialized. Run in subprocesses with a timeout, so a
deadlock or crash fails the test instead of the run."""

from __future__ import annotations

import json

import pytest

from _subprocess import run_python

COMMON = """
import json, threading, time
import numpy as np, pydfn
rng = np.random.default_rng(0)
x = rng.random((1000, 64), dtype=np.float32)
y = rng.integers(0, 10, 1000)

def in_threads(count, target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads: t.start()
    for t in threads: t.join()
"""


def run(code: str, timeout: float = 120) -> dict:
    return json.loads(run_python(COMMON + code, timeout, OMP_NUM_THREADS="2"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_eight_threads_predicting_on_one_model_equal_the_serial_results(precision):
    report = run(f"""
model = pydfn.MLP([64, 48, 32, 10], seed=3, precision={precision!r})
model.train_epoch(x, y, pydfn.Adam(), batch_size=50)
# each thread its own rows and batch sizes, so the calls' buffers differ in size
work = [(x[37 * i:], 16 + 40 * i) for i in range(8)]
serial = [(model.predict_logits(xi, batch_size=b), model.predict_proba(xi, batch_size=b),
           model.evaluate(xi, y[37 * i:], batch_size=b)) for i, (xi, b) in enumerate(work)]
same = [True] * 8
def serve(i):
    xi, b = work[i]
    for _ in range(20):
        got = (model.predict_logits(xi, batch_size=b), model.predict_proba(xi, batch_size=b),
               model.evaluate(xi, y[37 * i:], batch_size=b))
        same[i] = same[i] and bool(np.array_equal(got[0], serial[i][0])
                                   and np.array_equal(got[1], serial[i][1]) and got[2] == serial[i][2])
in_threads(8, serve)
print(json.dumps({{"same": same}}))
""")
    assert report == {"same": [True] * 8}


def test_fit_and_predict_on_one_model_never_tear_a_prediction():
    # A thread takes 100 train_steps while another keeps predicting. Every prediction must
    # be the model's prediction after some whole number k of steps (k never decreasing),
    # which a serial replay of the same steps gives exactly.
    report = run("""
probe = x[:200]
def batch(k):
    return x[(k * 10) % 990:][:10], y[(k * 10) % 990:][:10]
replay = pydfn.MLP([64, 48, 10], seed=5)
opt = pydfn.Adam()
snapshots = [replay.predict_logits(probe)]
for k in range(100):
    replay.train_step(*batch(k), opt)
    snapshots.append(replay.predict_logits(probe))

model = pydfn.MLP([64, 48, 10], seed=5)
seen = []
def trainer():
    opt = pydfn.Adam()
    for k in range(100):
        model.train_step(*batch(k), opt)
        time.sleep(0.001)  # 100 steps of this small net take ~5 ms: room for predictions between them
worker = threading.Thread(target=trainer)
worker.start()
while worker.is_alive() or not seen:
    seen.append(model.predict_logits(probe))
worker.join()
def step_of(p):
    return next((k for k, s in enumerate(snapshots) if np.array_equal(p, s)), -1)
steps = [step_of(p) for p in seen]
print(json.dumps({"torn": steps.count(-1), "ordered": steps == sorted(steps), "distinct": len(set(steps)),
                  "final": bool(np.array_equal(model.predict_logits(probe), snapshots[-1]))}))
""")
    assert report["torn"] == 0, "a prediction matched no state between whole steps"
    assert report["ordered"], "a prediction saw an older state than one before it"
    assert report["final"]
    assert report["distinct"] > 1, "no prediction overlapped the training: the test proved nothing"


def test_train_steps_from_two_threads_are_serialized():
    # Every step uses the same batch, so any order of whole steps gives the serial result;
    # two steps interleaved (gradients, gradients, update, update) would not.
    report = run("""
xb, yb = x[:32], y[:32]
serial = pydfn.MLP([64, 48, 10], seed=9)
opt = pydfn.Adam()
for _ in range(200):
    serial.train_step(xb, yb, opt)
model = pydfn.MLP([64, 48, 10], seed=9)
shared = pydfn.Adam()
def steps(i):
    for _ in range(100):
        model.train_step(xb, yb, shared)
in_threads(2, steps)
print(json.dumps({"same": all(np.array_equal(a, b) for a, b in zip(model.get_weights(), serial.get_weights())),
                  "steps": model.optimizer_step}))
""")
    assert report == {"same": True, "steps": 200}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_predictions_follow_every_change_of_the_weights(precision):
    # Predictions read the weights packed once after they last changed (fp32: calls of more
    # than one row; bf16: every call); every write (train_step, set_weights...) makes that
    # copy stale.
    import numpy as np

    import pydfn

    def mlp(seed):
        return pydfn.MLP([64, 48, 32, 10], seed=seed, precision=precision)
    rng = np.random.default_rng(1)
    x = rng.random((50, 64), dtype=np.float32)
    y = rng.integers(0, 10, 50)
    model = mlp(3)
    before = model.predict_proba(x)
    model.train_step(x, y, pydfn.Adam(lr=0.01))
    after = model.predict_proba(x)
    fresh = mlp(0)
    fresh.set_weights(model.get_weights())
    assert not np.array_equal(before, after)
    assert np.array_equal(after, fresh.predict_proba(x))
    # one row at a time gives the batch's bits (fp32: W read in place, nothing packed)
    assert all(np.array_equal(model.predict_proba(x[i]), after[i]) for i in range(len(x)))
    fresh.set_weights(mlp(5).get_weights())
    assert np.array_equal(fresh.predict_logits(x), mlp(5).predict_logits(x))
    assert np.array_equal(fresh.predict_logits(x[:1]), mlp(5).predict_logits(x[:1]))
