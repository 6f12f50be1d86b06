"""The fit loop: epochs of C++ calls, validation, the history, callbacks.

The per-batch work stays in C++; Python wakes up a few times a second (between
calls on slices of one epoch's order, which give exactly the result of one call)
to update the progress and to let Ctrl-C through. The one-process loop here and the
MPI loop (:mod:`pydfn.distributed`) implement one protocol, :class:`EpochLoop`, over
the model's engine.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Iterable, Protocol

import numpy as np

from ._engine import BatchLogs, Engine, batches_per_epoch
from ._validation import FLOAT32_MAX, as_sample_weight, as_y, batch_size_for, check_bool, nonnegative_int, real
from .augment import Augment, EpochAugmenter
from .callbacks import CallbackList, ReduceLROnPlateau
from .history import History
from .preprocessing import prepare_features
from .schedules import Schedule

if TYPE_CHECKING:
    from .model import MLP
    from .optim import Optimizer

CHUNK_SECONDS = 0.2  # target time of one C++ call: progress and Ctrl-C latency
FIRST_CHUNK = 8  # batches in the first call, before the speed is known
_VAL_BATCH = 1024


def _check_validation(model: MLP, x: np.ndarray, y: np.ndarray, validation_data: Any,
                      validation_split: Any) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Checked training arrays and the checked validation pair (or None)."""
    validation_split = real(validation_split, "validation_split")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    n_features = model.layer_sizes[0]
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val)")
        xv = prepare_features(validation_data[0], n_features, "validation_data[0]")
        yv = as_y(validation_data[1], model.is_classifier, model.layer_sizes[-1], xv.shape[0],
                  name="validation_data[1]")
        return x, y, (xv, yv)
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
        distributed: bool = False, augment: Augment | None = None, class_weight: Any = None,
        sample_weight: Any = None, lr_schedule: Schedule | None = None) -> History:
    """Train ``model``; see :meth:`pydfn.MLP.fit`, which documents the arguments and behaviour."""
    # Every check first, so a mistake fails now rather than after an epoch.
    n_features = model.layer_sizes[0]
    x = prepare_features(x, n_features)
    y = as_y(y, model.is_classifier, model.layer_sizes[-1], x.shape[0])
    weights = sample_weights(model, y, sample_weight, class_weight)
    x, y, val = _check_validation(model, x, y, validation_data, validation_split)
    if weights is not None:
        weights = weights[:x.shape[0]]  # validation_split keeps the first rows for training
        if not weights.any():
            raise ValueError("sample_weight and class_weight give every training sample a weight of zero")
        if distributed:
            raise ValueError("sample_weight and class_weight are not supported with distributed=True yet")
    epochs = nonnegative_int(epochs, "epochs")
    batch_size = batch_size_for(batch_size, x.shape[0])
    shuffle = check_bool(shuffle, "shuffle")
    if seed is not None:
        seed = nonnegative_int(seed, "seed")
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    check_bool(distributed, "distributed")
    if lr_schedule is not None and not isinstance(lr_schedule, Schedule):
        raise TypeError("lr_schedule must be a pydfn.schedules schedule (CosineDecay, StepDecay, OneCycle), "
                        f"got {type(lr_schedule).__name__}")
    augmenter = None if augment is None else EpochAugmenter(augment, x)
    if distributed:
        # needs mpi4py: pydfn[mpi]
        from .distributed import as_rank_0, check_same_everywhere, rank
        if rank() != 0:
            callbacks, verbose = (), 0  # only rank 0 reports, checkpoints and decides to stop

    acc = model.is_classifier  # accuracy only for classification
    metrics = ["loss"] + ["accuracy"] * acc + (["val_loss"] + ["val_accuracy"] * acc if val else []) + ["time"]
    history = History({"epochs": epochs, "batch_size": batch_size, "samples": x.shape[0],
                       "val_samples": val[0].shape[0] if val else 0, "metrics": metrics})
    cbs = CallbackList(callbacks, model, history, verbose)

    def begin() -> None:  # callbacks check their settings here, before any training
        if lr_schedule is not None and any(isinstance(cb, ReduceLROnPlateau) for cb in cbs.items):
            raise ValueError("lr_schedule and ReduceLROnPlateau both set the learning rate: use one of them")
        cbs.on_train_begin()

    if distributed:
        as_rank_0(begin)  # rank 0's mistake fails every rank, not leaving them waiting
    else:
        begin()
    engine = model.engine
    held = engine.optimizer
    if lr_schedule is not None and held is not None and type(optimizer) is type(held):
        # The schedule owns lr: an optimizer equal to the model's but for lr continues its state too.
        if {**optimizer.get_config(), "lr": held.lr} == held.get_config():
            optimizer.lr = held.lr
    engine.bind(optimizer)  # checks its type; see pydfn.optim for when the state continues
    if distributed:
        # The same model, optimizer and settings everywhere: else the collectives mismatch ("Message
        # truncated") or the ranks silently train different models. The training data: the loop checks it.
        check_same_everywhere({
            # Not the seed: rank 0's generator is broadcast, and each rank may build its model from its own.
            "layer sizes and options": json.dumps([model.layer_sizes, {k: v for k, v in model.options().items()
                                                                       if k != "seed"}]).encode(),
            "optimizer and fit settings": json.dumps([optimizer.kind, optimizer.get_config(), epochs, batch_size,
                                                      shuffle, seed, augment is not None]).encode(),
            **({"validation data shape": np.array([*val[0].shape, *val[1].shape], np.int64),
                "validation features": val[0], "validation targets": val[1]} if val else {})})
    model.history = history
    if seed is not None:
        engine.reseed(seed)  # saved in checkpoints, so a resumed fit continues it
    loop = make_loop(distributed, engine, x, y, batch_size, cbs, augmenter, weights, lr_schedule)
    with loop:  # distributed: a failure on one rank stops them all
        try:
            for epoch in range(epochs):
                loss, accuracy, seconds = loop.run(epoch, shuffle)
                logs = {"loss": loss, "accuracy": accuracy} if acc else {"loss": loss}
                if val:
                    loss_sum, correct = loop.evaluate(val[0], val[1], _VAL_BATCH)
                    logs["val_loss"] = loss_sum / len(val[1]) + engine.penalty()
                    if acc:
                        logs["val_accuracy"] = correct / len(val[1])
                if lr_schedule is not None:
                    logs["lr"] = optimizer.lr  # the bound optimizer's: the epoch's last batch's rate
                logs["time"] = seconds
                history.record(epoch, logs)
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


def sample_weights(model: MLP, y: np.ndarray, sample_weight: Any, class_weight: Any) -> np.ndarray | None:
    """Each sample's loss weight, float32 (n,), from ``sample_weight`` times ``class_weight[y_i]``
    (Keras's meaning; a class missing from ``class_weight`` weighs 1), or None when both are None."""
    if sample_weight is None and class_weight is None:
        return None
    weights = np.ones(y.shape[0], np.float32) if sample_weight is None else as_sample_weight(sample_weight, y.shape[0])
    if class_weight is not None:
        if not model.is_classifier:
            raise ValueError("class_weight applies to classification (loss='softmax_xent')")
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{label: weight}}, got {type(class_weight).__name__}")
        per_class = np.ones(model.layer_sizes[-1], np.float64)
        for label, value in class_weight.items():
            if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) \
                    or not 0 <= label < len(per_class):
                raise ValueError(f"class_weight keys must be labels in [0, {len(per_class)}), got {label!r}")
            per_class[int(label)] = real(value, f"class_weight[{label}]")
        if not ((per_class >= 0) & (per_class <= FLOAT32_MAX)).all():  # NaN fails both
            raise ValueError(f"class_weight's weights must be finite and >= 0 (at most float32's 3.4e38), "
                             f"got {class_weight}")
        with np.errstate(over="ignore"):
            weights = weights * per_class[y].astype(np.float32)
        overflow = np.flatnonzero(~np.isfinite(weights))
        if overflow.size:
            raise ValueError(f"sample_weight times class_weight is beyond float32's range (3.4e38) for sample "
                             f"{overflow[0]}")
    if not weights.any():
        raise ValueError("sample_weight and class_weight give every sample a weight of zero")
    return np.ascontiguousarray(weights, dtype=np.float32)


class EpochLoop(Protocol):
    """What :func:`fit` drives: one epoch at a time over the model's engine, with the
    collective steps (evaluation, the decision to stop) the MPI loop needs."""

    def __enter__(self) -> EpochLoop: ...

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None: ...

    def run(self, epoch: int, shuffle: bool) -> tuple[float, float, float]:
        """Train one epoch; return its loss, accuracy and seconds."""

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, int]:
        """(sum of the losses, correct predictions) on checked ``(x, y)``."""

    def agree(self, reason: str | None) -> str | None:
        """The decision to stop, the same on every process."""

    def where(self) -> str:
        """Where training stood, for messages."""


def make_loop(distributed: bool, engine: Engine, x: np.ndarray, y: np.ndarray, batch_size: int,
              cbs: CallbackList, augmenter: EpochAugmenter | None, weights: np.ndarray | None,
              schedule: Schedule | None) -> EpochLoop:
    """The loop that runs fit's epochs: over MPI ranks (no sample weights there), or in this process."""
    if distributed:
        from .distributed import DataParallelLoop  # needs mpi4py: pydfn[mpi]
        return DataParallelLoop(engine, x, y, batch_size, cbs, augmenter, schedule=schedule)
    return OneProcessLoop(engine, x, y, batch_size, cbs, augmenter, weights, schedule)


class OneProcessLoop:
    """Runs one epoch as a few C++ calls, each sized to last about CHUNK_SECONDS."""

    def __init__(self, engine: Engine, x: np.ndarray, y: np.ndarray, batch_size: int,
                 callbacks: CallbackList, augmenter: EpochAugmenter | None, weights: np.ndarray | None = None,
                 schedule: Schedule | None = None):
        self.engine, self.x, self.y, self.weights, self.schedule = engine, x, y, weights, schedule
        self.batch_size, self.callbacks, self.augmenter = batch_size, callbacks, augmenter
        self.n_batches = batches_per_epoch(x.shape[0], batch_size)
        self.chunk = FIRST_CHUNK  # then sized from the measured speed
        self.epoch, self.done, self.first_step = -1, 0, 0

    def where(self) -> str:
        """Where training stood, for messages."""
        if self.epoch < 0:
            return "before the first epoch"
        # Count optimizer steps, not self.done: Ctrl-C during a C++ call lands after the call
        # has updated the weights but before its stats have come back.
        done = self.engine.step - self.first_step
        if done == 0:
            return f"at the start of epoch {self.epoch + 1}, before its first batch"
        return (f"in epoch {self.epoch + 1}, after batch {done} of {self.n_batches} "
                "(the model keeps the weights after that batch)")

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, int]:
        """(sum of the losses, correct predictions) on checked ``(x, y)``."""
        return self.engine.evaluate(x, y, batch_size)

    def agree(self, reason: str | None) -> str | None:
        """The decision to stop (one process: its own)."""
        return reason

    def __enter__(self) -> OneProcessLoop:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        pass

    def run(self, epoch: int, shuffle: bool) -> tuple[float, float, float]:
        """Train one epoch; return its loss, accuracy and seconds."""
        self.epoch, self.done = epoch, 0
        self.first_step = self.engine.step
        self.callbacks.on_epoch_begin(epoch)
        order = self.engine.epoch_order(self.x.shape[0], shuffle)
        if self.augmenter:
            self.augmenter.new_epoch(self.engine.rng, len(order))
        parts, start = [], time.perf_counter()
        while self.done < self.n_batches:
            t0 = time.perf_counter()
            first, batches = self.done * self.batch_size, self.chunk
            if self.augmenter:
                batches = min(batches, self.augmenter.max_batches(self.batch_size))
            rows = order[first:first + batches * self.batch_size]
            x, y, w = self.x, self.y, self.weights
            if self.augmenter:  # the core trains on the transformed rows, in the order gathered
                x, y, w = self.augmenter.take(rows, first), y[rows], None if w is None else w[rows]
                rows = np.arange(len(rows), dtype=np.int64)
            lr = None
            if self.schedule is not None:  # the rates of this call's batches, from their optimizer steps
                step = self.engine.step
                lr = self.schedule.rates(np.arange(step, step + batches_per_epoch(len(rows), self.batch_size)))
            logs = self.engine.train(x, y, rows, self.batch_size, w, lr)
            seconds = time.perf_counter() - t0
            self.done += len(logs)
            parts.append(logs)
            self.callbacks.on_batches_end(epoch, self.done, logs)
            # Grow or shrink the next call toward CHUNK_SECONDS, at most 4x at a time.
            wanted = len(logs) * CHUNK_SECONDS / max(seconds, 1e-6)
            self.chunk = int(min(max(wanted, self.chunk / 4, 1), self.chunk * 4))
        logs = BatchLogs.concatenate(parts)
        seconds = time.perf_counter() - start
        return logs.mean_loss(), logs.mean_accuracy(), seconds
