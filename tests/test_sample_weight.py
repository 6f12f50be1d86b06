"""``fit(class_weight=, sample_weight=)`` with Keras's meaning: each sample's loss times its
weight, a minibatch's loss ``Σ w_i·l_i / B`` (sum_over_batch_size), in the core's loss."""

import numpy as np
import pytest

import pydfn
from pydfn.reference import ReferenceAdam, ReferenceMLP

SIZES = [12, 9, 7, 4]


def data(rng, n, loss="softmax_xent"):
    x = rng.standard_normal((n, SIZES[0])).astype(np.float32)
    if loss == "softmax_xent":
        return x, rng.integers(0, SIZES[-1], n).astype(np.int32)
    return x, rng.standard_normal((n, SIZES[-1])).astype(np.float32)


def test_all_ones_is_bitwise_the_unweighted_run(rng):
    x, y = data(rng, 203)
    runs = []
    for kwargs in ({}, {"sample_weight": np.ones(len(x))}, {"class_weight": {0: 1.0, 3: 1}}):
        model = pydfn.MLP(SIZES, seed=3, dropout=0.1)
        history = model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=16, validation_split=0.2, verbose=0,
                            **kwargs)
        runs.append((history.history, model.get_weights()))
    for hist, weights in runs[1:]:
        assert hist["loss"] == runs[0][0]["loss"] and hist["val_loss"] == runs[0][0]["val_loss"]
        assert all(np.array_equal(a, b) for a, b in zip(weights, runs[0][1]))


@pytest.mark.parametrize("loss", ["softmax_xent", "mse", "mae"])
def test_one_epoch_matches_the_weighted_reference(loss, rng):
    """Adam steps on Σ w_i·l_i / B computed in float64, batch by batch."""
    x, y = data(rng, 3 * 16 + 5, loss)
    w = rng.uniform(0, 3, len(x))
    w[4] = 0.0
    model = pydfn.MLP(SIZES, seed=6, loss=loss)
    ref = ReferenceMLP(SIZES, seed=6, dtype=np.float64, loss=loss)
    ref_opt = ReferenceAdam(ref.params)
    order = np.random.default_rng(9).permutation(len(x))
    got = model.train_epoch(x, y, pydfn.Adam(), batch_size=16, seed=9, sample_weight=w)
    costs = []
    for start in range(0, len(x), 16):
        rows = order[start:start + 16]
        B = len(rows)
        # Σ_i w_i·l_i / B: the gradient of each row's loss scaled by w_i·(B·mean) — build it row by row
        grads = [np.zeros_like(p) for p in ref.params]
        cost = 0.0
        for r in rows:
            c, g = ref.loss_and_grads(x[r:r + 1].astype(np.float64), y[r:r + 1])
            cost += w[r] * c / B
            for acc, gi in zip(grads, g):
                acc += w[r] * gi / B
        costs.append(cost * B)
        ref_opt.step(ref.params, grads)
    assert got == pytest.approx(sum(costs) / len(x), rel=1e-5)
    for a, b in zip(model.get_weights(), ref.params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_class_weight_equals_the_per_sample_weights_it_stands_for(rng):
    x, y = data(rng, 100)
    runs = []
    for kwargs in ({"class_weight": {0: 2.0, 1: 0.5}},
                   {"sample_weight": np.where(y == 0, 2.0, np.where(y == 1, 0.5, 1.0))},
                   {"class_weight": {0: 4.0, 1: 1.0}, "sample_weight": np.where(y <= 1, 0.5, 1.0)}):
        model = pydfn.MLP(SIZES, seed=1)
        model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=10, verbose=0, **kwargs)
        runs.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))  # both: their product
    plain = pydfn.MLP(SIZES, seed=1)
    plain.fit(x, y, pydfn.Adam(), epochs=1, batch_size=10, verbose=0)
    assert not np.array_equal(plain.get_weights()[0], runs[0][0])


def test_weights_are_gathered_with_their_rows_and_zero_weight_rows_do_nothing(rng):
    """A sample of weight 0 contributes nothing: training with it equals training where its
    label was anything else."""
    x, y = data(rng, 64)
    w = np.ones(len(x))
    w[::3] = 0.0
    y2 = y.copy()
    y2[::3] = (y2[::3] + 1) % SIZES[-1]
    a, b = pydfn.MLP(SIZES, seed=2), pydfn.MLP(SIZES, seed=2)
    a.fit(x, y, pydfn.Adam(), epochs=2, batch_size=8, verbose=0, sample_weight=w)
    b.fit(x, y2, pydfn.Adam(), epochs=2, batch_size=8, verbose=0, sample_weight=w)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_thread_invariance(rng, threads):
    x, y = data(rng, 300)
    w = rng.uniform(0, 2, len(x))
    runs = []
    for n in (1, 2, 3):
        pydfn.set_num_threads(n)
        model = pydfn.MLP(SIZES, seed=1)
        runs.append((model.train_epoch(x, y, pydfn.Adam(), batch_size=32, seed=2, sample_weight=w),
                     model.get_weights()))
    for loss, weights in runs[1:]:
        assert loss == runs[0][0] and all(np.array_equal(p, q) for p, q in zip(weights, runs[0][1]))


def test_with_augment_the_weights_follow_the_rows(rng):
    x = rng.integers(0, 255, (40, 4, 4)).astype(np.uint8)
    y = rng.integers(0, 3, 40).astype(np.int32)
    runs = []
    for w in (None, np.ones(40)):
        model = pydfn.MLP([16, 5, 3], seed=0)
        model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=8, verbose=0, augment=pydfn.Augment(shift=1),
                  sample_weight=w)
        runs.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sample_weight": np.ones(5)}, ValueError, r"sample_weight must have shape \(30,\)"),
    ({"sample_weight": np.ones((30, 1))}, ValueError, r"sample_weight must have shape \(30,\)"),
    ({"sample_weight": np.r_[np.ones(29), np.nan]}, ValueError, "sample 29 has nan"),
    ({"sample_weight": np.r_[np.ones(29), -1.0]}, ValueError, "finite and >= 0; sample 29 has -1"),
    ({"sample_weight": np.zeros(30)}, ValueError, "every sample a weight of zero"),
    ({"sample_weight": ["a"] * 30}, TypeError, "array of numbers"),
    ({"class_weight": {4: 1.0}}, ValueError, r"keys must be labels in \[0, 4\), got 4"),
    ({"class_weight": {"cat": 1.0}}, ValueError, "keys must be labels"),
    ({"class_weight": {0: -1.0}}, ValueError, "finite and >= 0"),
    ({"class_weight": {0: float("inf")}}, ValueError, "finite and >= 0"),
    # Finite, but not in float32: the core refused them, naming no sample.
    ({"sample_weight": np.r_[np.ones(29), 1e39]}, ValueError, r"sample 29 has 1e\+39 \(beyond float32's range"),
    ({"class_weight": {0: 1e39}}, ValueError, r"finite and >= 0 \(at most float32's 3.4e38\)"),
    ({"sample_weight": np.full(30, 1e20), "class_weight": dict.fromkeys(range(4), 1e20)}, ValueError,
     r"sample_weight times class_weight is beyond float32's range \(3.4e38\) for sample 0"),
    ({"class_weight": [1.0, 2.0]}, TypeError, "class_weight must be a dict"),
    ({"class_weight": {0: 0.0, 1: 0, 2: 0, 3: 0}}, ValueError, "every sample a weight of zero"),
])
def test_bad_weights_are_refused_before_training(kwargs, error, match, rng):
    x, y = data(rng, 30)
    model = pydfn.MLP(SIZES, seed=0)
    before = model.get_weights()
    with pytest.raises(error, match=match):
        model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=8, verbose=0, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_class_weight_needs_a_classifier(rng):
    x, y = data(rng, 20, "mse")
    with pytest.raises(ValueError, match="class_weight applies to classification"):
        pydfn.MLP(SIZES, loss="mse").fit(x, y, pydfn.Adam(), epochs=1, verbose=0, class_weight={0: 1.0})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_estimators_take_sample_weight(rng):
    from pydfn.sklearn import MLPClassifier, MLPRegressor

    x, y = data(rng, 120)
    for early_stopping in (False, True):
        fits = []
        for w in (None, np.ones(len(x)), np.where(y == 0, 3.0, 1.0)):
            clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, early_stopping=early_stopping)
            clf.fit(x, y, sample_weight=w)
            fits.append(clf.model_.get_weights())
        assert all(np.array_equal(a, b) for a, b in zip(fits[0], fits[1]))
        assert not np.array_equal(fits[0][0], fits[2][0])
    xr, yr = data(rng, 60, "mse")
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    reg.fit(xr, yr, sample_weight=np.full(60, 2.0))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(60,\)"):
        reg.fit(xr, yr, sample_weight=np.ones(3))
