"""Augmentation: the Cython shift/flip kernel against a NumPy reference, and datasets.augment."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pydfn import _data
from pydfn.datasets import augment


def reference_shift_flip(image, dy, dx, flip):
    """out[r, c] = (mirrored) image[r - dy, c - dx], zero where that falls outside."""
    source = image[:, ::-1] if flip else image
    h, w = image.shape
    rows, cols = np.arange(h), np.arange(w)
    rows = rows[(rows - dy >= 0) & (rows - dy < h)]
    cols = cols[(cols - dx >= 0) & (cols - dx < w)]
    out = np.zeros_like(image)
    out[np.ix_(rows, cols)] = source[np.ix_(rows - dy, cols - dx)]
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (17, 6, 4), (2, 28, 28)])
def test_kernel_matches_reference_for_every_shift(shape, dtype):
    n, h, w = shape
    rng = np.random.default_rng(4)
    images = rng.integers(1, 256, shape).astype(dtype)
    # every shift from fully out on one side to fully out on the other, with and without a flip
    params = list(itertools.product(range(-h - 1, h + 2), range(-w - 1, w + 2), (0, 1)))
    for start in range(0, len(params), n):
        chunk = params[start:start + n]
        chunk += [chunk[-1]] * (n - len(chunk))
        dy, dx, flip = (np.array(p, dtype=t) for p, t in zip(zip(*chunk), (np.int32, np.int32, np.uint8)))
        out = np.full_like(images, 7)  # stale values must all be overwritten
        _data.shift_flip(images, out, dy, dx, flip)
        for i in range(n):
            np.testing.assert_array_equal(out[i], reference_shift_flip(images[i], dy[i], dx[i], flip[i]))


def test_kernel_rejects_mismatched_shapes():
    images = np.zeros((2, 3, 3), np.uint8)
    ok = np.zeros(2, np.int32)
    with pytest.raises(ValueError, match=r"dst has shape \(2, 3, 4\)"):
        _data.shift_flip(images, np.zeros((2, 3, 4), np.uint8), ok, ok, np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="dy, dx and flip need 2 entries, got 2, 3, 2"):
        _data.shift_flip(images, np.zeros_like(images), ok, np.zeros(3, np.int32), np.zeros(2, np.uint8))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_kernel_gathers_rows_in_the_same_pass(dtype):
    images = np.random.default_rng(9).integers(1, 256, (10, 5, 6)).astype(dtype)
    rows = np.array([7, 0, 7, 9, 3], np.int64)  # any order, repeats allowed
    dy, dx = np.array([0, 1, -2, 5, 0], np.int32), np.array([1, 0, -1, 0, 0], np.int32)
    flip = np.array([1, 0, 1, 0, 0], np.uint8)
    out = np.full((5, 5, 6), 7, dtype)
    _data.shift_flip(images, out, dy, dx, flip, rows)
    for i, j in enumerate(rows):
        np.testing.assert_array_equal(out[i], reference_shift_flip(images[j], dy[i], dx[i], flip[i]))


@pytest.mark.parametrize("rows, message", [
    ([0, 10], r"rows\[1\] = 10 is outside \[0, 10\)"),
    ([-1, 0], r"rows\[0\] = -1 is outside \[0, 10\)"),
    ([0, 1, 2], "rows needs 2 entries, got 3"),
])
def test_kernel_rejects_bad_rows(rows, message):
    images, ok = np.zeros((10, 3, 3), np.float32), np.zeros(2, np.int32)
    with pytest.raises(ValueError, match=message):
        _data.shift_flip(images, np.zeros((2, 3, 3), np.float32), ok, ok, np.zeros(2, np.uint8),
                         np.array(rows, np.int64))


def drawn_params(images, out, shift):
    """For each image, the (dy, dx, flip) that maps it to its output; asserts there is one."""
    found = []
    for image, result in zip(images, out):
        matches = [(dy, dx, f) for dy, dx, f in itertools.product(range(-shift, shift + 1),
                                                                   range(-shift, shift + 1), (0, 1))
                   if np.array_equal(result, reference_shift_flip(image, dy, dx, f))]
        assert len(matches) == 1, "the output is no allowed shift/flip of its input"
        found.append(matches[0])
    return np.array(found)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("n", [1, 3, 17])
def test_augment_applies_an_allowed_shift_flip_to_each_image(n, dtype):
    images = np.random.default_rng(n).integers(1, 256, (n, 6, 5)).astype(dtype)
    out = augment(images, shift=2, seed=0)
    assert out.dtype == dtype and out.shape == images.shape
    drawn_params(images, out, 2)


def test_augment_draws_all_shifts_and_flips_half():
    images = np.random.default_rng(5).integers(1, 256, (600, 6, 6), dtype=np.uint8)
    params = drawn_params(images, augment(images, shift=1, seed=3), 1)
    assert set(map(tuple, params[:, :2])) == set(itertools.product((-1, 0, 1), repeat=2))
    assert 0.4 < params[:, 2].mean() < 0.6


def test_augment_is_seeded():
    images = np.random.default_rng(6).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    first = augment(images, seed=11)
    np.testing.assert_array_equal(first, augment(images, seed=11))
    np.testing.assert_array_equal(first, augment(images, seed=np.random.default_rng(11)))
    assert not np.array_equal(first, augment(images, seed=12))


def test_augment_without_shift_or_flip_is_a_copy():
    images = np.random.default_rng(7).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = augment(images, shift=0, flip=False, seed=0)
    np.testing.assert_array_equal(out, images)
    assert not np.shares_memory(out, images)


def test_augment_flattened_float_rows_with_out():
    images = np.random.default_rng(8).random((17, 28, 28), dtype=np.float32)
    out = np.empty((17, 784), np.float32)
    assert augment(images.reshape(17, 784), seed=1, out=out) is out
    np.testing.assert_array_equal(out.reshape(17, 28, 28), augment(images, seed=1))


@pytest.mark.parametrize("images, kwargs, error, message", [
    (np.zeros((2, 4, 4), np.int16), {}, TypeError, "uint8 or float32, got dtype int16"),
    (np.zeros((2, 100), np.uint8), {}, ValueError, r"shape \(n, 28, 28\) or \(n, 784\), got \(2, 100\)"),
    (np.zeros((2, 4, 4), np.uint8), {"shift": -1}, ValueError, "shift must be >= 0"),
    (np.zeros((2, 4, 4), np.uint8), {"out": np.zeros((2, 4, 4), np.float32)}, ValueError, "out must be"),
])
def test_augment_rejects_bad_input(images, kwargs, error, message):
    with pytest.raises(error, match=message):
        augment(images, **kwargs)


def test_augment_rejects_overlapping_out():
    images = np.zeros((2, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="out must not overlap images"):
        augment(images, out=images)
