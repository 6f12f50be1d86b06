"""Options at their bounds (issue 33, item 3): a learning-rate schedule whose rates go bad,
weights beyond float32, scikit-learn parameters and labels of the wrong type, a seed too
large for the split: each refused with the parameter's name before the work it would spoil.
(The bounds of single arguments are tested with their modules: test_schedules,
test_sample_weight, test_sklearn, test_dropout, test_label_smoothing, test_fit.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pydfn
from pydfn.preprocessing import train_val_split
from pydfn.schedules import CosineDecay, Schedule, StepDecay

from _cli import in_tmp, run  # noqa: F401  (in_tmp: an autouse fixture)

rng = np.random.default_rng(0)
X = rng.random((16, 6), dtype=np.float32)
Y = np.arange(16) % 3


class Constant(Schedule):
    """A user's schedule: ``rate`` from step ``start`` on, 1e-3 before."""

    def __init__(self, rate, start=0, shape=None):
        self.rate, self.start, self.shape = rate, start, shape

    def values(self, steps):
        if self.shape is not None:
            return np.zeros(self.shape)
        return np.where(steps < self.start, 1e-3, self.rate)


def changed(schedule, **attributes):
    for name, value in attributes.items():
        setattr(schedule, name, value)
    return schedule


@pytest.mark.parametrize("schedule, message", [
    # Attributes changed after the checks of __init__, and users' own schedules: the core refused
    # the rates with "lr must be finite and >= 0", naming neither the schedule nor the step.
    (changed(CosineDecay(1e-3, 8), peak_lr=float("nan")), r"lr_schedule CosineDecay\(peak_lr=nan, total_steps=8, "
                                                          r"warmup_steps=0, final_lr=0.0\) gives a learning rate of nan"),
    (changed(StepDecay(1e-3, 8), lr=-1.0), r"lr_schedule StepDecay\(lr=-1.0, .*\) gives a learning rate of -1.0"),
    (Constant(float("inf")), r"lr_schedule Constant\(rate=inf, .*\) gives a learning rate of inf"),
    (Constant(1e39), r"gives a learning rate of 1e\+39 at step 0: a rate must be finite, >= 0 and at most "
                     r"float32's 3.4e38"),
    (Constant(1e-3, shape=3), r"lr_schedule Constant\(.*\) gave \(3,\) rates for steps of shape \(4,\)"),
])
def test_a_schedule_giving_bad_rates_is_refused_before_its_first_batch(schedule, message):
    model = pydfn.MLP([6, 5, 3], seed=0)
    before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        model.fit(X, Y, pydfn.Adam(), epochs=2, batch_size=4, verbose=0, lr_schedule=schedule)
    assert model.optimizer_step == 0 and all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_schedule_that_goes_bad_later_stops_the_fit_at_that_step():
    # 4 batches an epoch: the first epoch trains, the second's rates are refused before it trains.
    model = pydfn.MLP([6, 5, 3], seed=0)
    with pytest.raises(ValueError, match=r"gives a learning rate of -1.0 at step 4:"):
        model.fit(X, Y, pydfn.Adam(), epochs=3, batch_size=4, verbose=0, lr_schedule=Constant(-1.0, start=4))
    assert model.optimizer_step == 4 and len(model.history.history["loss"]) == 1


def test_calling_a_schedule_checks_its_rate():
    assert Constant(0.5)(3) == 0.5
    with pytest.raises(ValueError, match="gives a learning rate of nan at step 3"):
        Constant(float("nan"))(3)


def test_label_smoothing_1_makes_the_labels_irrelevant_as_documented():
    # The bound is kept (PyTorch's range is [0, 1]); the docstring says what it means.
    model = pydfn.MLP([6, 5, 3], seed=0, label_smoothing=1.0)
    loss, grads = model.loss_and_gradients(X, Y)
    other_loss, other_grads = model.loss_and_gradients(X, (Y + 1) % 3)
    assert loss == pytest.approx(other_loss, rel=1e-6)
    assert all(np.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(grads, other_grads))
    assert "at 1 every target is uniform" in " ".join(pydfn.MLP.__doc__.split())


# --- scikit-learn: weights and labels refused before a network is built ----------------

@pytest.fixture
def sklearn():
    return pytest.importorskip("pydfn.sklearn")


@pytest.mark.parametrize("weights, error, message", [
    (["heavy"] * 16, TypeError, "sample_weight must be an array of numbers, got list"),  # was NumPy's "could not convert"
    (np.r_[np.ones(15), np.nan], ValueError, r"sample_weight must be finite and >= 0; sample 15 has nan$"),
    (np.r_[np.ones(15), 1e39], ValueError, r"sample 15 has 1e\+39 \(beyond float32's range"),
    (np.full(16, 1e-46), ValueError, "sample_weight gives every sample a weight of zero"),  # zero in float32
])
@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_sklearn_sample_weight_is_checked_as_fit_checks_it(sklearn, estimator, weights, error, message):
    est = getattr(sklearn, estimator)(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(error, match=message):
        est.fit(X, Y, sample_weight=weights)
    assert not hasattr(est, "model_")


def test_sklearn_labels_of_mixed_types_are_named(sklearn):
    # scikit-learn's check sorts them: "'<' not supported between instances of 'int' and 'str'".
    clf = sklearn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    y = np.array(["cat", 1, "dog", 2] * 4, dtype=object)
    with pytest.raises(TypeError, match=r"^y mixes labels of types that do not sort together \(int, str\): give every "
                                        "label the same type$"):
        clf.fit(X, y)
    with pytest.raises(TypeError, match=r"^classes mixes labels of types that do not sort together \(int, str\)"):
        clf.partial_fit(X, Y, classes=np.array([0, 1, "two"], dtype=object))
    assert not hasattr(clf, "model_")


# --- the seed of the validation split ------------------------------------------------------

def test_a_split_seed_beyond_randomstate_is_named():
    # NumPy's RandomState said "Seed must be between 0 and 2**32 - 1", from `pydfn train --seed` too.
    with pytest.raises(ValueError, match="^seed must be <= 4294967295, got 4294967296$"):
        train_val_split(X, Y, 0.25, seed=2**32)
    assert len(train_val_split(X, Y, 0.25, seed=2**32 - 1)[1]) == 4


def test_the_cli_names_a_seed_too_large_for_the_split(capsys):
    with open("d.csv", "w") as f:
        f.write("a,b,y\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(20)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = run(capsys, "train", "--data-file", "d.csv", "--seed", str(2**40), "--epochs", "1",
                             "--batch-size", "4")
    assert code == 2 and "Epoch" not in out
    assert err == "pydfn train: error: seed must be <= 4294967295, got 1099511627776\n"
