"""The same network, losses, activations, penalties, gradients and optimizers in plain NumPy.

It is the oracle of the tests and the NumPy baseline of the benchmarks, so it is
written the natural way: one ``@`` per product, Adam in place, float32 unless a
test asks for float64. It shares only the initialisation with the model.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from .initializers import glorot_uniform


def softmax_xent(logits: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-row losses (B,) and softmax probabilities (B, C), from logits (B, C).

    With ``label_smoothing`` eps, PyTorch's ``CrossEntropyLoss(label_smoothing=eps)``: the
    loss is ``-Σ_j t_j·log p_j`` against the target ``t = (1-eps)·onehot(y) + eps/C``.
    """
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    log_p = z - np.log(s)
    nll = -log_p[np.arange(len(y)), y]
    losses = nll if label_smoothing == 0 else (1 - label_smoothing) * nll - label_smoothing * log_p.mean(axis=1)
    return losses, e / s


def smoothed_targets(y: np.ndarray, n_classes: int, label_smoothing: float, dtype: Any = np.float64) -> np.ndarray:
    """``(1-eps)·onehot(y) + eps/C`` (B, C): the target softmax_xent's gradient ``probs - t`` uses."""
    t: np.ndarray = np.full((len(y), n_classes), label_smoothing / n_classes, dtype=dtype)
    t[np.arange(len(y)), y] += 1 - label_smoothing
    return t


_M64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer on uint32 arrays (wrapping multiplies)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    mixed: np.ndarray = h ^ (h >> np.uint32(16))
    return mixed


def dropout_keep_mask(seed: int, step: int, layer: int, rate: float, B: int, n: int) -> tuple[np.ndarray, np.float32]:
    """(keep (B, n) bool, scale): hidden layer ``layer``'s dropout mask in optimizer step ``step``.

    The core's counter-based rule (csrc/pydfn/dropout.hpp), written independently: a unit is
    kept when the top 24 bits of its hash are >= round(rate·2^24); kept units are scaled by 1/(1 − rate).
    """
    rate32 = float(np.float32(rate))  # the core holds rates in float32
    key = _splitmix64(_splitmix64(_splitmix64(seed & _M64) ^ (step & _M64)) ^ layer)
    rows = np.arange(B, dtype=np.uint64)
    row_keys = _fmix32(np.uint32(key & 0xFFFFFFFF) ^ (rows.astype(np.uint32) * np.uint32(0x9E3779B9))
                       ^ (rows >> np.uint64(32)).astype(np.uint32))
    cols = np.arange(n, dtype=np.uint32) * np.uint32(0x85EBCA77)
    bits = _fmix32(row_keys[:, None] ^ cols[None, :])
    threshold = math.floor(rate32 * 2**24 + 0.5)
    return (bits >> np.uint32(8)) >= threshold, np.float32(1.0 / (1.0 - rate32))


# Hidden activations f and their derivatives written from the output h = f(z).
_Elementwise = Callable[[np.ndarray], np.ndarray]
ACTIVATIONS: dict[str, tuple[_Elementwise, _Elementwise]] = {
    "relu": (lambda z: np.maximum(z, 0), lambda h: (h > 0).astype(h.dtype)),
    "tanh": (np.tanh, lambda h: 1 - h * h),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda h: h * (1 - h)),
}


class ReferenceMLP:
    """784-256-128-10-style network in NumPy: hidden activation, linear output, a
    loss (softmax cross-entropy on integer labels, or mse/mae on float targets
    (B, n_out), each the mean over all elements) and l1/l2 weight penalties.

    Parameters
    ----------
    layer_sizes : sequence of int
    seed : int, default 0
        Same initialisation as ``pydfn.MLP`` with this seed.
    dtype : numpy dtype, default float32
    activation, loss, l1, l2, dropout, label_smoothing :
        As ``pydfn.MLP`` (``dropout``: one rate per hidden layer; its masks are
        seeded with ``seed``, as the model's are).

    Attributes
    ----------
    steps : int
        Training steps taken by :func:`train_epoch`; step ``steps + 1``'s dropout masks apply next.
    """

    def __init__(self, layer_sizes: Sequence[int], *, seed: int = 0, dtype: type = np.float32,
                 activation: str = "relu", loss: str = "softmax_xent", l1: float = 0.0, l2: float = 0.0,
                 dropout: Sequence[float] = (), label_smoothing: float = 0.0):
        self.dtype = np.dtype(dtype)
        self.params = [p.astype(self.dtype) for p in glorot_uniform(layer_sizes, seed)]
        self.f, self.df = ACTIVATIONS[activation]
        self.loss_name, self.l1, self.l2, self.label_smoothing = loss, l1, l2, label_smoothing
        self.dropout = list(dropout) or [0.0] * (len(layer_sizes) - 2)
        self.seed, self.steps = seed, 0

    def masks(self, step: int | None, B: int) -> list[tuple[np.ndarray, np.float32] | None]:
        """Each hidden layer's dropout (keep, scale) in training step ``step``; None: no dropout."""
        return [dropout_keep_mask(self.seed, step, l, rate, B, self.params[2 * l].shape[1])
                if step is not None and rate > 0 else None for l, rate in enumerate(self.dropout)]

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations ``[x, h1, ..., output]``; hidden ones are activation outputs."""
        return self.forward_train(x, self.masks(None, len(x)))[0]

    def forward_train(self, x: np.ndarray, masks: list[tuple[np.ndarray, np.float32] | None],
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Activations ``[x, h1, ..., output]`` and each layer's input: ``h`` after
        the hidden layers' dropout ``masks`` (from :meth:`masks`)."""
        acts, inputs = [x], [x]
        n_layers = len(self.params) // 2
        for l, mask in enumerate(masks + [None]):
            h = inputs[-1] @ self.params[2 * l] + self.params[2 * l + 1]
            acts.append(self.f(h) if l + 1 < n_layers else h)
            inputs.append(acts[-1] if mask is None else np.where(mask[0], acts[-1] * mask[1], 0))
        return acts, inputs

    def penalty(self) -> float:
        """l1·Σ|W| + l2·ΣW² over the weight matrices (not the biases)."""
        weights = self.params[0::2]
        return float(sum(self.l1 * np.abs(w).sum(dtype=np.float64) + self.l2 * (w.astype(np.float64) ** 2).sum()
                         for w in weights))

    def data_loss(self, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean loss of the output (B, n_out) and its gradient with respect to it."""
        if self.loss_name == "softmax_xent":
            losses, probs = softmax_xent(out, y, self.label_smoothing)
            dy = probs - smoothed_targets(y, out.shape[1], self.label_smoothing, out.dtype)
            return float(losses.mean()), dy / len(y)
        err = out - y
        if self.loss_name == "mse":
            return float((err ** 2).mean()), 2 * err / err.size
        return float(np.abs(err).mean()), np.sign(err) / err.size  # sign(0) = 0

    def loss(self, x: np.ndarray, y: np.ndarray, step: int | None = None) -> float:
        """The cost: mean loss of the batch + penalty (with step ``step``'s dropout, if given)."""
        return self.data_loss(self.forward_train(x, self.masks(step, len(x)))[0][-1], y)[0] + self.penalty()

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray,
                       step: int | None = None) -> tuple[float, list[np.ndarray]]:
        """The cost (mean loss + penalty) and its gradients ``[dW1, db1, ...]``, with
        training step ``step``'s dropout masks (None: no dropout)."""
        masks = self.masks(step, len(x))
        acts, inputs = self.forward_train(x, masks)
        loss, dy = self.data_loss(acts[-1], y)
        grads: list[np.ndarray] = []
        for l in reversed(range(len(self.params) // 2)):
            W = self.params[2 * l]
            dW = inputs[l].T @ dy + self.l1 * np.sign(W) + 2 * self.l2 * W
            grads[:0] = [dW.astype(self.dtype), dy.sum(axis=0)]
            if l > 0:
                dy = (dy @ W.T) * self.df(acts[l])
                mask = masks[l - 1]
                if mask is not None:
                    dy = np.where(mask[0], dy * mask[1], 0)
        return loss + self.penalty(), grads


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


class ReferenceAdamW(ReferenceAdam):
    """AdamW as PyTorch defines it: ``θ *= 1 − lr·weight_decay``, then Adam."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr, beta1, beta2, eps)
        self.weight_decay = weight_decay

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for p in params:
            p *= 1 - self.lr * self.weight_decay
        super().step(params, grads)


class ReferenceSGD:
    """SGD as PyTorch defines it (no dampening), in place on a list of arrays."""

    def __init__(self, params: list[np.ndarray], lr: float, momentum: float = 0.0, nesterov: bool = False):
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.buf: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if self.momentum:
            if self.buf is None:
                self.buf = [g.copy() for g in grads]
            else:
                for b, g in zip(self.buf, grads):
                    b *= self.momentum
                    b += g
            grads = [g + self.momentum * b for g, b in zip(grads, self.buf)] if self.nesterov else self.buf
        for p, g in zip(params, grads):
            p -= self.lr * g


class ReferenceRMSProp:
    """RMSProp as PyTorch defines it (not centered), in place on a list of arrays."""

    def __init__(self, params: list[np.ndarray], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0):
        self.lr, self.alpha, self.eps, self.momentum = lr, alpha, eps, momentum
        self.square_avg = [np.zeros_like(p) for p in params]
        self.buf = [np.zeros_like(p) for p in params]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for p, g, s, b in zip(params, grads, self.square_avg, self.buf):
            s *= self.alpha
            s += (1 - self.alpha) * g * g
            scaled = g / (np.sqrt(s) + self.eps)
            if self.momentum:
                b *= self.momentum
                b += scaled
                p -= self.lr * b
            else:
                p -= self.lr * scaled


def train_epoch(model: ReferenceMLP, adam: ReferenceAdam, x: np.ndarray, y: np.ndarray,
                order: np.ndarray, batch_size: int) -> float:
    """One epoch over rows ``order`` of (x, y) with any reference optimizer (``adam``);
    returns the sample-weighted mean batch cost."""
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        loss, grads = model.loss_and_grads(x[rows], y[rows], step=model.steps + 1)
        adam.step(model.params, grads)
        model.steps += 1
        total += loss * len(rows)
    return total / len(order)
