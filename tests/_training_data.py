"""Small synthetic classification problems shared by the training tests."""

import numpy as np


def blobs(n=600, n_features=20, n_classes=4, seed=0, noise=1.0):
    """Gaussian clusters, one per class: float32 x (n, n_features), int64 y (n,)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n)
    x = centers[y] + rng.normal(scale=noise, size=(n, n_features))
    return x.astype(np.float32), y


def weights_equal(a, b):
    """Whether two models (or weight lists) hold bitwise-identical parameters."""
    wa = a if isinstance(a, list) else a.get_weights()
    wb = b if isinstance(b, list) else b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))
