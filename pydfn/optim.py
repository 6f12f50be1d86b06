"""Optimizers: their hyper-parameters. Their state (moments, step count) lives with
the model it trains, in the C++ core, and is saved with it."""

from __future__ import annotations

import math
import numbers


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


class Adam:
    """Adam, with PyTorch's update rule and defaults.

    ``m = b1·m + (1−b1)·g``, ``v = b2·v + (1−b2)·g²``,
    ``θ −= lr · (m / (1−b1^t)) / (sqrt(v / (1−b2^t)) + eps)``, t counting steps from 1.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, > 0.
    beta1, beta2 : float, default 0.9 and 0.999
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator for numerical stability, > 0.

    Notes
    -----
    The moments and the step count belong to the model being trained (they are
    saved in its checkpoint). A model trained with a different ``Adam`` instance
    than the last one starts from fresh moments, as a new PyTorch optimizer would.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = _real(lr, "lr")
        self.beta1 = _real(beta1, "beta1")
        self.beta2 = _real(beta2, "beta2")
        self.eps = _real(eps, "eps")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {lr}")
        for name, beta in (("beta1", self.beta1), ("beta2", self.beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta}")
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise ValueError(f"eps must be a finite number > 0, got {eps}")

    def hyperparameters(self) -> tuple[float, float, float, float]:
        """``(lr, beta1, beta2, eps)``, in the order the core takes them."""
        return (self.lr, self.beta1, self.beta2, self.eps)

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g})"
