"""fit(augment=Augment(...)): what the core trains on, reproducibility, resuming, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from _training_data import blobs, weights_equal
from conftest import one_batch_calls

import pydfn
from pydfn import augment as augment_module
from pydfn.augment import Augment, EpochAugmenter
from pydfn import load
from pydfn.datasets import augment as augment_images

SIZES = [36, 16, 4]  # rows of 6x6 images


@pytest.fixture
def data():
    return blobs(300, n_features=36)


def seen_rows(model, monkeypatch):
    """Record copies of the (x, y, order) each C++ call of ``model``'s fit trains on."""
    calls = []
    train = model.engine.train

    def spy(x, y, order, *args):
        calls.append((x[order].copy(), y[order].copy()))
        return train(x, y, order, *args)

    monkeypatch.setattr(model.engine, "train", spy)
    return calls


@pytest.mark.parametrize("seed", [5, None])
def test_the_core_trains_on_datasets_augment_of_the_epoch_order(data, monkeypatch, tiny_chunks, seed):
    x, y = data
    model = pydfn.MLP(SIZES, seed=1)
    calls = seen_rows(model, monkeypatch)
    model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=32, seed=seed, verbose=0,
              augment=Augment(shift=2, flip=True))
    assert len(calls) == 2 * 10  # one call per batch: 300 rows in batches of 32, twice
    # The same draws, replayed: per epoch the shuffle, then dy, dx and the flips of its rows.
    rng = np.random.default_rng(1 if seed is None else seed)
    orders, expected = [], []
    for _ in range(2):
        orders.append(rng.permutation(len(x)))
        expected.append(augment_images(x[orders[-1]], shift=2, flip=True, seed=rng, image_shape=(6, 6)))
    np.testing.assert_array_equal(np.concatenate([c[0] for c in calls]), np.concatenate(expected))
    np.testing.assert_array_equal(np.concatenate([c[1] for c in calls]), y[np.concatenate(orders)])
    assert model.engine.rng.bit_generator.state == rng.bit_generator.state  # fit drew nothing else
    assert not np.array_equal(expected[0], x[orders[0]])  # the images did change


def test_no_shift_no_flip_is_bit_identical_to_no_augment(data, tiny_chunks):
    x, y = data
    plain, augmented = pydfn.MLP(SIZES, seed=2), pydfn.MLP(SIZES, seed=2)
    h1 = plain.fit(x, y, pydfn.Adam(), epochs=3, validation_split=0.2, verbose=0)
    h2 = augmented.fit(x, y, pydfn.Adam(), epochs=3, validation_split=0.2, verbose=0,
                       augment=Augment(shift=0, flip=False))
    assert weights_equal(plain, augmented)
    assert {k: v for k, v in h1.history.items() if k != "time"} == {
        k: v for k, v in h2.history.items() if k != "time"}


def test_results_do_not_depend_on_how_the_epoch_is_chunked(data, monkeypatch):
    x, y = data
    whole = pydfn.MLP(SIZES, seed=3)
    whole.fit(x, y, pydfn.Adam(), epochs=2, batch_size=16, verbose=0, augment=Augment())
    one_batch_calls(monkeypatch)
    chunked = pydfn.MLP(SIZES, seed=3)
    chunked.fit(x, y, pydfn.Adam(), epochs=2, batch_size=16, verbose=0, augment=Augment())
    assert weights_equal(whole, chunked)


def test_each_call_transforms_at_most_a_buffer_of_rows(data, monkeypatch):
    x, y = data
    monkeypatch.setattr(augment_module, "BUFFER_BYTES", 3 * 16 * 36 * 4)  # 3 batches of 16 rows
    model = pydfn.MLP(SIZES, seed=3)
    calls = seen_rows(model, monkeypatch)
    model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=16, verbose=0, augment=Augment())
    assert [len(c[1]) for c in calls] == [48] * 6 + [12]  # 300 rows


def test_the_same_seed_gives_the_same_weights_and_another_differs(data):
    x, y = data

    def train(seed, augment=Augment(1, True)):
        model = pydfn.MLP(SIZES, seed=4)
        model.fit(x, y, pydfn.Adam(), epochs=2, seed=seed, verbose=0, augment=augment)
        return model

    first = train(7)
    assert weights_equal(first, train(7))
    assert not weights_equal(first, train(8))
    assert not weights_equal(first, train(7, augment=None))


def test_resuming_from_a_checkpoint_continues_the_augmentation_exactly(data, tmp_path):
    x, y = data
    straight = pydfn.MLP(SIZES, seed=5)
    straight.fit(x, y, pydfn.Adam(), epochs=4, validation_split=0.2, verbose=0, augment=Augment())
    first = pydfn.MLP(SIZES, seed=5)
    first.fit(x, y, pydfn.Adam(), epochs=2, validation_split=0.2, verbose=0, augment=Augment())
    first.save(tmp_path / "at2.npz")
    resumed = load(tmp_path / "at2.npz")
    history = resumed.fit(x, y, resumed.optimizer, epochs=2, validation_split=0.2, verbose=0, augment=Augment())
    assert weights_equal(straight, resumed)
    assert history.history["val_loss"] == straight.history.history["val_loss"][2:]


def test_validation_data_is_not_augmented(data):
    x, y = data
    model = pydfn.MLP(SIZES, seed=6)
    history = model.fit(x[:240], y[:240], pydfn.Adam(), epochs=1, validation_data=(x[240:], y[240:]), verbose=0,
                        augment=Augment(shift=3, flip=True))
    assert (history.history["val_loss"][-1], history.history["val_accuracy"][-1]) == pytest.approx(
        model.evaluate(x[240:], y[240:]), rel=1e-12)


def test_uint8_images_and_explicit_image_shapes(monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 4, 5), dtype=np.uint8)  # not square: give the shape
    y = rng.integers(0, 3, 40)
    model = pydfn.MLP([20, 3], seed=0)
    calls = seen_rows(model, monkeypatch)
    model.fit(images, y, pydfn.Adam(), epochs=1, batch_size=40, shuffle=False, verbose=0,
              augment=Augment(shift=1, flip=True, image_shape=(4, 5)))
    expected = augment_images(images.reshape(40, 20) / np.float32(255), shift=1, seed=np.random.default_rng(0),
                              image_shape=(4, 5))
    np.testing.assert_array_equal(calls[0][0], expected)


def test_the_buffer_holds_one_call_s_rows_not_the_training_set(data):
    x, _ = data
    augmenter = EpochAugmenter(Augment(), x)
    augmenter.new_epoch(np.random.default_rng(0), len(x))
    order = np.random.default_rng(1).permutation(len(x))
    for start in range(0, len(x), 50):
        out = augmenter.take(order[start:start + 50], start)
        assert out.shape == (50, 36) and out.base is augmenter._out
    assert augmenter._out.shape == (50, 36)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"shift": -1}, ValueError, "shift must be >= 0, got -1"),
    ({"shift": 1.5}, TypeError, "shift must be an integer, got float"),
    ({"shift": True}, TypeError, "shift must be an integer, got bool"),
    ({"flip": "yes"}, TypeError, "flip must be True or False, got str"),
    ({"image_shape": 28}, ValueError, r"image_shape must be \(height, width\) or None, got 28"),
    ({"image_shape": (28, 28, 1)}, ValueError, r"image_shape must be \(height, width\)"),
    ({"image_shape": (0, 28)}, ValueError, r"image_shape\[0\] must be >= 1, got 0"),
])
def test_augment_checks_its_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Augment(**kwargs)


def test_augment_repr_and_equality():
    assert repr(Augment()) == "Augment(shift=2, flip=True)"
    assert repr(Augment(1, False, (4, 5))) == "Augment(shift=1, flip=False, image_shape=(4, 5))"
    assert Augment(1, np.bool_(True), [4, 5]) == Augment(1, True, (4, 5)) != Augment(1, False, (4, 5))


@pytest.mark.parametrize("sizes, augment, error, message", [
    ([36, 4], "shift=2", TypeError, "augment must be a pydfn.Augment or None, got str"),
    ([36, 4], {"shift": 2}, TypeError, "augment must be a pydfn.Augment or None, got dict"),
    ([20, 4], Augment(), ValueError, "20 features are not a square image; give Augment\\(image_shape="),
    ([36, 4], Augment(image_shape=(4, 8)), ValueError, r"image_shape \(4, 8\) has 32 pixels, but the rows of x "
                                                       "hold 36 features"),
])
def test_fit_rejects_a_bad_augment_before_training(sizes, augment, error, message):
    x, y = blobs(100, n_features=sizes[0])
    model = pydfn.MLP(sizes, seed=0)
    before = model.get_weights()
    with pytest.raises(error, match=message):
        model.fit(x, y, pydfn.Adam(), epochs=1, verbose=0, augment=augment)
    assert weights_equal(model, before) and model.history is None
