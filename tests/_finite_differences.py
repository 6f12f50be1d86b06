"""Central finite differences of a float64 cost, the oracle of the gradient tests."""

from __future__ import annotations

from typing import Callable

import numpy as np


def central_differences(cost: Callable[[], float], params: list[np.ndarray], rng: np.random.Generator,
                        coords: int = 6, h: float = 1e-6) -> list[tuple[int, int, float]]:
    """``(array, flat index, (cost(p + h) − cost(p − h)) / 2h)`` at up to ``coords`` random
    coordinates of each array of ``params``, which are changed in place and restored."""
    out = []
    for i, p in enumerate(params):
        flat = p.reshape(-1)  # a view: params are contiguous
        for j in rng.choice(flat.size, size=min(flat.size, coords), replace=False):
            keep = flat[j]
            flat[j] = keep + h
            up = cost()
            flat[j] = keep - h
            down = cost()
            flat[j] = keep
            out.append((i, int(j), (up - down) / (2 * h)))
    return out
