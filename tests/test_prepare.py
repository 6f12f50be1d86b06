"""The tutorial's preparation steps: prepare_images (fused scale + flatten), train_val_split, one_hot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pydfn.datasets import one_hot, prepare_images, train_val_split


def numpy_prepare(images):
    return images.reshape(len(images), math.prod(images.shape[1:])).astype(np.float32) / 255


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (17, 28, 28), (5, 3, 7), (4, 9), (0, 28, 28)])
def test_prepare_images_equals_numpy_bit_for_bit(shape):
    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    prepared = prepare_images(images)
    assert prepared.dtype == np.float32 and prepared.shape == (shape[0], math.prod(shape[1:]))
    np.testing.assert_array_equal(prepared, numpy_prepare(images))


def test_prepare_images_every_byte_value():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    prepared = prepare_images(values)
    np.testing.assert_array_equal(prepared, numpy_prepare(values))
    assert prepared[0, 0] == 0.0 and prepared[0, 255] == 1.0


def test_prepare_images_non_contiguous_input():
    images = np.random.default_rng(2).integers(0, 256, (6, 28, 28), dtype=np.uint8)[::2, :, ::-1]
    np.testing.assert_array_equal(prepare_images(images), numpy_prepare(images))


def test_prepare_images_writes_into_out():
    images = np.random.default_rng(3).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = np.full((3, 784), np.nan, dtype=np.float32)
    assert prepare_images(images, out=out) is out
    np.testing.assert_array_equal(out, numpy_prepare(images))


@pytest.mark.parametrize("images, out, error, message", [
    (np.zeros((2, 4), np.float32), None, TypeError, "images must be uint8, got dtype float32"),
    (np.zeros(4, np.uint8), None, ValueError, r"ndim >= 2, got \(4,\)"),
    (np.zeros((2, 4), np.uint8), np.zeros((2, 5), np.float32), ValueError, r"out must be .* shape \(2, 4\)"),
    (np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.float64), ValueError, "out must be a C-contiguous float32"),
    (np.zeros((2, 4), np.uint8), np.zeros((4, 2), np.float32).T, ValueError, "out must be a C-contiguous"),
])
def test_prepare_images_rejects_bad_input(images, out, error, message):
    with pytest.raises(error, match=message):
        prepare_images(images, out=out)


@pytest.mark.parametrize("n, fraction, n_val", [(10, 0.1, 1), (60000, 0.1, 6000), (17, 0.1, 2), (3, 0.5, 2)])
def test_train_val_split_sizes_and_pairs(n, fraction, n_val):
    x = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n)
    x_train, x_val, y_train, y_val = train_val_split(x, y, validation_split=fraction)
    assert len(x_val) == len(y_val) == n_val and len(x_train) == len(y_train) == n - n_val
    np.testing.assert_array_equal(x_train[:, 0], 2 * y_train)  # rows stay with their labels
    np.testing.assert_array_equal(x_val[:, 0], 2 * y_val)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_val])), y)  # a partition


def test_train_val_split_is_seeded_and_shuffled():
    y = np.arange(1000)
    first = train_val_split(y, y, seed=2)[3]
    np.testing.assert_array_equal(first, train_val_split(y, y, seed=2)[3])
    assert not np.array_equal(first, train_val_split(y, y, seed=3)[3])
    assert not np.array_equal(np.sort(first), np.arange(900, 1000))  # not just the tail


def test_train_val_split_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.model_selection", reason="scikit-learn not installed")
    x = np.arange(500).reshape(250, 2)
    y = np.arange(250)
    expected = sklearn.train_test_split(x, y, test_size=0.1, random_state=2)
    for ours, theirs in zip(train_val_split(x, y), expected):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("kwargs, message", [
    ({"validation_split": 0.0}, r"validation_split must be in \(0, 1\)"),
    ({"validation_split": 1.0}, r"validation_split must be in \(0, 1\)"),
    ({"validation_split": 0.99}, "leaves no training sample out of 10"),
])
def test_train_val_split_rejects_bad_fraction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_val_split(np.zeros((10, 2)), np.zeros(10), **kwargs)


def test_train_val_split_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"same number of samples, got shapes \(10, 2\) and \(9,\)"):
        train_val_split(np.zeros((10, 2)), np.zeros(9))


def test_one_hot():
    encoded = one_hot(np.array([2, 0, 9], dtype=np.uint8), 10)
    assert encoded.dtype == np.float32 and encoded.shape == (3, 10)
    np.testing.assert_array_equal(encoded, np.eye(10, dtype=np.float32)[[2, 0, 9]])


@pytest.mark.parametrize("y, n, error, message", [
    ([0, 10], 10, ValueError, r"labels in \[0, 10\), found 10"),
    ([0.0, 1.0], 10, TypeError, "integer class labels"),
    ([[0, 1]], 10, ValueError, "must be 1-D"),
    ([0, 1], 0, ValueError, "num_classes must be >= 1"),
])
def test_one_hot_rejects_bad_input(y, n, error, message):
    with pytest.raises(error, match=message):
        one_hot(np.array(y), n)
