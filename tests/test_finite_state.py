"""Issue 19 item 3: after any training call, either the model and its optimizer state are
finite and loadable, or the call raised and left them exactly as before it.
Whatever ``save`` writes, ``load`` reads."""

import math

import numpy as np
import pytest

import pydfn

from _training_data import finite_and_loadable, same, snapshot

SIZES = [6, 8, 3]
OPTIMIZERS = [
    lambda: pydfn.Adam(), lambda: pydfn.AdamW(), lambda: pydfn.SGD(1e3), lambda: pydfn.SGD(0.1, momentum=0.9),
    lambda: pydfn.RMSProp(), lambda: pydfn.RMSProp(momentum=0.5),
]


def data(scale, n=40):
    rng = np.random.default_rng(0)
    x = (rng.uniform(-1, 1, (n, SIZES[0])) * scale).astype(np.float32)
    return x, rng.integers(0, SIZES[-1], n).astype(np.int32)


def call(model, how, x, y, opt):
    if how == "train_step":
        return model.train_step(x[:16], y[:16], opt)
    if how == "train_epoch":
        return model.train_epoch(x, y, opt, batch_size=8)
    return model.fit(x, y, opt, epochs=3, batch_size=8, verbose=0)


@pytest.mark.parametrize("scale", [1.0, 1e18, 1e30, 1e37, 3e38])
@pytest.mark.parametrize("how", ["train_step", "train_epoch", "fit"])
@pytest.mark.parametrize("make_opt", OPTIMIZERS)
def test_every_training_call_leaves_a_loadable_model_or_raises_unchanged(tmp_path, make_opt, how, scale):
    model = pydfn.MLP(SIZES, seed=3)
    x, y = data(scale)
    model.train_step(x[:8] / np.float32(scale), y[:8], make_opt())  # some optimizer state to keep
    before = snapshot(model)
    for _ in range(3):  # repeated calls: the state builds up
        try:
            call(model, how, x, y, model.optimizer)
        except FloatingPointError:
            if how != "fit":  # fit raises from the chunk it was in: earlier chunks stay trained
                assert same(snapshot(model), before)
            break
        before = snapshot(model)
    finite_and_loadable(model, tmp_path)


def test_an_update_that_overflows_adams_second_moment_is_undone(tmp_path):
    # Inputs ~1e37 keep the loss finite and the weights finite but g**2 overflows in v:
    # the model used to save a checkpoint that load refused ("adam_v contains NaN or infinity").
    model = pydfn.MLP(SIZES, seed=3)
    x, y = data(1e37)
    model.train_step(x[:8] / np.float32(1e37), y[:8], pydfn.Adam())  # state to keep
    before = snapshot(model)
    with pytest.raises(FloatingPointError, match="overflow.*unchanged"):
        model.train_step(x[:16], y[:16], model.optimizer)
    assert same(snapshot(model), before)
    with pytest.raises(FloatingPointError, match="overflow.*as before this call"):
        model.train_epoch(x, y, model.optimizer, batch_size=8)
    assert same(snapshot(model), before)  # the epoch's order was drawn from the generator: restored too
    finite_and_loadable(model, tmp_path)


def test_sgd_whose_step_makes_the_weights_infinite_is_undone():
    # The step's loss is finite but its update sends the weights to inf: "weights unchanged" was a lie.
    model = pydfn.MLP(SIZES, seed=3)
    x, y = data(1e18)
    before = snapshot(model)
    with pytest.raises(FloatingPointError):
        for _ in range(5):
            model.train_step(x[:16], y[:16], pydfn.SGD(1e3))
            before = snapshot(model)
    assert same(snapshot(model), before)
    assert np.isfinite(model.engine.state().params).all()


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 1e39, -1.0])
def test_hyper_parameters_are_checked_when_assigned(make_opt, bad):
    opt = make_opt()
    for name in opt.get_config():
        if name == "nesterov":
            continue
        old = getattr(opt, name)
        with pytest.raises(ValueError, match=name):
            setattr(opt, name, bad)
        assert getattr(opt, name) == old
    with pytest.raises(TypeError, match="lr must be a real number"):
        opt.lr = "0.1"


def test_hyper_parameters_are_checked_when_bound():
    model = pydfn.MLP(SIZES, seed=3)
    x, y = data(1.0)
    model.train_step(x, y, pydfn.Adam())
    before = snapshot(model)
    model.optimizer.__dict__["lr"] = math.inf  # past the assignment check
    with pytest.raises(ValueError, match="lr must be"):
        model.train_step(x, y, model.optimizer)
    assert same(snapshot(model), before)
    sgd = pydfn.SGD(0.1, momentum=0.5, nesterov=True)
    sgd.__dict__["momentum"] = 0.0
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        model.train_step(x, y, sgd)


def test_a_learning_rate_schedule_still_keeps_the_state():
    model = pydfn.MLP(SIZES, seed=3)
    x, y = data(1.0)
    model.train_step(x, y, pydfn.Adam())
    model.optimizer.lr = 1e-4
    model.train_step(x, y, model.optimizer)
    assert model.optimizer_step == 2 and model.optimizer.lr == 1e-4


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_an_overflow_a_relu_layer_would_hide_is_an_error(precision):
    # Layer 1 overflows to +inf; layer 2 sums +inf and -inf: NaN. ReLU keeps the NaN, as
    # PyTorch's does, so it reaches the outputs and the loss instead of becoming 0 and
    # finite garbage.
    model = pydfn.MLP([2, 2, 2, 2], seed=0, precision=precision)
    w = model.get_weights()
    w[0][:] = 1e30
    w[2][0, :], w[2][1, :] = 1.0, -1.0
    model.set_weights(w)
    x = np.full((3, 2), 1e10, np.float32)
    with pytest.raises(FloatingPointError):
        model.predict_logits(x)
    before = model.get_weights()
    with pytest.raises(FloatingPointError):
        model.train_step(x, np.array([0, 1, 0]), pydfn.Adam())
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the step was undone
