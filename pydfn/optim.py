"""Optimizers: their hyper-parameters. Their state (moments, momentum buffers, step
count) belongs to the model they train — its engine, in the C++ core — and is saved
with it under the names each optimizer declares (``state_names``).

The rule for that state: training with the optimizer the model already holds, or
with an equal one (same kind and hyper-parameters: ``Adam() == Adam()``), continues
it; so ``pydfn.load(path).fit(x, y, pydfn.Adam())`` resumes bit for bit. An
optimizer of another kind or with other hyper-parameters starts from fresh state,
as a new PyTorch optimizer would. To change a hyper-parameter and keep the state
(a learning-rate schedule), set it on the model's optimizer:
``model.optimizer.lr = 1e-4``. As in PyTorch, any finite lr >= 0 is taken (a schedule
may decay it to zero). ``model.reset_optimizer()`` clears the state.

Each follows PyTorch's update rule and defaults exactly; every step is one pass
over the flat parameter buffer in the C++ core; during ``fit``/``train_epoch``
each layer's step runs as soon as its gradient is complete, in the backward pass.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from . import _core
from ._validation import real


_FLOAT32_MAX = 3.4028234663852886e38
_POSITIVE: tuple[Callable[[float], bool], str] = (lambda v: v > 0, "a finite number > 0")
_UNIT: tuple[Callable[[float], bool], str] = (lambda v: 0.0 <= v < 1.0, "in [0, 1)")
_NONNEGATIVE: tuple[Callable[[float], bool], str] = (lambda v: v >= 0, "a finite number >= 0")  # the core computes in float32


_ADAM_RULES = {"lr": _NONNEGATIVE, "beta1": _UNIT, "beta2": _UNIT, "eps": _POSITIVE}


def _check(name: str, value: float, ok: bool, wanted: str) -> float:
    if not (ok and math.isfinite(value)):
        raise ValueError(f"{name} must be {wanted}, got {value}")
    if abs(value) > _FLOAT32_MAX:
        raise ValueError(f"{name} must be finite in float32 (|x| <= {_FLOAT32_MAX:.4g}), got {value}")
    return value


class Optimizer:
    """Base class: hyper-parameters of one of the core's optimizers.

    The state (moments or momentum buffers, step count) belongs to the model being
    trained and is saved in its checkpoint (see the module's rule). Two optimizers
    are equal when they have the same kind and hyper-parameters.
    """

    kind = ""  # the core's name for it
    _fields: tuple[str, ...] = ()
    lr: float  # sent to the core when it changed, so a schedule may change it between epochs

    # Each float hyper-parameter's rule: checked on every assignment, in the constructor and
    # after it (``opt.lr = float("inf")`` raises), so a bound optimizer is always valid.
    _rules: dict[str, tuple[Callable[[float], bool], str]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        rule = self._rules.get(name)
        if rule is not None:
            number = real(value, name)
            value = _check(name, number, rule[0](number), rule[1])
        super().__setattr__(name, value)

    def validate(self) -> None:
        """Raise ValueError or TypeError if the hyper-parameters are not a valid
        combination (what binding the optimizer to a model checks)."""
        type(self)(**self.get_config())

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: ``type(self)(**opt.get_config())`` is an equal optimizer."""
        return {name: getattr(self, name) for name in self._fields}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, Optimizer) and other.get_config() == self.get_config()

    __hash__ = None  # type: ignore[assignment]  # mutable (a schedule changes lr): no hash

    def core_config(self) -> _core.OptimizerConfig:
        """The kind and hyper-parameters as the core binds them."""
        return _core.OptimizerConfig(kind=self.kind, **self.get_config())

    @property
    def state_names(self) -> tuple[str, ...]:
        """The state buffers this optimizer keeps in the model (besides the step count),
        by the names checkpoints save them under: Adam's and AdamW's ``m``, ``v``;
        SGD's ``momentum`` (none without momentum); RMSProp's ``square_avg`` and, with
        momentum, ``momentum``."""
        return tuple(self.core_config().state_names)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" if not isinstance(v, bool) else f"{k}={v}"
                         for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Adam(Optimizer):
    """Adam, with PyTorch's update rule and defaults.

    ``m = b1·m + (1−b1)·g``, ``v = b2·v + (1−b2)·g²``,
    ``θ −= lr · (m / (1−b1^t)) / (sqrt(v / (1−b2^t)) + eps)``, t counting steps from 1.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, >= 0.
    beta1, beta2 : float, default 0.9 and 0.999
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator for numerical stability, > 0.
    """

    kind = "adam"
    _fields: tuple[str, ...] = ("lr", "beta1", "beta2", "eps")
    _rules = _ADAM_RULES

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps  # checked by _rules

    def hyperparameters(self) -> tuple[float, float, float, float]:
        """``(lr, beta1, beta2, eps)``."""
        return (self.lr, self.beta1, self.beta2, self.eps)


class AdamW(Adam):
    """AdamW (decoupled weight decay), with PyTorch's update rule and defaults.

    ``θ = θ·(1 − lr·weight_decay)``, then the Adam step. As in PyTorch given all
    of a model's parameters, the decay applies to biases too (the ``l1``/``l2``
    penalties of :class:`pydfn.MLP` spare them).

    Parameters
    ----------
    lr, beta1, beta2, eps : float
        As :class:`Adam`.
    weight_decay : float, default 0.01
        Decoupled decay rate, >= 0.
    """

    kind = "adamw"
    _fields: tuple[str, ...] = ("lr", "beta1", "beta2", "eps", "weight_decay")
    _rules = {**_ADAM_RULES, "weight_decay": _NONNEGATIVE}

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(lr, beta1, beta2, eps)
        self.weight_decay = weight_decay


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's update rule (no dampening).

    Without momentum ``θ −= lr·g``. With momentum μ, ``b = μ·b + g`` (``b = g`` on
    the first step), then ``θ −= lr·b``, or with ``nesterov`` ``θ −= lr·(g + μ·b)``.
    Batch, stochastic and minibatch gradient descent are ``batch_size=len(x)``,
    ``1`` and ``n`` in ``fit``.

    Parameters
    ----------
    lr : float
        Learning rate, >= 0 (required, as in PyTorch).
    momentum : float, default 0
        In [0, 1).
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0``.
    """

    kind = "sgd"
    _fields = ("lr", "momentum", "nesterov")
    _rules = {"lr": _NONNEGATIVE, "momentum": _UNIT}

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False):
        self.lr, self.momentum = lr, momentum
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {type(nesterov).__name__}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = nesterov


class RMSProp(Optimizer):
    """RMSProp, with PyTorch's update rule and defaults (not centered).

    ``s = α·s + (1−α)·g²``, ``a = sqrt(s) + eps``; without momentum ``θ −= lr·g/a``,
    with momentum μ ``b = μ·b + g/a``, ``θ −= lr·b``.

    Parameters
    ----------
    lr : float, default 0.01
    alpha : float, default 0.99
        Decay rate of the square average, in [0, 1).
    eps : float, default 1e-8
    momentum : float, default 0
        In [0, 1).
    """

    kind = "rmsprop"
    _fields = ("lr", "alpha", "eps", "momentum")
    _rules = {"lr": _NONNEGATIVE, "alpha": _UNIT, "eps": _POSITIVE, "momentum": _UNIT}

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0):
        self.lr, self.alpha, self.eps, self.momentum = lr, alpha, eps, momentum


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.kind: cls for cls in (Adam, AdamW, SGD, RMSProp)}


def from_config(kind: str, config: dict[str, Any]) -> Optimizer:
    """The optimizer of ``kind`` (``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``) built from ``config``."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; expected one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[kind](**config)
