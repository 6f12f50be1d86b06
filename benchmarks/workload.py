"""The benchmark workload (README, "Performance": the tutorial network 784-256-128-10, Adam, batch 64,
one epoch = 54,000 rows), shared by compare.py and the pytest-benchmark files."""

from __future__ import annotations

import numpy as np

SIZES = [784, 256, 128, 10]
EPOCH_SAMPLES = 54_000  # the 90% training split of Fashion-MNIST


def flops_per_sample(sizes=SIZES) -> int:
    """Forward, dW and dX (none for the input layer): 2 FLOP per multiply-add."""
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * (2 * sum(products) + sum(products[1:]))


def synthetic_data(n: int = EPOCH_SAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Image-like features in [0, 1) (float32, (n, 784)) and labels (int64, (n,))."""
    rng = np.random.default_rng(seed)
    return rng.random((n, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], n)
