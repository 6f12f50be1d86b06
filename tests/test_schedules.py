"""Learning-rate schedules: their values against their definitions (Keras's, PyTorch's and,
when it is installed, PyTorch itself), and fit's per-batch use of them in the core against
a loop that sets ``optimizer.lr`` in Python before each one-batch call."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest

import pydfn
from pydfn.callbacks import ReduceLROnPlateau
from pydfn.schedules import CosineDecay, OneCycle, Schedule, StepDecay

from _training_data import blobs, weights_equal
from conftest import one_batch_calls


# --- the definitions, written as their sources write them ---------------------------------


def keras_cosine_decay(step, initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps):
    """Keras 3's CosineDecay.__call__ (with warm-up), step by step."""
    if warmup_target is not None and step < warmup_steps:
        return (warmup_target - initial_learning_rate) * (step / warmup_steps) + initial_learning_rate
    target = initial_learning_rate if warmup_target is None else warmup_target
    step = min(step - warmup_steps, decay_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * step / decay_steps))
    return target * ((1 - alpha) * cosine + alpha)


def torch_one_cycle(step, max_lr, total_steps, pct_start, div_factor, final_div_factor):
    """PyTorch's OneCycleLR.get_lr (cos annealing, two phases) for one step."""
    initial = max_lr / div_factor
    phases = [{"end_step": float(pct_start * total_steps) - 1, "start": initial, "end": max_lr},
              {"end_step": total_steps - 1, "start": max_lr, "end": initial / final_div_factor}]
    start_step = 0.0
    for i, phase in enumerate(phases):
        if step <= phase["end_step"] or i == len(phases) - 1:
            pct = (step - start_step) / (phase["end_step"] - start_step)
            return phase["end"] + (phase["start"] - phase["end"]) / 2.0 * (math.cos(math.pi * pct) + 1)
        start_step = phase["end_step"]
    raise AssertionError("unreachable")


@pytest.mark.parametrize("peak, total, warmup, final", [(1e-3, 100, 0, 0.0), (1e-3, 100, 10, 0.0),
                                                        (0.1, 37, 5, 1e-3), (2e-3, 1, 0, 0.0),
                                                        (1e-2, 8, 7, 1e-2)])
def test_cosine_decay_is_keras_cosine_decay_with_warmup(peak, total, warmup, final):
    schedule = CosineDecay(peak, total, warmup_steps=warmup, final_lr=final)
    steps = np.arange(total + 20)  # past the end too: Keras holds the last rate
    want = [keras_cosine_decay(s, 0.0, total - warmup, final / peak, peak, warmup) for s in steps]
    np.testing.assert_allclose(schedule.values(steps), want, rtol=1e-13, atol=1e-15 * peak)  # cos(π·p) ≈ -1 cancels
    assert schedule(0) == (0.0 if warmup else peak) and schedule(warmup) == pytest.approx(peak, rel=1e-15)
    assert schedule(total) == pytest.approx(final, rel=1e-15) and schedule(total + 100) == schedule(total)


def test_step_decay_is_step_lr():
    schedule = StepDecay(0.1, step_size=7, gamma=0.5)
    steps = np.arange(60)
    np.testing.assert_allclose(schedule.values(steps), [0.1 * 0.5 ** (s // 7) for s in steps], rtol=1e-15)
    assert schedule(6) == 0.1 and schedule(7) == 0.05 and StepDecay(1e-3, 3, gamma=1.0)(1000) == 1e-3


@pytest.mark.parametrize("total, pct, div, final_div", [(100, 0.3, 25.0, 1e4), (10, 0.3, 25.0, 1e4),
                                                        (57, 0.25, 10.0, 100.0), (4, 0.5, 5.0, 2.0)])
def test_one_cycle_is_pytorchs_one_cycle_lr(total, pct, div, final_div):
    schedule = OneCycle(0.01, total, pct_start=pct, div_factor=div, final_div_factor=final_div)
    steps = np.arange(total)
    want = [torch_one_cycle(s, 0.01, total, pct, div, final_div) for s in steps]
    np.testing.assert_allclose(schedule.values(steps), want, rtol=1e-13, atol=1e-15 * 0.01)
    assert schedule(0) == pytest.approx(0.01 / div, rel=1e-15)
    assert schedule(total - 1) == pytest.approx(0.01 / div / final_div, rel=1e-15)
    assert schedule(total + 50) == schedule(total - 1)  # PyTorch raises past the end; this holds the minimum


def test_schedules_match_pytorch_itself():
    torch = pytest.importorskip("torch")

    def torch_rates(make, steps):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched = make(opt)
        rates = []
        for _ in range(steps):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return rates

    lr_sched = torch.optim.lr_scheduler
    np.testing.assert_allclose(
        CosineDecay(0.1, 50, final_lr=1e-3).values(np.arange(50)),
        torch_rates(lambda o: lr_sched.CosineAnnealingLR(o, T_max=50, eta_min=1e-3), 50), rtol=1e-9)
    np.testing.assert_allclose(
        StepDecay(0.1, 7, gamma=0.3).values(np.arange(50)),
        torch_rates(lambda o: lr_sched.StepLR(o, step_size=7, gamma=0.3), 50), rtol=1e-9)
    np.testing.assert_allclose(
        OneCycle(0.1, 50).values(np.arange(50)),
        torch_rates(lambda o: lr_sched.OneCycleLR(o, max_lr=0.1, total_steps=50, cycle_momentum=False), 50),
        rtol=1e-12)


@pytest.mark.parametrize("schedule", [CosineDecay(1e-3, 50, 9, 1e-5), StepDecay(1e-3, 4), OneCycle(1e-3, 40)])
def test_one_step_is_the_vectorized_value_bit_for_bit(schedule):
    steps = np.arange(0, 60)
    assert [schedule(int(s)) for s in steps] == list(schedule.values(steps))
    assert repr(schedule).startswith(type(schedule).__name__ + "(")


@pytest.mark.parametrize("make, error, match", [
    (lambda: CosineDecay(1e-3, 0), ValueError, "total_steps must be >= 1"),
    (lambda: CosineDecay(1e-3, -5), ValueError, "total_steps must be >= 1"),
    (lambda: CosineDecay(1e-3, 10, warmup_steps=-1), ValueError, "warmup_steps must be >= 0"),
    (lambda: CosineDecay(1e-3, 10, warmup_steps=10), ValueError, "less than total_steps"),
    (lambda: CosineDecay(1e-3, 10, warmup_steps=11), ValueError, "less than total_steps"),
    (lambda: CosineDecay(float("nan"), 10), ValueError, "peak_lr must be a finite number > 0"),
    (lambda: CosineDecay(float("inf"), 10), ValueError, "peak_lr must be a finite number > 0"),
    (lambda: CosineDecay(0.0, 10), ValueError, "peak_lr must be a finite number > 0"),
    (lambda: CosineDecay(1e-3, 10, final_lr=-1e-4), ValueError, "final_lr must be a finite number >= 0"),
    (lambda: CosineDecay(1e-3, 10, final_lr=1e-2), ValueError, "final_lr .* must be <= peak_lr"),
    (lambda: CosineDecay(1e-3, 10.0), TypeError, "total_steps must be an integer"),
    (lambda: CosineDecay("0.1", 10), TypeError, "peak_lr must be a real number"),
    (lambda: StepDecay(1e-3, 0), ValueError, "step_size must be >= 1"),
    (lambda: StepDecay(1e-3, 5, gamma=0.0), ValueError, r"gamma must be a number in \(0, 1\]"),
    (lambda: StepDecay(1e-3, 5, gamma=1.5), ValueError, r"gamma must be a number in \(0, 1\]"),
    (lambda: StepDecay(-1e-3, 5), ValueError, "lr must be a finite number > 0"),
    (lambda: OneCycle(1e-3, 10, pct_start=1.0), ValueError, r"pct_start must be a number in \(0, 1\)"),
    (lambda: OneCycle(1e-3, 3), ValueError, "pct_start \\* total_steps must exceed 1"),
    (lambda: OneCycle(1e-3, 10, div_factor=0.0), ValueError, "div_factor must be a finite number > 0"),
    (lambda: OneCycle(1e-3, 10, final_div_factor=float("nan")), ValueError, "final_div_factor must be"),
    (lambda: CosineDecay(1e-3, 10)(-1), ValueError, "step must be an integer >= 0"),
    (lambda: CosineDecay(1e-3, 10)(True), ValueError, "step must be an integer >= 0"),
    (lambda: CosineDecay(1e-3, 10)(2**70), ValueError, r"step must be an integer >= 0 and < 2\*\*63"),  # OverflowError
    # the first rate, 1e300, is no float32: fit failed at its first batch, "lr must be finite and >= 0"
    (lambda: OneCycle(1.0, 10, div_factor=1e-300), ValueError,
     r"max_lr / div_factor must be a finite number > 0 \(at most float32's 3.4e38\), got 9.99.*e\+299"),
])
def test_bad_arguments_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- the core's per-batch rates --------------------------------------------------------------


def test_the_core_refuses_a_bad_lr_array():
    x, y = blobs(100, 8, 3)
    model = pydfn.MLP([8, 6, 3], seed=0)
    engine = model.engine
    engine.bind(pydfn.Adam())
    before = engine.get_params()
    rows = np.arange(100, dtype=np.int64)  # 4 batches of 32
    for lr, match in [(np.full(3, 1e-3), r"lr must have shape \(4\), got \(3\)"),
                      (np.full(5, 1e-3), r"lr must have shape \(4\), got \(5\)"),
                      (np.full((4, 1), 1e-3), r"lr must have shape \(4\), got \(4, 1\)"),
                      (np.array([1e-3, np.nan, 1e-3, 1e-3]), "lr must be finite and >= 0"),
                      (np.array([1e-3, 1e-3, np.inf, 1e-3]), "lr must be finite and >= 0"),
                      (np.array([1e-3, 1e-3, 1e-3, -1e-3]), "lr must be finite and >= 0")]:
        with pytest.raises(ValueError, match=match):
            engine.train(x, y.astype(np.int32), rows, 32, None, lr)
    assert np.array_equal(engine.get_params(), before) and engine.step == 0 and engine.optimizer.lr == 1e-3


def test_a_zero_rate_updates_only_the_state():
    x, y = blobs(64, 8, 3)
    model = pydfn.MLP([8, 6, 3], seed=0)
    before = model.engine.get_params()
    model.engine.bind(pydfn.Adam())
    model.engine.train(x, y.astype(np.int32), np.arange(64, dtype=np.int64), 32, None, np.zeros(2))
    assert np.array_equal(model.engine.get_params(), before) and model.engine.step == 2
    assert model.optimizer.lr == 0.0


def reference_fit(model, x, y, optimizer, schedule, epochs, batch_size, seed):
    """fit's training, one batch per call, ``optimizer.lr`` set in Python before each."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            rows = order[start:start + batch_size]
            optimizer.lr = schedule(model.engine.step)
            model.train_epoch(x[rows], y[rows], optimizer, batch_size=len(rows), shuffle=False)


SCHEDULES = [CosineDecay(3e-3, 57, warmup_steps=7, final_lr=1e-5), StepDecay(3e-3, 10, gamma=0.5),
             OneCycle(1e-2, 57)]
OPTIMIZERS = [lambda: pydfn.Adam(), lambda: pydfn.AdamW(weight_decay=0.1), lambda: pydfn.SGD(0.1, momentum=0.9),
              lambda: pydfn.RMSProp(momentum=0.5)]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS, ids=["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("chunks", ["adaptive", "one-batch"])
def test_fit_is_bitwise_a_python_loop_setting_lr_per_batch(schedule, make_optimizer, chunks, monkeypatch):
    if chunks == "one-batch":
        one_batch_calls(monkeypatch)
    x, y = blobs(600, 20, 4)  # 19 batches of 32 per epoch, the last of 24 rows
    model = pydfn.MLP([20, 16, 4], seed=1, dropout=0.1)
    optimizer = make_optimizer()
    history = model.fit(x, y, optimizer, epochs=3, batch_size=32, seed=5, verbose=0, lr_schedule=schedule)
    want = pydfn.MLP([20, 16, 4], seed=1, dropout=0.1)
    reference_fit(want, x, y, make_optimizer(), schedule, epochs=3, batch_size=32, seed=5)
    assert weights_equal(model, want)
    assert model.optimizer_step == 57 and optimizer.lr == schedule(56)
    assert history.history["lr"] == [schedule(18), schedule(37), schedule(56)]  # each epoch's last batch


def test_the_schedule_replaces_only_the_rate():
    # A schedule with a constant rate is the run without one, bit for bit.
    x, y = blobs(300, 20, 4)
    a, b = (pydfn.MLP([20, 16, 4], seed=1) for _ in range(2))
    a.fit(x, y, pydfn.Adam(2e-3), epochs=2, batch_size=32, seed=5, verbose=0)
    b.fit(x, y, pydfn.Adam(1e-3), epochs=2, batch_size=32, seed=5, verbose=0, lr_schedule=StepDecay(2e-3, 5, 1.0))
    assert weights_equal(a, b) and "lr" not in a.history.history


def test_bitwise_identical_for_any_thread_count(threads):
    x, y = blobs(600, 40, 5)
    weights = []
    for n in (1, 2, 3):
        pydfn.set_num_threads(n)
        model = pydfn.MLP([40, 64, 32, 5], seed=3, dropout=0.2)
        model.fit(x, y, pydfn.AdamW(), epochs=2, batch_size=50, seed=1, verbose=0,
                  lr_schedule=OneCycle(5e-3, 24))
        weights.append(model.get_weights())
    assert weights_equal(weights[0], weights[1]) and weights_equal(weights[0], weights[2])


def test_resuming_a_checkpoint_continues_the_schedule(tmp_path):
    x, y = blobs(300, 20, 4)  # 10 batches of 32 per epoch
    schedule = CosineDecay(3e-3, 40, warmup_steps=5)
    whole = pydfn.MLP([20, 16, 4], seed=1)
    whole.fit(x, y, pydfn.Adam(), epochs=4, batch_size=32, seed=5, verbose=0, lr_schedule=schedule)
    half = pydfn.MLP([20, 16, 4], seed=1)
    half.fit(x, y, pydfn.Adam(), epochs=2, batch_size=32, seed=5, verbose=0, lr_schedule=schedule)
    half.save(tmp_path / "half.npz")
    resumed = pydfn.load(tmp_path / "half.npz")
    assert resumed.optimizer.lr == schedule(19)
    again = pydfn.load(tmp_path / "half.npz")
    resumed.fit(x, y, resumed.optimizer, epochs=2, batch_size=32, verbose=0, lr_schedule=schedule)
    assert weights_equal(resumed, whole) and resumed.optimizer.lr == whole.optimizer.lr == schedule(39)
    # The schedule owns lr, so an optimizer equal but for lr (a new Adam()) continues the state as well.
    again.fit(x, y, pydfn.Adam(), epochs=2, batch_size=32, verbose=0, lr_schedule=schedule)
    assert weights_equal(again, whole) and again.optimizer_step == 40
    # Other hyper-parameters still start fresh state (and the schedule from step 0).
    other = pydfn.load(tmp_path / "half.npz")
    other.fit(x, y, pydfn.Adam(beta2=0.99), epochs=1, batch_size=32, verbose=0, lr_schedule=schedule)
    assert other.optimizer_step == 10 and other.optimizer.lr == schedule(9)


def test_fit_refuses_a_schedule_beside_reduce_lr_on_plateau_before_training():
    x, y = blobs(200, 20, 4)
    model = pydfn.MLP([20, 16, 4], seed=1)
    before = model.get_weights()
    with pytest.raises(ValueError, match="lr_schedule and ReduceLROnPlateau both set the learning rate"):
        model.fit(x, y, pydfn.Adam(), epochs=2, verbose=0, validation_split=0.2,
                  callbacks=[ReduceLROnPlateau()], lr_schedule=StepDecay(1e-3, 5))
    assert weights_equal(model.get_weights(), before) and model.optimizer_step == 0


def test_fit_refuses_what_is_not_a_schedule():
    x, y = blobs(200, 20, 4)
    with pytest.raises(TypeError, match="lr_schedule must be a pydfn.schedules schedule"):
        pydfn.MLP([20, 16, 4]).fit(x, y, pydfn.Adam(), verbose=0, lr_schedule=lambda step: 1e-3)
    assert issubclass(CosineDecay, Schedule)


def test_progress_prints_the_rate(capsys):
    x, y = blobs(200, 20, 4)
    pydfn.MLP([20, 16, 4]).fit(x, y, pydfn.Adam(), epochs=1, batch_size=40, verbose=1, validation_split=0.2,
                               lr_schedule=StepDecay(1.25e-3, 100))
    assert re.search(r" - val_accuracy \d\.\d{4} - lr 0\.00125\n$", capsys.readouterr().out)


def test_csv_logger_writes_each_epochs_last_rate(tmp_path):
    x, y = blobs(200, 20, 4)  # 5 batches of 40 per epoch
    schedule = OneCycle(1e-2, 15)
    path = tmp_path / "log.csv"
    pydfn.MLP([20, 16, 4]).fit(x, y, pydfn.Adam(), epochs=3, batch_size=40, verbose=0, lr_schedule=schedule,
                               callbacks=[pydfn.callbacks.CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,time,lr"
    assert [float(line.split(",")[-1]) for line in lines[1:]] == [schedule(4), schedule(9), schedule(14)]


def test_a_diverged_call_leaves_the_rate_and_the_model_as_before():
    x, y = blobs(200, 20, 4)
    model = pydfn.MLP([20, 16, 4], seed=1)
    optimizer = pydfn.SGD(0.1)
    with pytest.raises(FloatingPointError):
        model.fit(x * 1e3, y, optimizer, epochs=1, batch_size=50, verbose=0, lr_schedule=StepDecay(1e30, 100))
    assert optimizer.lr == 0.1 and model.optimizer_step == 0
    assert weights_equal(model, pydfn.MLP([20, 16, 4], seed=1))


def test_the_pytorch_copy_of_the_recipe_runs_pydfns_cosine_schedule():
    # benchmarks/recipe_torch.py screens ingredients on a copy of --recipe best: its rates must be ours.
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "recipe_torch.py"
    spec = importlib.util.spec_from_file_location("recipe_torch", path)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)  # needs no torch until it runs
    per_epoch, total = 422, 422 * 90  # 54,000 rows in batches of 128, 90 epochs
    steps = np.arange(total)
    ours = CosineDecay(1e-3, total, warmup_steps=per_epoch).values(steps)
    np.testing.assert_allclose([copy.cosine_lr(int(s), per_epoch, total) for s in steps], ours, rtol=1e-12, atol=1e-18)
