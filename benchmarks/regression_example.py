"""A regression example, scikit-learn-free: learn y = (sin(πa)·b, a² − b/2) + noise
from 2 inputs, with ``mse`` and then ``mae``.

Run: ``python benchmarks/regression_example.py`` (from a folder where ``pydfn`` is
the installed package). It prints each model's test MSE and MAE next to those of
predicting the training mean and of the noise itself (the best any model can do).
"""

from __future__ import annotations

import numpy as np

import pydfn


def make_data(n: int, rng: np.random.Generator, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, 2) uniform in [-1, 1]² and targets (n, 2) with Gaussian noise of std ``noise``."""
    x = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    y = np.stack([np.sin(np.pi * x[:, 0]) * x[:, 1], x[:, 0] ** 2 - x[:, 1] / 2], axis=1)
    return x, (y + rng.normal(0, noise, y.shape)).astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = make_data(20_000, rng)
    x_test, y_test = make_data(5_000, rng)
    mean = y.mean(axis=0)
    print(f"predict the mean: test MSE {((y_test - mean) ** 2).mean():.4f}, MAE {np.abs(y_test - mean).mean():.4f}")
    print(f"noise floor:      test MSE {0.05 ** 2:.4f}, MAE {0.05 * np.sqrt(2 / np.pi):.4f}")
    for loss in ("mse", "mae"):
        model = pydfn.MLP([2, 64, 64, 2], loss=loss, activation="tanh", seed=1)
        model.fit(x, y, pydfn.Adam(3e-3), epochs=40, batch_size=64, verbose=0, seed=1)
        pred = model.predict(x_test)
        print(f"{loss} model:        test MSE {((pred - y_test) ** 2).mean():.4f}, "
              f"MAE {np.abs(pred - y_test).mean():.4f}")


if __name__ == "__main__":
    main()
