"""Learning-rate schedules: the learning rate as a function of the optimizer step.

Give one to fit: ``model.fit(x, y, pydfn.Adam(), lr_schedule=CosineDecay(1e-3, total_steps))``.
A schedule is a pure function ``lr(step)`` of the global optimizer step — the number of
updates the model has taken before this one, counted from 0 (``model.optimizer_step``
before the update, as PyTorch's schedulers count ``scheduler.step()`` calls, one per
batch). Before each C++ call of an epoch, fit computes the rates of that call's
batches in one NumPy expression and the core uses them batch by batch: no Python call
per batch. The schedule replaces the optimizer's ``lr`` during the fit; the optimizer's
other hyper-parameters stay as given, and after each call ``model.optimizer.lr`` is
the rate of the last batch trained (it is also recorded per epoch as
``history.history["lr"]``).

Steps, not epochs: an epoch of ``n`` training rows in batches of ``b`` is
``ceil(n / b)`` steps (``pydfn train --schedule`` converts its epoch flags so).

Resuming: the step count is saved in checkpoints, so a loaded model continues a
schedule where it stopped when given the same schedule again,
``m = pydfn.load(path); m.fit(x, y, m.optimizer, lr_schedule=same_schedule)``. As the
schedule owns the rate, an optimizer that equals the model's but for ``lr`` (a new
``pydfn.Adam()``) continues the state too; other hyper-parameters start fresh state,
and the schedule from step 0 (see :mod:`pydfn.optim`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._validation import FLOAT32_MAX, nonnegative_int, positive_int, real

__all__ = ["Schedule", "CosineDecay", "StepDecay", "OneCycle"]

_MAX_STEP = 2**63 - 1  # steps are int64


def _rate(value: Any, name: str, *, zero: bool = False) -> float:
    """A learning rate: finite, > 0 (>= 0 with ``zero``), representable in float32."""
    number = real(value, name)
    if not (math.isfinite(number) and (number >= 0 if zero else number > 0) and number <= FLOAT32_MAX):
        raise ValueError(f"{name} must be a finite number {'>= 0' if zero else '> 0'} (at most float32's 3.4e38), "
                         f"got {number}")
    return number


def _factor(value: Any, name: str) -> float:
    number = real(value, name)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {number}")
    return number


class Schedule:
    """Base class: a learning rate for every optimizer step ``step >= 0``.

    Subclasses implement :meth:`values`; ``schedule(step)`` is the rate of one step, and
    training takes the rates through :meth:`rates`, which checks them.
    """

    def values(self, steps: np.ndarray) -> np.ndarray:
        """The rates of ``steps`` (int64 array, each >= 0) as a float64 array of the same shape."""
        raise NotImplementedError

    def rates(self, steps: np.ndarray) -> np.ndarray:
        """:meth:`values`, checked: one rate per step, finite, >= 0 and within float32's range.

        A subclass, or an attribute changed after construction, could give NaN or a rate the
        core refuses; the ValueError names the schedule and the step, before the batch trains.
        """
        lr = np.asarray(self.values(steps), dtype=np.float64)
        if lr.shape != steps.shape:
            raise ValueError(f"lr_schedule {self!r} gave {lr.shape} rates for steps of shape {steps.shape}")
        bad = np.flatnonzero(~((lr >= 0) & (lr <= FLOAT32_MAX)))  # NaN fails both
        if bad.size:
            raise ValueError(f"lr_schedule {self!r} gives a learning rate of {lr[bad[0]]} at step {steps[bad[0]]}: "
                             "a rate must be finite, >= 0 and at most float32's 3.4e38")
        return lr

    def __call__(self, step: int) -> float:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 0 <= step <= _MAX_STEP:
            raise ValueError(f"step must be an integer >= 0 and < 2**63, got {step!r}")
        return float(self.rates(np.array([step], np.int64))[0])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class CosineDecay(Schedule):
    """Linear warm-up from 0 to ``peak_lr``, then cosine decay to ``final_lr``.

    With s the step and w = ``warmup_steps``, T = ``total_steps``::

        lr(s) = peak_lr · s / w                                          for s < w
        lr(s) = final_lr + (peak_lr − final_lr) · (1 + cos(π · p)) / 2   for s >= w,
                p = min(s − w, T − w) / (T − w)

    so the first step (s = 0) of a warm-up has rate 0, and from step T on the rate
    stays ``final_lr``. This is Keras's ``CosineDecay(initial_learning_rate=0,
    warmup_target=peak_lr, warmup_steps=w, decay_steps=T − w, alpha=final_lr /
    peak_lr)``; without warm-up, PyTorch's ``CosineAnnealingLR(T_max=T,
    eta_min=final_lr)`` on a base rate of ``peak_lr`` (which, unlike this, rises
    again after T).

    Parameters
    ----------
    peak_lr : float
        The rate at the end of the warm-up (at step 0 without one), > 0.
    total_steps : int
        Steps of warm-up plus decay, >= 1.
    warmup_steps : int, default 0
        In [0, total_steps).
    final_lr : float, default 0
        In [0, peak_lr].
    """

    def __init__(self, peak_lr: float, total_steps: int, warmup_steps: int = 0, final_lr: float = 0.0):
        self.peak_lr = _rate(peak_lr, "peak_lr")
        self.total_steps = positive_int(total_steps, "total_steps")
        self.warmup_steps = nonnegative_int(warmup_steps, "warmup_steps")
        if self.warmup_steps >= self.total_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be less than total_steps "
                             f"({self.total_steps}): the decay needs at least one step")
        self.final_lr = _rate(final_lr, "final_lr", zero=True)
        if self.final_lr > self.peak_lr:
            raise ValueError(f"final_lr ({self.final_lr}) must be <= peak_lr ({self.peak_lr})")

    def values(self, steps: np.ndarray) -> np.ndarray:
        s = np.asarray(steps, np.float64)
        w, decay = self.warmup_steps, self.total_steps - self.warmup_steps
        p = np.minimum(s - w, decay) / decay
        cosine = self.final_lr + (self.peak_lr - self.final_lr) * (1.0 + np.cos(np.pi * p)) / 2.0
        if w == 0:
            return cosine
        lr: np.ndarray = np.where(s < w, self.peak_lr * s / w, cosine)
        return lr


class StepDecay(Schedule):
    """``lr · gamma ** (step // step_size)``: PyTorch's ``StepLR``, counted in optimizer steps.

    PyTorch's ``StepLR`` is usually stepped once per epoch; with ``step_size`` a
    whole number of epochs' batches (``pydfn train --step-size EPOCHS`` does so) this
    is exactly that, the rate changing at the first batch of an epoch.

    Parameters
    ----------
    lr : float
        The initial rate, > 0.
    step_size : int
        Steps between two decays, >= 1.
    gamma : float, default 0.1
        The factor of each decay, in (0, 1].
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.lr = _rate(lr, "lr")
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = real(gamma, "gamma")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be a number in (0, 1], got {self.gamma}")

    def values(self, steps: np.ndarray) -> np.ndarray:
        lr: np.ndarray = self.lr * self.gamma ** (np.asarray(steps, np.int64) // self.step_size).astype(np.float64)
        return lr


class OneCycle(Schedule):
    """The one-cycle policy's learning rate: PyTorch's ``OneCycleLR`` with its defaults
    ``anneal_strategy="cos"``, ``three_phase=False``.

    From ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of the
    steps, then down to ``max_lr / div_factor / final_div_factor`` at step
    ``total_steps − 1``, both halves cosine-annealed::

        anneal(a, b, p) = b + (a − b) / 2 · (1 + cos(π · p))
        e1 = pct_start · total_steps − 1,  e2 = total_steps − 1
        lr(s) = anneal(max_lr / div_factor, max_lr, s / e1)             for s <= e1
        lr(s) = anneal(max_lr, min_lr, (min(s, e2) − e1) / (e2 − e1))   otherwise

    PyTorch cycles the momentum (Adam's beta1) too; this does not: the optimizer's
    other hyper-parameters stay as given. Past ``total_steps`` PyTorch raises; here
    the rate stays at its minimum.

    Parameters
    ----------
    max_lr : float
        The peak rate, > 0.
    total_steps : int
        Steps of the cycle; ``pct_start · total_steps`` must exceed 1.
    pct_start : float, default 0.3
        The share of the steps spent rising, in (0, 1).
    div_factor : float, default 25
        The first rate is ``max_lr / div_factor``, which float32 must hold.
    final_div_factor : float, default 1e4
        The last rate is ``max_lr / div_factor / final_div_factor``.
    """

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4):
        self.max_lr = _rate(max_lr, "max_lr")
        self.total_steps = positive_int(total_steps, "total_steps")
        self.pct_start = real(pct_start, "pct_start")
        if not 0 < self.pct_start < 1:
            raise ValueError(f"pct_start must be a number in (0, 1), got {self.pct_start}")
        if not self.pct_start * self.total_steps > 1:
            raise ValueError(f"pct_start * total_steps must exceed 1 (the rise needs a step), got "
                             f"{self.pct_start} * {self.total_steps}")
        self.div_factor = _factor(div_factor, "div_factor")
        _rate(self.max_lr / self.div_factor, "max_lr / div_factor")  # the first rate: a tiny div_factor overflows it
        self.final_div_factor = _factor(final_div_factor, "final_div_factor")

    def values(self, steps: np.ndarray) -> np.ndarray:
        s = np.asarray(steps, np.float64)
        initial = self.max_lr / self.div_factor
        minimum = initial / self.final_div_factor
        e1, e2 = self.pct_start * self.total_steps - 1, float(self.total_steps - 1)
        rising = s <= e1
        p = np.where(rising, s / e1, (np.minimum(s, e2) - e1) / (e2 - e1))
        start = np.where(rising, initial, self.max_lr)
        end = np.where(rising, self.max_lr, minimum)
        lr: np.ndarray = end + (start - end) / 2.0 * (np.cos(np.pi * p) + 1.0)
        return lr
