"""The data path against the plain NumPy way: IDX load, fused scale + flatten, augmentation.

Run with ``pytest benchmarks/test_bench_data.py`` (pytest-benchmark groups the pairs side by side).
"""

from __future__ import annotations

import gzip
import itertools

import numpy as np
import pytest

from pydfn import datasets
from pydfn.datasets import augment, load_fashion_mnist, prepare_images, read_idx

N, SHIFT = 60000, 2


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (N, 28, 28), dtype=np.uint8)


@pytest.fixture
def train_images_file():
    path = datasets.SYSTEM_DIR / "train-images-idx3-ubyte.gz"
    if not path.is_file():
        pytest.skip("Fashion-MNIST not installed: sudo apt-get install dataset-fashion-mnist")
    return path


def numpy_read_idx3(path):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)


def numpy_prepare(images):
    return images.reshape(len(images), -1).astype(np.float32) / 255


def numpy_augment(images, shift, seed):
    """Vectorised NumPy: pad, mirror the drawn half, gather each shifted window."""
    n, h, w = images.shape
    rng = np.random.default_rng(seed)  # same draws, in the same order, as datasets.augment
    dy = rng.integers(-shift, shift + 1, size=n, dtype=np.int32)
    dx = rng.integers(-shift, shift + 1, size=n, dtype=np.int32)
    flip = rng.random(n) < 0.5
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    padded = np.where(flip[:, None, None], padded[:, :, ::-1], padded)
    rows = (shift - dy)[:, None] + np.arange(h)
    cols = (shift - dx)[:, None] + np.arange(w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


@pytest.mark.benchmark(group="idx load: train images (47 MB gz)")
def test_idx_load_pydfn(benchmark, train_images_file):
    assert benchmark(read_idx, train_images_file).shape == (60000, 28, 28)


@pytest.mark.benchmark(group="idx load: train images (47 MB gz)")
def test_idx_load_numpy(benchmark, train_images_file):
    assert benchmark(numpy_read_idx3, train_images_file).shape == (60000, 28, 28)


@pytest.mark.benchmark(group="scale + flatten: 60000 x 28 x 28")
def test_prepare_pydfn(benchmark, images):
    out = np.empty((N, 784), np.float32)
    benchmark(prepare_images, images, out=out)
    assert np.array_equal(out, numpy_prepare(images))


@pytest.mark.benchmark(group="scale + flatten: 60000 x 28 x 28")
def test_prepare_pydfn_allocating(benchmark, images):
    assert benchmark(prepare_images, images).shape == (N, 784)


@pytest.mark.benchmark(group="scale + flatten: 60000 x 28 x 28")
def test_prepare_numpy(benchmark, images):
    assert benchmark(numpy_prepare, images).shape == (N, 784)


@pytest.mark.benchmark(group="augment: 60000 x 28 x 28, shift 2 + flip")
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_augment_pydfn(benchmark, images, dtype):
    images = images.astype(dtype)
    out = np.empty_like(images)
    seeds = itertools.count()
    benchmark(lambda: augment(images, shift=SHIFT, seed=next(seeds), out=out))
    assert np.array_equal(augment(images, shift=SHIFT, seed=7), numpy_augment(images, SHIFT, 7))


@pytest.mark.benchmark(group="augment: 60000 x 28 x 28, shift 2 + flip")
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_augment_numpy(benchmark, images, dtype):
    images = images.astype(dtype)
    seeds = itertools.count()
    assert benchmark(lambda: numpy_augment(images, SHIFT, next(seeds))).shape == images.shape


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A verification cache of our own, emptied before each round to time the first load."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return lambda: (tmp_path / "pydfn" / "verified.json").unlink(missing_ok=True)


def load_and_prepare():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(download=False)
    return prepare_images(x_train), y_train, prepare_images(x_test), y_test


def numpy_load_and_prepare():
    def labels(name):
        with gzip.open(datasets.SYSTEM_DIR / name) as f:
            return np.frombuffer(f.read(), np.uint8, offset=8)
    return (numpy_prepare(numpy_read_idx3(datasets.SYSTEM_DIR / "train-images-idx3-ubyte.gz")),
            labels("train-labels-idx1-ubyte.gz"),
            numpy_prepare(numpy_read_idx3(datasets.SYSTEM_DIR / "t10k-images-idx3-ubyte.gz")),
            labels("t10k-labels-idx1-ubyte.gz"))


@pytest.mark.benchmark(group="load + prepare the full dataset")
def test_full_pydfn_first_load(benchmark, train_images_file, fresh_cache):
    benchmark.pedantic(load_and_prepare, setup=fresh_cache, rounds=5)


@pytest.mark.benchmark(group="load + prepare the full dataset")
def test_full_pydfn_cached(benchmark, train_images_file, fresh_cache):
    load_and_prepare()  # verifies once
    benchmark.pedantic(load_and_prepare, rounds=5)


@pytest.mark.benchmark(group="load + prepare the full dataset")
def test_full_numpy(benchmark, train_images_file):
    benchmark.pedantic(numpy_load_and_prepare, rounds=5)
