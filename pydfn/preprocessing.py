"""Preparing arrays for training: images to features, a validation split, one-hot labels.

``prepare_images`` runs in Cython (one fused pass, GIL released); the rest is NumPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _data
from ._validation import as_array, as_features, as_labels, nonnegative_int, positive_int, real


def prepare_images(images: Any, *, out: np.ndarray | None = None) -> np.ndarray:
    """Scale uint8 images to float32 in [0, 1] and flatten them, in one pass.

    Parameters
    ----------
    images : array-like of uint8 of shape (n_images, height, width) or (n_images, n_features)
    out : ndarray of float32 of shape (n_images, height * width), optional
        C-contiguous; written in place and returned.

    Returns
    -------
    ndarray of float32 of shape (n_images, height * width)
        Equal to ``images.reshape(len(images), -1).astype(np.float32) / 255``, bit for bit.
    """
    images = as_array(images, "images")
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got dtype {images.dtype}")
    if images.ndim < 2:
        raise ValueError(f"images must have shape (n_images, ...) with ndim >= 2, got {images.shape}")
    flat = np.ascontiguousarray(images).reshape(images.shape[0], math.prod(images.shape[1:]))
    if out is None:
        out = np.empty(flat.shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != flat.shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {flat.shape}, "
                         f"got {out.dtype} {out.shape}")
    _data.scale_to_float(flat, out)
    return out


def prepare_features(x: Any, n_features: int, name: str = "x") -> np.ndarray:
    """Features for the network: uint8 images scaled to [0, 1] and flattened, or float features
    (the rule of every entry point, :func:`pydfn._validation.as_features`).

    Parameters
    ----------
    x : array-like of shape (n_samples, height, width) or (n_samples, n_features)
        uint8 pixels (divided by 255) or floating-point features.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32, C-contiguous
    """
    return as_features(x, n_features, name=name)


def train_val_split(x: Any, y: Any, validation_split: float = 0.1,
                    seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split off a validation set, like the tutorial's scikit-learn call.

    Gives the same split as ``sklearn.model_selection.train_test_split(x, y,
    test_size=validation_split, random_state=seed)`` without needing scikit-learn.

    Parameters
    ----------
    x : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    validation_split : float, default 0.1
        Share of the samples in the validation set (rounded up), in (0, 1).
    seed : int in [0, 2**32), default 2

    Returns
    -------
    x_train, x_val, y_train, y_val : ndarray
        Of shapes (n_train, ...), (n_val, ...), (n_train,), (n_val,), in scikit-learn's order.
    """
    x, y = as_array(x, "x"), as_array(y, "y")
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"x and y need the same number of samples, got shapes {x.shape} and {y.shape}")
    validation_split = real(validation_split, "validation_split")
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    n_val = validation_count(len(x), validation_split)
    if n_val >= len(x):
        raise ValueError(f"validation_split={validation_split} leaves no training sample out of {len(x)}")
    # scikit-learn's ShuffleSplit: a legacy RandomState permutation, validation rows first.
    order = np.random.RandomState(nonnegative_int(seed, "seed", maximum=2**32 - 1)).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return x[train], x[val], y[train], y[val]


def validation_count(n_samples: int, validation_split: float) -> int:
    """The samples :func:`train_val_split` holds out of ``n_samples``: the share rounded up."""
    return math.ceil(validation_split * n_samples)


def one_hot(y: Any, num_classes: int) -> np.ndarray:
    """One-hot encode integer labels.

    Parameters
    ----------
    y : array-like of int of shape (n_samples,)
        Labels in ``[0, num_classes)``.
    num_classes : int

    Returns
    -------
    ndarray of float32 of shape (n_samples, num_classes)
    """
    num_classes = positive_int(num_classes, "num_classes")
    y = as_array(y, "y")
    labels = as_labels(y, num_classes, len(y) if y.ndim else 0)
    encoded = np.zeros((len(labels), num_classes), dtype=np.float32)
    encoded[np.arange(len(labels)), labels] = 1.0
    return encoded
