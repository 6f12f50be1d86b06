"""Long runs (issue 33, item 8): 10,000 steps at lr 1 and 1e3 of Adam, SGD and RMSProp (and SGD
with momentum or Nesterov, RMSProp with momentum, AdamW, l1 and l2), fp32 and bf16. Either every
step keeps the weights finite, or training stops with FloatingPointError and the model holds,
bit for bit, the weights and optimizer state of its last successful step: finite, saved and
loaded exactly, predicting finite values or raising FloatingPointError (never NaN).

Which runs stop: those whose steps grow the weights geometrically at lr 1e3 — SGD's lr·g, and
AdamW's decay, a factor 1 − lr·weight_decay = −9 per step. Adam and RMSProp divide the gradient
by its running scale, so a step moves a weight by about lr at most: 1e7 in 10,000 steps."""

from __future__ import annotations

import re

import numpy as np
import pytest

import pydfn

from _training_data import finite_and_loadable, same, snapshot

STEPS, BATCH = 10_000, 32
OPTIMIZERS = {
    "adam": pydfn.Adam,
    "sgd": pydfn.SGD,
    "rmsprop": pydfn.RMSProp,
    "sgd_momentum": lambda lr: pydfn.SGD(lr, momentum=0.9),
    "sgd_nesterov": lambda lr: pydfn.SGD(lr, momentum=0.9, nesterov=True),
    "rmsprop_momentum": lambda lr: pydfn.RMSProp(lr, momentum=0.9),
    "adamw": pydfn.AdamW,
}
# The three optimizers in both precisions; the variants and the penalties in fp32 (their steps
# are the same float32 code for a bf16 model).
CASES = ([(name, precision, 0.0) for name in ("adam", "sgd", "rmsprop") for precision in ("fp32", "bf16")]
         + [(name, "fp32", 0.0) for name in ("sgd_momentum", "sgd_nesterov", "rmsprop_momentum", "adamw")]
         + [(name, "fp32", 0.1) for name in ("adam", "sgd")])
# Both messages a training step stops with (the loss, or the update) end so.
STOPPED = re.escape("update skipped, weights unchanged (try a smaller learning rate or scale the inputs)") + "$"


def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((320, 20)).astype(np.float32), rng.integers(0, 3, 320)


def predictions(model, x):
    """predict_proba's output, or the FloatingPointError it raised (its message)."""
    try:
        return model.predict_proba(x)
    except FloatingPointError as exc:
        return str(exc)


@pytest.mark.parametrize("lr", [1.0, 1e3])
@pytest.mark.parametrize("name,precision,penalty", CASES)
def test_ten_thousand_steps_stay_finite_or_stop_on_the_last_good_step(threads, tmp_path, name, precision, penalty,
                                                                      lr):
    pydfn.set_num_threads(1)  # the same bits on any count; one thread does not wait on busy cores
    x, y = data()
    model = pydfn.MLP([20, 16, 3], precision=precision, l1=penalty, l2=penalty, seed=0)
    opt = OPTIMIZERS[name](lr)
    good, error = snapshot(model), None
    for step in range(STEPS):
        rows = slice(step * BATCH % len(x), step * BATCH % len(x) + BATCH)
        try:
            model.train_step(x[rows], y[rows], opt)
        except FloatingPointError as exc:
            error = exc
            break
        good = snapshot(model)
    if lr == 1e3 and name in ("sgd", "sgd_momentum", "sgd_nesterov", "adamw"):
        assert error is not None, "the weights grow geometrically: the run must stop"
        assert re.search(STOPPED, str(error)), error
        assert same(snapshot(model), good)  # weights, optimizer state, step: those of the last good step
    else:
        assert error is None, f"stopped at step {step + 1}: {error}"
    assert model.optimizer_step == (step if error else STEPS)
    finite_and_loadable(model, tmp_path)
    got = predictions(model, x)
    if isinstance(got, str):  # the kept weights may overflow on these rows: an error, never NaN
        assert error is not None and got.startswith("the network's outputs overflowed float32"), got
    else:
        assert np.isfinite(got).all()
    loaded = predictions(pydfn.load(tmp_path / "m.npz"), x)
    assert loaded == got if isinstance(got, str) else np.array_equal(loaded, got)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_diverging_fit_keeps_the_last_finite_call_and_says_which_step(tiny_chunks, tmp_path, precision):
    # tiny_chunks: each C++ call of fit is one batch, so the last finite call is the last good step.
    x, y = data()
    model = pydfn.MLP([20, 16, 3], precision=precision, seed=0)
    kept = []

    class Record(pydfn.callbacks.Callback):
        def on_batches_end(self, epoch, batch, logs):
            kept.append(snapshot(model))

    with pytest.raises(FloatingPointError, match=r"as before this call, after optimizer step (\d+) \(") as info:
        model.fit(x, y, pydfn.SGD(1e3), epochs=1000, batch_size=BATCH, callbacks=[Record()], verbose=0)
    step = int(re.search(r"after optimizer step (\d+)", str(info.value)).group(1))
    assert step == len(kept) == model.optimizer_step > 0
    assert same(snapshot(model), kept[-1])
    assert model.history.stop_reason.startswith("the loss diverged in epoch 1, after batch")
    finite_and_loadable(model, tmp_path)
