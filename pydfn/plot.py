"""Figures with matplotlib (the optional ``plot`` extra: ``pip install "pydfn[plot]"``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import as_labels, positive_int


def _pyplot() -> Any:
    """matplotlib.pyplot with a non-interactive backend, or a clear ImportError."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            'pydfn.plot needs matplotlib: install it with  pip install "pydfn[plot]"  '
            "(or  pip install matplotlib)") from exc
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")  # figures are returned and saved, never shown in a window
    import matplotlib.pyplot as plt
    return plt


def sample_grid(images: Any, labels: Any, rows: int = 2, cols: int = 2) -> Any:
    """A grid of the first ``rows * cols`` images, each titled with its class name.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width), or (n_images, height * width) for square images
        uint8 in [0, 255] or floats in [0, 1].
    labels : array-like of int of shape (n_images,)
        Indices into :data:`pydfn.datasets.FASHION_MNIST_CLASSES`.
    rows, cols : int, default 2

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .datasets import FASHION_MNIST_CLASSES

    images = np.asarray(images)
    if images.ndim == 2:  # flattened rows, e.g. the output of datasets.prepare_images
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"cannot show flattened images of {images.shape[1]} pixels as squares")
        images = images.reshape(-1, side, side)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n_images, height, width), got {images.shape}")
    labels = as_labels(labels, len(FASHION_MNIST_CLASSES), len(images), name="labels")
    rows, cols = positive_int(rows, "rows"), positive_int(cols, "cols")
    count = min(len(images), rows * cols)
    vmax = 255 if images.dtype == np.uint8 else 1.0
    fig, axes = _pyplot().subplots(rows, cols, squeeze=False, figsize=(2.2 * cols, 2.4 * rows))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(FASHION_MNIST_CLASSES[labels[i]])
    fig.tight_layout()
    return fig
