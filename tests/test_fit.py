import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from _training_data import blobs, weights_equal

import pydfn
from pydfn.callbacks import Callback, Progress
from pydfn import load

SIZES = [20, 32, 4]


@pytest.fixture
def data():
    return blobs(600)


def test_fit_learns_and_records_keras_history(data):
    x, y = data
    model = pydfn.MLP(SIZES, seed=1)
    history = model.fit(x[:500], y[:500], pydfn.Adam(1e-2), epochs=4, validation_data=(x[500:], y[500:]),
                        verbose=0)
    assert model.history is history
    assert history.epoch == [0, 1, 2, 3]
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy", "time"]
    assert all(len(v) == 4 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.9
    # the last validation numbers are the final model's
    assert (history.history["val_loss"][-1], history.history["val_accuracy"][-1]) == pytest.approx(
        model.evaluate(x[500:], y[500:]), rel=1e-12)
    assert history.stop_reason is None


def test_no_validation_means_no_val_keys(data):
    history = pydfn.MLP(SIZES).fit(*data, pydfn.Adam(), epochs=1, verbose=0)
    assert list(history.history) == ["loss", "accuracy", "time"]
    assert history.best_epoch() is None


def test_fit_equals_train_epoch_bit_for_bit_however_it_is_chunked(data, tiny_chunks):
    x, y = data
    a, b = pydfn.MLP(SIZES, seed=3), pydfn.MLP(SIZES, seed=3)
    opt_a, opt_b = pydfn.Adam(), pydfn.Adam()
    losses = [a.train_epoch(x, y, opt_a, batch_size=32) for _ in range(3)]
    history = b.fit(x, y, opt_b, epochs=3, batch_size=32, verbose=0)
    assert weights_equal(a, b)
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-12)


def test_training_accuracy_counts_the_minibatch_predictions(data):
    x, y = data
    model = pydfn.MLP(SIZES, seed=0)
    history = model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    # one batch: its accuracy is the untrained model's, measured before the update
    assert history.history["accuracy"][0] == np.mean(pydfn.MLP(SIZES, seed=0).predict(x) == y)


def test_uint8_images_are_scaled_and_flattened():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(200, 4, 5), dtype=np.uint8)
    labels = rng.integers(0, 3, size=200)
    a, b, c = (pydfn.MLP([20, 8, 3], seed=2) for _ in range(3))
    a.fit(images, labels, pydfn.Adam(), epochs=2, verbose=0)
    b.fit(images.reshape(200, 20), labels, pydfn.Adam(), epochs=2, verbose=0)
    c.fit(images.reshape(200, 20).astype(np.float32) / np.float32(255), labels, pydfn.Adam(), epochs=2, verbose=0)
    assert weights_equal(a, b) and weights_equal(a, c)


def test_validation_split_holds_out_the_last_rows(data):
    x, y = data
    a, b = pydfn.MLP(SIZES, seed=4), pydfn.MLP(SIZES, seed=4)
    ha = a.fit(x, y, pydfn.Adam(), epochs=2, validation_split=0.25, verbose=0)
    hb = b.fit(x[:450], y[:450], pydfn.Adam(), epochs=2, validation_data=(x[450:], y[450:]), verbose=0)
    assert weights_equal(a, b)
    assert ha.history["val_loss"] == hb.history["val_loss"]
    assert ha.params["samples"] == 450 and ha.params["val_samples"] == 150


def test_seed_reseeds_shuffling_and_none_continues_the_model_generator(data):
    x, y = data
    runs = []
    for seed in (7, 7, 8, None):
        model = pydfn.MLP(SIZES, seed=0)
        model.fit(x, y, pydfn.Adam(), epochs=2, seed=seed, verbose=0)
        runs.append(model)
    assert weights_equal(runs[0], runs[1])
    assert not weights_equal(runs[0], runs[2])
    assert not weights_equal(runs[0], runs[3])
    twice = pydfn.MLP(SIZES, seed=0)  # two fits of one epoch continue one generator
    opt = pydfn.Adam()
    twice.fit(x, y, opt, epochs=1, verbose=0)
    twice.fit(x, y, opt, epochs=1, verbose=0)
    assert weights_equal(twice, runs[3])


def test_zero_epochs_trains_nothing(data):
    model = pydfn.MLP(SIZES)
    before = model.get_weights()
    history = model.fit(*data, pydfn.Adam(), epochs=0, verbose=0)
    assert len(history) == 0 and weights_equal(before, model)


X, Y = blobs(100)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(epochs=-1), ValueError, "epochs must be >= 0"),
    (dict(epochs=2.0), TypeError, "epochs must be an integer"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(batch_size=101), ValueError, r"batch_size \(101\) is larger than the number of training samples \(100\)"),
    (dict(validation_split=1.0), ValueError, r"validation_split must be in \[0, 1\)"),
    (dict(validation_split=-0.1), ValueError, r"validation_split must be in \[0, 1\)"),
    (dict(validation_split="0.1"), TypeError, "validation_split must be a real number"),
    (dict(validation_split=0.999), ValueError, "leaves an empty training or validation set"),
    (dict(validation_split=0.1, validation_data=(X, Y)), ValueError, "not both"),
    (dict(validation_data=X), TypeError, r"validation_data must be a pair"),
    (dict(validation_data=(X[:, :5], Y)), ValueError, r"validation_data\[0\] must have shape \(n_samples, 20\)"),
    (dict(validation_data=(X, Y[:-1])), ValueError, r"validation_data\[1\] has 99 labels but x has 100"),
    (dict(validation_data=(X, Y + 4)), ValueError, r"validation_data\[1\] must hold labels in \[0, 4\)"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(verbose=3), ValueError, "verbose must be 0, 1 or 2"),
    (dict(callbacks=Callback()), TypeError, "callbacks must be a list"),
    (dict(callbacks=[42]), TypeError, r"callbacks\[0\] must be a pydfn.callbacks.Callback or a callable"),
])
def test_bad_arguments_fail_up_front_naming_them(kwargs, error, match):
    model = pydfn.MLP(SIZES)
    before = model.get_weights()
    with pytest.raises(error, match=match):
        model.fit(X, Y, pydfn.Adam(), **{"verbose": 0, **kwargs})
    assert weights_equal(before, model) and model.history is None


@pytest.mark.parametrize("x, y, error, match", [
    (X[:, :19], Y, ValueError, r"x must have shape \(n_samples, 20\)"),
    (X, Y[:-1], ValueError, "y has 99 labels but x has 100 rows"),
    (X, Y.astype(np.float32), TypeError, "y must hold integer class labels"),
    (X.astype(np.int32), Y, TypeError, "x must be a floating-point array"),
    (np.zeros((100, 4, 4), np.uint8), Y, ValueError, r"x must hold images of 20 pixels, .* got shape \(100, 4, 4\)"),
    (np.zeros((0, 20), np.uint8), Y[:0], ValueError, "x is empty"),
])
def test_bad_data_fails_up_front(x, y, error, match):
    with pytest.raises(error, match=match):
        pydfn.MLP(SIZES).fit(x, y, pydfn.Adam(), verbose=0)


def test_optimizer_must_be_a_pydfn_optimizer():
    with pytest.raises(TypeError, match="optimizer must be a pydfn optimizer"):
        pydfn.MLP(SIZES).fit(X, Y, "adam", verbose=0)


def test_divergence_propagates_and_keeps_the_history(data):
    x, y = data
    model = pydfn.MLP(SIZES, seed=0)
    opt = pydfn.Adam(1e-2)

    def explode(epoch, logs):
        opt.lr = 1e30  # the next epoch's steps blow the weights up

    with pytest.raises(FloatingPointError, match="training stopped"):
        model.fit(x, y, opt, epochs=5, callbacks=[explode], verbose=0)
    assert len(model.history) == 1
    # one step at lr 1e30 has a finite loss, the next not: the C++ call holding both is undone
    assert model.history.stop_reason == "the loss diverged at the start of epoch 2, before its first batch"
    assert all(np.isfinite(w).all() for w in model.get_weights())


class _InterruptAfter(Callback):
    """Raises KeyboardInterrupt, as Ctrl-C would, after some C++ calls of an epoch."""

    def __init__(self, epoch, calls):
        self.epoch, self.calls, self.seen = epoch, calls, 0

    def on_batches_end(self, epoch, batches_done, stats):
        if epoch == self.epoch:
            self.seen += 1
            if self.seen == self.calls:
                self.batches_done = batches_done
                raise KeyboardInterrupt


def test_keyboard_interrupt_keeps_the_last_completed_call_and_the_history(data, tiny_chunks):
    x, y = data
    model, reference = pydfn.MLP(SIZES, seed=5), pydfn.MLP(SIZES, seed=5)
    stopper = _InterruptAfter(epoch=1, calls=3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, pydfn.Adam(), epochs=3, batch_size=50, callbacks=[stopper], verbose=0)
    assert len(model.history) == 1 and len(model.history.history["loss"]) == 1
    assert model.history.stop_reason.startswith(
        f"interrupted (Ctrl-C) in epoch 2, after batch {stopper.batches_done} of 12")
    # the reference trains exactly the completed epoch and the batches applied before the interrupt
    opt = pydfn.Adam()
    reference.train_epoch(x, y, opt, batch_size=50)
    engine = reference.engine
    order = engine.epoch_order(len(x), True)
    engine.train(x, y.astype(np.int32), order[:stopper.batches_done * 50], 50)
    assert weights_equal(model, reference)


class _TrainInterruptedDuringCall:
    """The engine's training call, but Ctrl-C lands during its n-th call: the call
    completes (the GIL is released, Python sees the signal when it returns)."""

    def __init__(self, train, n):
        self.train, self.n, self.batches = train, n, 0

    def __call__(self, *args):
        logs = self.train(*args)
        self.batches += len(logs)
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt
        return logs


def test_ctrl_c_during_a_cpp_call_keeps_that_call_and_says_so(data, tiny_chunks, monkeypatch):
    x, y = data
    model, reference = pydfn.MLP(SIZES, seed=6), pydfn.MLP(SIZES, seed=6)
    spy = _TrainInterruptedDuringCall(model.engine.train, n=5)
    monkeypatch.setattr(model.engine, "train", spy)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=50, verbose=0)
    assert spy.batches == 5 and len(model.history) == 0
    assert model.history.stop_reason.startswith("interrupted (Ctrl-C) in epoch 1, after batch 5 of 12")
    reference.engine.bind(pydfn.Adam())
    order = reference.engine.epoch_order(len(x), True)
    reference.engine.train(x, y.astype(np.int32), order[:250], 50)
    assert weights_equal(model, reference)


def test_verbose_1_without_a_terminal_prints_one_line_per_epoch(data, capsys):
    x, y = data
    pydfn.MLP(SIZES).fit(x, y, pydfn.Adam(), epochs=3, validation_split=0.2, verbose=1)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and err == ""
    assert lines[0].startswith("Epoch 1/3 - ") and "samples/s - loss " in lines[0]
    assert lines[2].endswith(tuple("0123456789")) and " - val_accuracy " in lines[2]


def test_verbose_0_is_silent(data, capsys):
    pydfn.MLP(SIZES).fit(*data, pydfn.Adam(), epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_verbose_2_prints_the_minibatch_lines_from_the_batch_stats(data, capsys, tiny_chunks):
    x, y = data
    model = pydfn.MLP(SIZES, seed=0)
    model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=50, shuffle=False,
              callbacks=[Progress(verbose=2, log_every=5)])
    lines = capsys.readouterr().out.splitlines()
    batch_lines = [line for line in lines if "minibatch" in line]
    assert len(batch_lines) == 4 and len(lines) == 6  # batches 5 and 10 of 12, twice; 2 summaries
    assert batch_lines[0].startswith("Epoch 1/2  batch 5/12  minibatch loss ")
    # the logged loss and accuracy are those of batch 5 (rows 200-249, not shuffled)
    ref = pydfn.MLP(SIZES, seed=0)
    opt = pydfn.Adam()
    for i in range(4):
        ref.train_step(x[50 * i:50 * i + 50], y[50 * i:50 * i + 50], opt)
    loss, acc = ref.evaluate(x[200:250], y[200:250])
    assert batch_lines[0].endswith(f"minibatch loss {loss:.4f}  accuracy {acc:.4f}")


CHILD = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    import pydfn
    from pydfn.callbacks import Callback

    class Ready(Callback):
        def on_batches_end(self, epoch, done, stats):
            if epoch == 1 and not os.path.exists(sys.argv[1] + ".ready"):
                open(sys.argv[1] + ".ready", "w").close()  # the parent now sends SIGINT,
                time.sleep(30)  # which lands here, in epoch 2, however fast the machine

    rng = np.random.default_rng(0)
    x = rng.random((20000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 20000)
    model = pydfn.MLP([784, 256, 128, 10])
    try:
        model.fit(x, y, pydfn.Adam(), epochs=1000, callbacks=[Ready()], verbose=0)
    except KeyboardInterrupt:
        model.save(sys.argv[1])
        print(json.dumps({"epochs": len(model.history), "reason": model.history.stop_reason}))
        sys.exit(0)
    sys.exit(3)
""")


def test_ctrl_c_in_a_real_process_leaves_the_history_and_weights(tmp_path):
    path = str(tmp_path / "interrupted.npz")
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, text=True,
                             cwd=tmp_path)  # not the source folder
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(path + ".ready"):
            assert child.poll() is None and time.monotonic() < deadline, "the child never reached epoch 2"
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, out
    report = json.loads(out)
    assert report["epochs"] == 1
    assert report["reason"].startswith("interrupted (Ctrl-C) in epoch 2, after batch ")
    model = load(path)
    assert len(model.history) == 1 and model.optimizer is not None
