"""The same network, loss, gradients and Adam in plain NumPy.

It is the oracle of the tests and the NumPy baseline of the benchmarks, so it is
written the natural way: one ``@`` per product, Adam in place, float32 unless a
test asks for float64. It shares only the initialisation with the model.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .initializers import glorot_uniform


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row losses (B,) and softmax probabilities (B, C), from logits (B, C)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    losses = np.log(s[:, 0]) - z[np.arange(len(y)), y]
    return losses, e / s


class ReferenceMLP:
    """784-256-128-10-style ReLU network with softmax cross-entropy, in NumPy.

    Parameters
    ----------
    layer_sizes : sequence of int
    seed : int, default 0
        Same initialisation as ``pydfn.MLP`` with this seed.
    dtype : numpy dtype, default float32
    """

    def __init__(self, layer_sizes: Sequence[int], *, seed: int = 0, dtype: type = np.float32):
        self.dtype = np.dtype(dtype)
        self.params = [p.astype(self.dtype) for p in glorot_uniform(layer_sizes, seed)]

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations ``[x, h1, ..., logits]``; hidden ones are ReLU outputs."""
        acts = [x]
        n_layers = len(self.params) // 2
        for l in range(n_layers):
            h = acts[-1] @ self.params[2 * l] + self.params[2 * l + 1]
            acts.append(np.maximum(h, 0) if l + 1 < n_layers else h)
        return acts

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean softmax cross-entropy of the batch."""
        losses, _ = softmax_xent(self.forward(x)[-1], y)
        return float(losses.mean())

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean loss and its gradients ``[dW1, db1, ...]``."""
        acts = self.forward(x)
        losses, probs = softmax_xent(acts[-1], y)
        dy = probs
        dy[np.arange(len(y)), y] -= 1
        dy /= len(y)
        grads: list[np.ndarray] = []
        for l in reversed(range(len(self.params) // 2)):
            grads[:0] = [acts[l].T @ dy, dy.sum(axis=0)]
            if l > 0:
                dy = (dy @ self.params[2 * l].T) * (acts[l] > 0)
        return float(losses.mean()), grads


class ReferenceAdam:
    """Adam as PyTorch defines it, in place on a list of arrays."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        step_size = self.lr / (1 - self.beta1 ** self.t)
        bc2_sqrt = math.sqrt(1 - self.beta2 ** self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= step_size * m / (np.sqrt(v) / bc2_sqrt + self.eps)


def train_epoch(model: ReferenceMLP, adam: ReferenceAdam, x: np.ndarray, y: np.ndarray,
                order: np.ndarray, batch_size: int) -> float:
    """One epoch over rows ``order`` of (x, y); returns the sample-weighted mean batch loss."""
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        loss, grads = model.loss_and_grads(x[rows], y[rows])
        adam.step(model.params, grads)
        total += loss * len(rows)
    return total / len(order)
