import os

import numpy as np
import pytest
from _training_data import blobs, weights_equal

import pydfn
from pydfn.callbacks import EarlyStopping, ModelCheckpoint, Progress, ReduceLROnPlateau
from pydfn import load
from pydfn.history import History

SIZES = [20, 32, 4]


def drive(callback, model, values, monitor="val_loss"):
    """Run callback through epochs whose ``monitor`` takes ``values``; the model's
    weights at epoch e are all e. Returns the stop reason and the epochs run."""
    callback.model, callback.history = model, History({"metrics": ["loss", monitor, "time"]})
    callback.on_train_begin()
    reason, epoch = None, -1
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        reason = callback.on_epoch_end(epoch, {"loss": 0.0, monitor: value, "time": 0.0})
        if reason:
            break
    callback.on_train_end()
    return reason, epoch


def test_early_stopping_waits_patience_epochs_then_restores_the_best():
    model = pydfn.MLP([3, 2])
    stopper = EarlyStopping(patience=3)
    reason, last = drive(stopper, model, [1.0, 0.8, 0.9, 0.85, 0.81, 0.5])
    assert last == 4 and stopper.stopped_epoch == 5 and stopper.best_epoch == 2
    assert reason == ("early stopping: val_loss has not improved on 0.8000 (epoch 2) for 3 epochs; "
                      "restored the weights of epoch 2")
    assert all((w == 1).all() for w in model.get_weights())


def test_early_stopping_without_restore_keeps_the_last_weights():
    model = pydfn.MLP([3, 2])
    reason, last = drive(EarlyStopping(patience=1, restore_best_weights=False), model, [1.0, 2.0])
    assert last == 1 and reason.endswith("for 1 epoch")
    assert all((w == 1).all() for w in model.get_weights())


def test_early_stopping_min_delta_and_mode():
    model = pydfn.MLP([3, 2])
    # improvements by less than min_delta do not count
    assert drive(EarlyStopping(patience=2, min_delta=0.1), model, [1.0, 0.95, 0.91, 0.5])[1] == 2
    # accuracies: higher is better ("auto"), NaN never improves
    stopper = EarlyStopping("val_accuracy", patience=2)
    assert drive(stopper, model, [0.5, 0.7, float("nan"), 0.6], "val_accuracy")[1] == 3
    assert stopper.best_epoch == 2
    assert drive(EarlyStopping("loss", patience=1, mode="max"), model, [1.0, 2.0, 1.5], "loss")[1] == 2


def test_a_run_to_the_end_keeps_its_last_weights_as_keras_does():
    model = pydfn.MLP([3, 2])
    reason, last = drive(EarlyStopping(patience=5), model, [1.0, 0.5, 0.9])
    assert reason is None and last == 2 and all((w == 2).all() for w in model.get_weights())


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(patience=0), ValueError, "patience must be >= 1"),
    (dict(min_delta=-1), ValueError, "min_delta must be a number >= 0"),
    (dict(mode="up"), ValueError, "mode must be 'auto', 'min' or 'max'"),
])
def test_early_stopping_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


def test_reduce_lr_on_plateau_steps_the_rate_down(capsys):
    model = pydfn.MLP([3, 2])
    model.engine.bind(pydfn.Adam(lr=1e-2))  # as fit does
    schedule = ReduceLROnPlateau(factor=0.5, patience=2, min_lr=2e-3, verbose=True)
    # plateau after epoch 1: reduce after epochs 3 and 5; 6 improves; min_lr caps the cut after 8, then stops them
    assert drive(schedule, model, [1.0, 0.8, 0.9, 0.85, 0.81, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7]) == (None, 10)
    assert schedule.changes == [(3, 5e-3), (5, 2.5e-3), (8, 2e-3)]
    assert model.optimizer.lr == 2e-3
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 4: val_loss has not improved on 0.8000 (epoch 2) for 2 epochs; learning rate now 0.005",
        "Epoch 6: val_loss has not improved on 0.8000 (epoch 2) for 2 epochs; learning rate now 0.0025",
        "Epoch 9: val_loss has not improved on 0.7000 (epoch 7) for 2 epochs; learning rate now 0.002"]


def test_reduce_lr_on_plateau_changes_the_rate_the_core_uses():
    x, y = blobs(200)
    fitted = {}
    for name, callbacks in {"plain": [], "reduced": [ReduceLROnPlateau("loss", factor=0.1, patience=1,
                                                                       min_delta=10.0)]}.items():
        model = pydfn.MLP(SIZES, seed=1)
        model.fit(x, y, pydfn.SGD(0.1), epochs=3, batch_size=20, seed=0, callbacks=callbacks, verbose=0)
        fitted[name] = model
    # min_delta=10: after the first epoch none improves, so the rate drops after epochs 2 and 3
    assert fitted["reduced"].optimizer.lr == pytest.approx(1e-3)
    assert not weights_equal(fitted["plain"].get_weights(), fitted["reduced"])
    replay = pydfn.MLP(SIZES, seed=1)
    opt = pydfn.SGD(0.1)
    for epoch, lr in enumerate([0.1, 0.1, 0.1 * 0.1]):  # the products the callback computes
        opt.lr = lr
        replay.fit(x, y, opt, epochs=1, batch_size=20, seed=0 if epoch == 0 else None, verbose=0)
    assert weights_equal(replay.get_weights(), fitted["reduced"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(factor=1.0), r"factor must be a number in \(0, 1\)"),
    (dict(factor=0), r"factor must be a number in \(0, 1\)"),
    (dict(min_lr=-1), "min_lr must be a number >= 0"),
    (dict(patience=0), "patience must be >= 1"),
])
def test_reduce_lr_on_plateau_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReduceLROnPlateau(**kwargs)


def test_monitoring_a_metric_fit_does_not_record_fails_before_training():
    x, y = blobs(200)
    model = pydfn.MLP(SIZES)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"EarlyStopping monitors 'val_loss', which this fit does not record "
                                         r"\(give fit validation_data or validation_split\)"):
        model.fit(x, y, pydfn.Adam(), callbacks=[EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match="ModelCheckpoint monitors 'val_acc'"):
        model.fit(x, y, pydfn.Adam(), validation_split=0.2, verbose=0,
                  callbacks=[ModelCheckpoint("m.npz", monitor="val_acc", save_best_only=True)])
    assert weights_equal(before, model)


def test_early_stopping_stops_an_overfitting_fit_at_its_best_epoch(capsys):
    # noise labels: the network can only memorise, so the validation loss soon turns up
    rng = np.random.default_rng(0)
    x, xv = rng.normal(size=(128, 20)).astype(np.float32), rng.normal(size=(256, 20)).astype(np.float32)
    y, yv = rng.integers(0, 4, 128), rng.integers(0, 4, 256)
    model = pydfn.MLP([20, 256, 256, 4], seed=0)
    snapshots = []
    stopper = EarlyStopping(patience=3)
    history = model.fit(x, y, pydfn.Adam(3e-3), epochs=200, batch_size=16, validation_data=(xv, yv),
                        callbacks=[lambda epoch, logs: snapshots.append(model.get_weights()), stopper])
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert len(history) == best + 4 < 200 and stopper.best_epoch == best + 1 == history.best_epoch()
    assert weights_equal(snapshots[best], model)
    assert model.evaluate(xv, yv)[0] == pytest.approx(val[best], rel=1e-12)
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"Training stopped: {history.stop_reason}"
    assert history.stop_reason.startswith("early stopping: val_loss has not improved on")


def test_model_checkpoint_every_epoch_with_a_formatted_name(tmp_path):
    x, y = blobs(300)
    model = pydfn.MLP(SIZES, seed=0)
    snapshots = []
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.npz")
    ckpt = ModelCheckpoint(pattern, save_best_only=False)
    history = model.fit(x, y, pydfn.Adam(), epochs=3, verbose=0,
                        callbacks=[ckpt, lambda epoch, logs: snapshots.append(model.get_weights())])
    names = sorted(os.listdir(tmp_path))
    assert names == [f"ckpt-{e + 1:02d}-{loss:.3f}.npz" for e, loss in enumerate(history.history["loss"])]
    assert ckpt.last_saved == str(tmp_path / names[-1])
    for name, weights in zip(names, snapshots):
        assert weights_equal(load(tmp_path / name), weights)


def test_model_checkpoint_best_only_saves_only_improving_epochs(tmp_path):
    x, y = blobs(600, noise=3.0, seed=1)  # val_loss falls, then wobbles: not every epoch improves
    xv, yv = x[100:], y[100:]
    model = pydfn.MLP([20, 128, 4], seed=0)
    ckpt = ModelCheckpoint(tmp_path / "best-{epoch}.npz", save_best_only=True)
    history = model.fit(x[:100], y[:100], pydfn.Adam(3e-3), epochs=20, batch_size=16, validation_data=(xv, yv),
                        verbose=0, callbacks=[ckpt])
    val = history.history["val_loss"]
    improving = [e + 1 for e in range(len(val)) if val[e] < min(val[:e], default=np.inf)]
    assert sorted(int(name[5:-4]) for name in os.listdir(tmp_path)) == improving
    assert 1 < len(improving) < len(val)
    best = load(ckpt.last_saved)
    assert best.evaluate(xv, yv)[0] == pytest.approx(min(val), rel=1e-12)


@pytest.mark.parametrize("path, error, match", [
    ("{epch}.npz", ValueError, r"has a field that is not epoch or one of \['loss', 'accuracy', 'time'\]"),
    ("{0}.npz", ValueError, "has a field that is not epoch"),
    ("no/such/folder/m.npz", FileNotFoundError, "the folder 'no/such/folder' does not exist"),
])
def test_model_checkpoint_bad_path_fails_before_training(path, error, match):
    x, y = blobs(100)
    with pytest.raises(error, match=match):
        pydfn.MLP(SIZES).fit(x, y, pydfn.Adam(), callbacks=[ModelCheckpoint(path)], verbose=0)


def test_plain_hooks_see_the_logs_and_can_stop_training(capsys):
    x, y = blobs(200)
    seen = []

    def hook(epoch, logs):
        seen.append((epoch, sorted(logs)))
        return "enough" if epoch == 1 else None

    history = pydfn.MLP(SIZES).fit(x, y, pydfn.Adam(), epochs=5, validation_split=0.5, callbacks=[hook])
    assert seen == [(e, ["accuracy", "loss", "time", "val_accuracy", "val_loss"]) for e in (0, 1)]
    assert len(history) == 2 and history.stop_reason == "enough"
    assert capsys.readouterr().out.splitlines()[-1] == "Training stopped: enough"


def test_a_hook_returning_something_else_than_a_reason_is_an_error():
    x, y = blobs(100)
    with pytest.raises(TypeError, match="returned int: return None to go on, or a str"):
        pydfn.MLP(SIZES).fit(x, y, pydfn.Adam(), callbacks=[lambda e, logs: 1], verbose=0)


def test_callbacks_run_in_order_with_the_progress_last(capsys):
    x, y = blobs(100)
    order = []
    progress = Progress(verbose=1)
    progress.on_epoch_end = lambda epoch, logs: order.append("progress")
    pydfn.MLP(SIZES).fit(x, y, pydfn.Adam(), epochs=1, verbose=0,
                         callbacks=[progress, lambda e, logs: order.append("a"), lambda e, logs: order.append("b")])
    assert order == ["a", "b", "progress"]


def test_progress_settings_are_checked():
    with pytest.raises(ValueError, match="verbose must be 1 or 2"):
        Progress(verbose=0)
    with pytest.raises(ValueError, match="log_every must be >= 1"):
        Progress(log_every=0)
