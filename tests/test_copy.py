"""Models pickle and deep-copy (for joblib, multiprocessing, "copy it and try something"):
the copy predicts like the original and keeps training to the same bits."""

import copy
import pickle

import numpy as np
import pytest
from _training_data import blobs, weights_equal

import pydfn

SIZES = [20, 16, 4]


def copies(model):
    return {"pickle": pickle.loads(pickle.dumps(model)), "deepcopy": copy.deepcopy(model)}


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
@pytest.mark.parametrize("optimizer", [lambda: pydfn.Adam(2e-3), lambda: pydfn.RMSProp(1e-3, momentum=0.5),
                                       lambda: pydfn.SGD(0.05, momentum=0.9)])
def test_a_copy_predicts_and_trains_on_bit_for_bit(how, optimizer):
    x, y = blobs(300)
    model = pydfn.MLP(SIZES, seed=4, dropout=0.1, l2=1e-3)
    model.fit(x, y, optimizer(), epochs=2, batch_size=32, verbose=0)
    twin = copies(model)[how]
    assert twin is not model and twin.engine is not model.engine
    np.testing.assert_array_equal(twin.predict_logits(x), model.predict_logits(x))
    assert twin.optimizer == model.optimizer and twin.optimizer is not model.optimizer
    assert twin.optimizer_step == model.optimizer_step == 2 * 10
    assert repr(twin) == repr(model) and twin.history.history == model.history.history
    for m in (model, twin):  # an equal optimizer continues, as the same one would
        m.fit(x, y, optimizer(), epochs=2, batch_size=32, verbose=0)
    assert weights_equal(model, twin)
    assert all(twin.history.history[k] == model.history.history[k] for k in ("loss", "accuracy"))


def test_a_copy_is_independent_of_the_original():
    x, y = blobs(200)
    model = pydfn.MLP(SIZES, seed=1)
    model.fit(x, y, pydfn.Adam(), epochs=1, verbose=0)
    before = model.get_weights()
    for twin in copies(model).values():
        twin.fit(x, y, twin.optimizer, epochs=1, verbose=0)
        twin.optimizer.lr = 0.5
        assert weights_equal(model, before) and not weights_equal(model, twin)
    assert model.optimizer.lr == 1e-3 and model.optimizer_step == 4  # 200 rows in batches of 64


def test_an_untrained_model_copies_without_optimizer():
    model = pydfn.MLP([5, 3], seed=9, activation="tanh", loss="mse")
    for twin in copies(model).values():
        assert twin.optimizer is None and twin.history is None and weights_equal(model, twin)
        assert (twin.activation, twin.loss, twin.optimizer_step) == ("tanh", "mse", 0)
