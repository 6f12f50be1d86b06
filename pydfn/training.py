"""The fit loop: epochs of C++ calls, validation, the history, callbacks.

The per-batch work stays in C++; Python wakes up a few times a second (between
calls on slices of one epoch's order, which give exactly the result of one call)
to update the progress and to let Ctrl-C through.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ._validation import as_features, positive_int
from .augment import Augment, EpochAugmenter
from .callbacks import CallbackList
from .datasets import prepare_images

if TYPE_CHECKING:
    from .model import MLP
    from .optim import Optimizer

CHUNK_SECONDS = 0.2  # target time of one C++ call: progress and Ctrl-C latency
FIRST_CHUNK = 8  # batches in the first call, before the speed is known
_VAL_BATCH = 1024


class History:
    """What a fit recorded, one entry per completed epoch.

    Attributes
    ----------
    history : dict of str to list of float
        ``loss`` and ``accuracy``: training loss and accuracy over the epoch's
        minibatches, each measured just before its update (as Keras does);
        ``val_loss`` and ``val_accuracy``: on the validation data after the epoch
        (present only when there is validation data); ``time``: seconds of the
        epoch's training pass.
    epoch : list of int
        Epoch numbers, counted from 0 in each fit.
    params : dict
        ``epochs``, ``batch_size``, ``samples``, ``val_samples``, ``metrics``.
    stop_reason : str or None
        Why the fit ended before its last epoch (early stopping, Ctrl-C, a
        diverged loss), else None.
    """

    def __init__(self, params: dict[str, Any] | None = None):
        self.params = dict(params or {})
        self.history: dict[str, list[float]] = {k: [] for k in self.params.get("metrics", ())}
        self.epoch: list[int] = []
        self.stop_reason: str | None = None

    def _append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def best_epoch(self, monitor: str = "val_loss") -> int | None:
        """Epoch with the lowest ``monitor`` (highest if it is an accuracy); None if not recorded."""
        values = self.history.get(monitor)
        if not values:
            return None
        pick = np.nanargmax if "acc" in monitor else np.nanargmin
        return self.epoch[int(pick(values))]

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History({len(self)} epochs, last={last})"


def prepare_features(x: Any, n_features: int, name: str = "x") -> np.ndarray:
    """Features for the network: uint8 images scaled to [0, 1] and flattened, or float features.

    Parameters
    ----------
    x : array-like of shape (n_samples, height, width) or (n_samples, n_features)
        uint8 pixels (divided by 255) or floating-point features.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32, C-contiguous
    """
    arr = np.asarray(x)
    if arr.dtype == np.uint8:
        pixels = math.prod(arr.shape[1:]) if arr.ndim >= 2 else 0
        if pixels != n_features:
            raise ValueError(f"{name} must hold images of {n_features} pixels, shaped (n_samples, height, width) "
                             f"or (n_samples, {n_features}), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty: it must have at least one row")
        return prepare_images(arr)  # one fused pass; pixels are finite, no need to check
    return as_features(arr, n_features, name=name)


def _check_validation(model: MLP, x: np.ndarray, y: np.ndarray, validation_data: Any,
                      validation_split: Any) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Checked training arrays and the checked validation pair (or None)."""
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
        raise TypeError(f"validation_split must be a number, got {type(validation_split).__name__}")
    if not 0.0 <= validation_split < 1.0:  # type: ignore[operator]  # mypy: numbers.Real has no <
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    n_features = model.layer_sizes[0]
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val)")
        xv = prepare_features(validation_data[0], n_features, "validation_data[0]")
        return x, y, (xv, model._check_y(validation_data[1], xv.shape[0], name="validation_data[1]"))
    if not validation_split:
        return x, y, None
    # Like Keras: the last fraction of the rows, taken before any shuffling.
    split = int(x.shape[0] * (1.0 - validation_split))
    if split < 1 or split == x.shape[0]:
        raise ValueError(f"validation_split={validation_split} of {x.shape[0]} samples leaves an empty "
                         "training or validation set")
    return x[:split], y[:split], (x[split:], y[split:])


def fit(model: MLP, x: Any, y: Any, optimizer: Optimizer, *, epochs: int = 10, batch_size: int = 64,
        validation_data: Any = None, validation_split: float = 0.0, shuffle: bool = True,
        seed: int | None = None, callbacks: Iterable[Any] = (), verbose: int = 1,
        distributed: bool = False, augment: Augment | None = None) -> History:
    """Train ``model``; see :meth:`pydfn.MLP.fit`, which documents the arguments and behaviour."""
    # Every check first, so a mistake fails now rather than after an epoch.
    n_features = model.layer_sizes[0]
    x = prepare_features(x, n_features)
    y = model._check_y(y, x.shape[0])
    x, y, val = _check_validation(model, x, y, validation_data, validation_split)
    epochs = positive_int(epochs, "epochs", minimum=0)
    batch_size = positive_int(batch_size, "batch_size")
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size ({batch_size}) is larger than the number of training samples ({x.shape[0]})")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {type(shuffle).__name__}")
    if seed is not None:
        seed = positive_int(seed, "seed", minimum=0)
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if not isinstance(distributed, (bool, np.bool_)):
        raise TypeError(f"distributed must be True or False, got {type(distributed).__name__}")
    augmenter = None if augment is None else EpochAugmenter(augment, x)
    loop_type: Any = _EpochLoop
    if distributed:
        from .distributed import DataParallelLoop as loop_type, as_rank_0, rank  # needs mpi4py: pydfn[mpi]
        if rank() != 0:
            callbacks, verbose = (), 0  # only rank 0 reports, checkpoints and decides to stop

    acc = model.is_classifier  # accuracy only for classification
    metrics = ["loss"] + ["accuracy"] * acc + (["val_loss"] + ["val_accuracy"] * acc if val else []) + ["time"]
    history = History({"epochs": epochs, "batch_size": batch_size, "samples": x.shape[0],
                       "val_samples": val[0].shape[0] if val else 0, "metrics": metrics})
    cbs = CallbackList(callbacks, model, history, verbose)
    if distributed:
        as_rank_0(cbs.on_train_begin)  # rank 0's mistake fails every rank, not leaving them waiting
    else:
        cbs.on_train_begin()  # callbacks check their settings here, before any training
    model._use(optimizer)  # checks its type; a new optimizer starts with fresh moments
    model.history = history
    if seed is not None:
        model._rng = np.random.default_rng(seed)  # saved in checkpoints, so a resumed fit continues it
    loop = loop_type(model, x, y, optimizer, batch_size, cbs, augmenter)
    with loop:  # distributed: a failure on one rank stops them all
        try:
            for epoch in range(epochs):
                loss, accuracy, seconds = loop.run(epoch, shuffle)
                logs = {"loss": loss, "accuracy": accuracy} if acc else {"loss": loss}
                if val:
                    loss_sum, correct = loop.evaluate(val[0], val[1], _VAL_BATCH)
                    logs["val_loss"] = loss_sum / len(val[1]) + model._net.penalty()
                    if acc:
                        logs["val_accuracy"] = correct / len(val[1])
                logs["time"] = seconds
                history._append(epoch, logs)
                history.stop_reason = loop.agree(cbs.on_epoch_end(epoch, logs))
                if history.stop_reason:
                    break
        except KeyboardInterrupt:
            history.stop_reason = f"interrupted (Ctrl-C) {loop.where()}"
            raise
        except FloatingPointError:
            history.stop_reason = f"the loss diverged {loop.where()}"
            raise
        finally:
            cbs.on_train_end()
    return history


class _EpochLoop:
    """Runs one epoch as a few C++ calls, each sized to last about CHUNK_SECONDS."""

    def __init__(self, model: MLP, x: np.ndarray, y: np.ndarray, optimizer: Optimizer, batch_size: int,
                 callbacks: CallbackList, augmenter: EpochAugmenter | None):
        self.model, self.x, self.y, self.optimizer = model, x, y, optimizer
        self.batch_size, self.callbacks, self.augmenter = batch_size, callbacks, augmenter
        self.n_batches = math.ceil(x.shape[0] / batch_size)
        self.chunk = FIRST_CHUNK  # then sized from the measured speed
        self.epoch, self.done = -1, 0

    def where(self) -> str:
        """Where training stood, for messages."""
        if self.epoch < 0:
            return "before the first epoch"
        # Count optimizer steps, not self.done: Ctrl-C during a C++ call lands after the call
        # has updated the weights but before its stats have come back.
        done = self.model._net.get_optimizer_state()[2] - self.first_step
        if done == 0:
            return f"at the start of epoch {self.epoch + 1}, before its first batch"
        return (f"in epoch {self.epoch + 1}, after batch {done} of {self.n_batches} "
                "(the model keeps the weights after that batch)")

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, int]:
        """(sum of the losses, correct predictions) on checked ``(x, y)``."""
        return self.model._net.evaluate(x, y, batch_size)

    def agree(self, reason: str | None) -> str | None:
        """The decision to stop (distributed: rank 0's, on every rank)."""
        return reason

    def __enter__(self) -> _EpochLoop:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        pass

    def run(self, epoch: int, shuffle: bool) -> tuple[float, float, float]:
        """Train one epoch; return its loss, accuracy and seconds."""
        self.epoch, self.done = epoch, 0
        self.first_step = self.model._net.get_optimizer_state()[2]
        self.callbacks.on_epoch_begin(epoch)
        order = self.model._epoch_order(self.x.shape[0], shuffle, None)
        if self.augmenter:
            self.augmenter.new_epoch(self.model._rng, len(order))
        parts, start = [], time.perf_counter()
        while self.done < self.n_batches:
            t0 = time.perf_counter()
            first, batches = self.done * self.batch_size, self.chunk
            if self.augmenter:
                batches = min(batches, self.augmenter.max_batches(self.batch_size))
            rows = order[first:first + batches * self.batch_size]
            x, y = self.x, self.y
            if self.augmenter:  # the core trains on the transformed rows, in the order gathered
                x, y = self.augmenter.take(rows, first), y[rows]
                rows = np.arange(len(rows), dtype=np.int64)
            stats = self.model._train_on_order(x, y, rows, self.batch_size, self.optimizer)
            seconds = time.perf_counter() - t0
            self.done += len(stats)
            parts.append(stats)
            self.callbacks.on_batches_end(epoch, self.done, stats)
            # Grow or shrink the next call toward CHUNK_SECONDS, at most 4x at a time.
            wanted = len(stats) * CHUNK_SECONDS / max(seconds, 1e-6)
            self.chunk = int(min(max(wanted, self.chunk / 4, 1), self.chunk * 4))
        stats = np.concatenate(parts)
        seconds = time.perf_counter() - start
        return float(stats[:, 0] @ stats[:, 2]) / len(order), float(stats[:, 1].sum()) / len(order), seconds
