"""The real Fashion-MNIST, when installed (CI installs the Debian package dataset-fashion-mnist)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import idx_bytes

from pydfn import datasets
from pydfn.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, prepare_images

HOW_TO_GET_IT = ("Fashion-MNIST not installed: sudo apt-get install dataset-fashion-mnist, "
                 "or set PYDFN_DATA to a directory holding its four .gz files")


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """The dataset, loaded once; the verification cache goes to a temp dir, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        try:
            return load_fashion_mnist(download=False)
        except FileNotFoundError:
            pytest.skip(HOW_TO_GET_IT)


def test_shapes_and_dtypes(fashion):
    (x_train, y_train), (x_test, y_test) = fashion
    assert [(a.shape, a.dtype) for a in (x_train, y_train, x_test, y_test)] == [
        ((60000, 28, 28), np.uint8), ((60000,), np.uint8), ((10000, 28, 28), np.uint8), ((10000,), np.uint8)]


def test_label_histogram(fashion):
    (_, y_train), (_, y_test) = fashion
    assert np.bincount(y_train).tolist() == [6000] * len(FASHION_MNIST_CLASSES)
    assert np.bincount(y_test).tolist() == [1000] * len(FASHION_MNIST_CLASSES)


def test_content_sha256(fashion):
    (x_train, y_train), (x_test, y_test) = fashion
    arrays = {"train_images": x_train, "train_labels": y_train, "test_images": x_test, "test_labels": y_test}
    for role, spec in datasets.FASHION_MNIST_FILES.items():
        assert hashlib.sha256(idx_bytes(arrays[role])).hexdigest() == spec.sha256, role


def test_first_training_labels(fashion):
    (_, y_train), _ = fashion
    assert [FASHION_MNIST_CLASSES[y] for y in y_train[:4]] == ["Ankle boot", "T-shirt/top", "T-shirt/top", "Dress"]


def test_prepared_training_images(fashion):
    (x_train, _), _ = fashion
    prepared = prepare_images(x_train)
    assert prepared.shape == (60000, 784)
    assert np.array_equal(prepared, x_train.reshape(60000, 784).astype(np.float32) / 255)  # bit for bit
