"""Losses (softmax cross-entropy, mse, mae), hidden activations (relu, tanh,
sigmoid) and l1/l2 penalties: the core against the NumPy reference, and the
reference's gradients against float64 finite differences."""

import numpy as np
import pytest
from _finite_differences import central_differences

import pydfn
from pydfn.reference import ReferenceMLP

SIZES = [12, 9, 7, 3]
ACTIVATIONS = ["relu", "tanh", "sigmoid"]
LOSSES = ["softmax_xent", "mse", "mae"]
PENALTIES = [{}, {"l2": 0.01}, {"l1": 0.003}, {"l1": 0.002, "l2": 0.02}]


def batch(rng, n, loss, sizes=SIZES):
    x = rng.standard_normal((n, sizes[0])).astype(np.float32)
    if loss == "softmax_xent":
        return x, rng.integers(0, sizes[-1], n)
    return x, rng.standard_normal((n, sizes[-1])).astype(np.float32)


def finite_difference_check(ref, x, y, rng):
    """The float64 reference's gradients against central differences of its cost."""
    _, grads = ref.loss_and_grads(x, y)
    for i, j, slope in central_differences(lambda: ref.loss(x, y), ref.params, rng):
        assert grads[i].reshape(-1)[j] == pytest.approx(slope, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_reference_gradients_match_finite_differences(activation, loss, penalty, rng):
    ref = ReferenceMLP(SIZES, seed=4, dtype=np.float64, activation=activation, loss=loss, **penalty)
    x, y = batch(rng, 11, loss)
    finite_difference_check(ref, x.astype(np.float64), y if loss == "softmax_xent" else y.astype(np.float64), rng)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("n", [1, 5, 64, 67])
def test_core_cost_and_gradients_match_reference(activation, loss, penalty, n, rng):
    model = pydfn.MLP(SIZES, seed=4, activation=activation, loss=loss, **penalty)
    ref = ReferenceMLP(SIZES, seed=4, dtype=np.float64, activation=activation, loss=loss, **penalty)
    x, y = batch(rng, n, loss)
    cost, grads = model.loss_and_gradients(x, y)
    ref_cost, ref_grads = ref.loss_and_grads(x.astype(np.float64), y)
    assert cost == pytest.approx(ref_cost, rel=1e-5)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=2e-4, atol=2e-6)
    # evaluate reports the same cost; the metric matches the kind of task
    got_cost, metric = model.evaluate(x, y)
    assert got_cost == pytest.approx(ref_cost, rel=1e-5)
    out = ref.forward(x.astype(np.float64))[-1]
    if loss == "softmax_xent":
        assert metric == pytest.approx((out.argmax(axis=1) == y).mean())
    else:
        assert metric == pytest.approx(np.abs(out - y).mean(), rel=1e-5)


def test_mae_subgradient_at_zero_is_zero():
    model = pydfn.MLP([2, 3, 2], loss="mae")
    x = np.ones((4, 2), np.float32)
    y = model.predict(x).copy()
    y[:, 1] += 1.0  # column 0 is exactly predicted: no gradient flows from it
    _, grads = model.loss_and_gradients(x, y)
    W2, b2 = grads[2], grads[3]
    assert b2[0] == 0.0 and b2[1] == pytest.approx(-0.5)  # sign(-1)/(B·n) summed over 4 rows
    assert (W2[:, 0] == 0).all()


def test_regression_fits_and_reports_no_accuracy(rng):
    x = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
    y = np.stack([np.sin(3 * x[:, 0]) * x[:, 1], x[:, 0] ** 2], axis=1)
    model = pydfn.MLP([2, 32, 32, 2], loss="mse", activation="tanh", seed=1)
    before = model.evaluate(x, y)[0]
    history = model.fit(x, y, pydfn.Adam(0.01), epochs=30, batch_size=32, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "val_loss", "time"}
    assert model.evaluate(x, y)[0] < before / 5
    assert model.predict(x).shape == (256, 2)
    with pytest.raises(ValueError, match="predict_proba needs a classifier"):
        model.predict_proba(x)


def test_a_1d_target_is_accepted_for_one_output(rng):
    x = rng.standard_normal((8, 3)).astype(np.float32)
    model = pydfn.MLP([3, 4, 1], loss="mse")
    assert model.evaluate(x, x[:, 0])[0] == pytest.approx(model.evaluate(x, x[:, :1])[0])


@pytest.mark.parametrize("kwargs, y, error, match", [
    ({"loss": "hinge"}, None, ValueError, "loss must be one of"),
    ({"activation": "gelu"}, None, ValueError, "activation must be one of"),
    ({"l1": -1.0}, None, ValueError, "l1 must be a finite number >= 0"),
    ({"l2": float("inf")}, None, ValueError, "l2 must be a finite number >= 0"),
    ({"l2": "1"}, None, TypeError, "l2 must be a real number"),
    ({"loss": "mse"}, np.zeros((8, 2)), ValueError, r"y must have shape \(n_samples, 3\)"),
    ({"loss": "mse"}, np.full((8, 3), np.nan), ValueError, "y contains NaN"),
    ({"loss": "mae"}, np.zeros((8, 3), dtype=object), TypeError, "y must hold numeric regression targets"),
    ({"loss": "mse"}, np.zeros((7, 3)), ValueError, "y has 7 rows but x has 8 rows"),
])
def test_bad_options_and_targets_are_rejected(kwargs, y, error, match):
    with pytest.raises(error, match=match):
        model = pydfn.MLP([4, 5, 3], **kwargs)
        model.train_step(np.zeros((8, 4), np.float32), y, pydfn.Adam())


def test_set_penalty_changes_the_cost_as_the_constructor_would(rng):
    x, y = batch(rng, 9, "softmax_xent")
    model = pydfn.MLP(SIZES, seed=4)
    model.set_penalty(l1=0.003, l2=0.02)
    assert (model.l1, model.l2) == (0.003, 0.02)
    want = pydfn.MLP(SIZES, seed=4, l1=0.003, l2=0.02).loss_and_gradients(x, y)
    got = model.loss_and_gradients(x, y)
    assert got[0] == want[0] and all(np.array_equal(a, b) for a, b in zip(got[1], want[1]))
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        model.set_penalty(l2=-1.0)
    assert model.l2 == 0.02  # unchanged by the refused call
