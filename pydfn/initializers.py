"""Seeded weight initialisation shared by the model and the NumPy reference."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def glorot_uniform(layer_sizes: Sequence[int], seed: int = 0) -> list[np.ndarray]:
    """Glorot/Xavier-uniform weights and zero biases, deterministic from ``seed``.

    Draws come from NumPy's PCG64 generator (``numpy.random.default_rng``), whose
    stream is the same on every platform, so the same seed gives the same weights
    everywhere.

    Parameters
    ----------
    layer_sizes : sequence of int
        Sizes of the input, hidden and output layers, e.g. ``[784, 256, 128, 10]``.
    seed : int, default 0
        Seed of the generator.

    Returns
    -------
    list of ndarray
        ``[W1, b1, W2, b2, ...]`` in float32, each W of shape (in, out), drawn
        from U(-limit, limit) with ``limit = sqrt(6 / (in + out))``; each b zeros
        of shape (out,).
    """
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32))
        weights.append(np.zeros(fan_out, dtype=np.float32))
    return weights
