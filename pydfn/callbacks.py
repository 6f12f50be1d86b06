"""Callbacks: what runs around the fit loop — early stopping, checkpoints, progress, your hooks.

A callback is a :class:`Callback` subclass, or any plain callable ``hook(epoch, logs)``
called after each epoch. ``on_epoch_end`` (or the hook) returns None to go on, or a
string — the reason — to stop training after this epoch.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from ._atomic import append_whole, check_writable, write_atomically
from ._engine import BatchLogs, batches_per_epoch
from ._validation import positive_int, real
from .progress import Bar, in_notebook, make_bar, si_prefixed

if TYPE_CHECKING:
    from .model import MLP
    from .history import History


class Callback:
    """Base class of the callbacks; override the hooks you need.

    During a fit, ``self.model`` is the model being trained and ``self.history``
    its :class:`~pydfn.history.History` (``history.params`` holds ``epochs``,
    ``batch_size``, ``samples``, ``val_samples`` and the recorded ``metrics``).
    """

    model: MLP
    history: History

    def on_train_begin(self) -> None:
        """Before the first epoch: check the settings against ``self.history.params``."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Before epoch ``epoch`` (counted from 0)."""

    def on_batches_end(self, epoch: int, batches_done: int, logs: BatchLogs) -> None:
        """After each C++ call, which trained the minibatches ending with number
        ``batches_done`` of the epoch; ``logs`` has one entry per minibatch of the call:
        ``logs.loss`` (its cost), ``logs.correct``, ``logs.size`` (its rows), ``logs.accuracy``."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        """After the epoch and its validation; return a reason (str) to stop training."""
        return None

    def on_train_end(self) -> None:
        """After the last epoch, also when training stopped early or on an exception."""


class _Hook(Callback):
    """A plain callable ``hook(epoch, logs)`` run after each epoch."""

    def __init__(self, fn: Callable[[int, dict[str, float]], Any]):
        self.fn = fn

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        reason = self.fn(epoch, logs)
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"the hook {self.fn!r} returned {type(reason).__name__}: "
                            "return None to go on, or a str (the reason) to stop")
        return reason


class CallbackList:
    """The callbacks of one fit, called in order, progress last (it reports what the others decided)."""

    def __init__(self, callbacks: Iterable[Any], model: MLP, history: History, verbose: int):
        if isinstance(callbacks, Callback) or callable(callbacks) or isinstance(callbacks, (str, bytes)):
            raise TypeError("callbacks must be a list of callbacks, e.g. callbacks=[EarlyStopping()]")
        self.items: list[Callback] = []
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback) and not callable(cb):
                raise TypeError(f"callbacks[{i}] must be a pydfn.callbacks.Callback or a callable "
                                f"hook(epoch, logs), got {type(cb).__name__}")
            self.items.append(cb if isinstance(cb, Callback) else _Hook(cb))
        if verbose and not any(isinstance(cb, Progress) for cb in self.items):
            self.items.append(Progress(verbose))
        self.items.sort(key=lambda cb: isinstance(cb, Progress))  # stable: the rest keep their order
        for cb in self.items:
            cb.model, cb.history = model, history

    def on_train_begin(self) -> None:
        for cb in self.items:
            cb.on_train_begin()

    def on_epoch_begin(self, epoch: int) -> None:
        for cb in self.items:
            cb.on_epoch_begin(epoch)

    def on_batches_end(self, epoch: int, batches_done: int, logs: BatchLogs) -> None:
        for cb in self.items:
            cb.on_batches_end(epoch, batches_done, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        reasons = [r for r in (cb.on_epoch_end(epoch, dict(logs)) for cb in self.items) if r]
        return "; ".join(reasons) or None

    def on_train_end(self) -> None:
        for cb in self.items:
            cb.on_train_end()


class _Monitor:
    """Tracks the best value of one metric: lower is better for losses, higher for accuracies."""

    monitor: str
    min_delta: float
    sign: float
    best: float
    best_epoch: int | None

    def __init__(self, monitor: str, mode: str, min_delta: float):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not real(min_delta, "min_delta") >= 0:
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.min_delta = monitor, float(min_delta)
        self.sign = -1.0 if mode == "max" or (mode == "auto" and "acc" in monitor) else 1.0

    def check(self, history: History, who: str) -> None:
        metrics = history.params["metrics"]
        if self.monitor not in metrics:
            hint = " (give fit validation_data or validation_split)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"{who} monitors {self.monitor!r}, which this fit does not record{hint}; "
                             f"it records {metrics}")
        self.best, self.best_epoch = math.inf, None

    def improved(self, epoch: int, logs: dict[str, float]) -> bool:
        """Whether ``logs[monitor]`` beats the best by more than min_delta (then it becomes the best)."""
        value = self.sign * logs[self.monitor]
        if not value < self.best - self.min_delta:  # NaN never improves
            return False
        self.best, self.best_epoch = value, epoch
        return True

    def describe_best(self) -> str:
        return f"{self.sign * self.best:.4f} (epoch {self.best_epoch + 1})"  # type: ignore[operator]  # set once improved


class EarlyStopping(Callback):
    """Stop when a metric has stopped improving; by default go back to its best epoch.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A metric of the history; needs validation data when it starts with ``val_``.
    patience : int, default 5
        Stop after this many epochs in a row without improvement.
    min_delta : float, default 0
        An improvement must beat the best by more than this.
    restore_best_weights : bool, default True
        When it stops training, set the model's weights back to those of the best
        epoch (the Adam state stays that of the last epoch). As in Keras, a fit
        that runs all its epochs keeps its last weights.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto": higher for accuracies.

    Attributes
    ----------
    best_epoch : int or None
        Number of the epoch with the best value, from 1 as printed (and as
        ``History.best_epoch()`` counts).
    stopped_epoch : int or None
        Number (from 1) of the epoch after which it stopped training, None if it did not.
    """

    _best_weights: list[np.ndarray] | None

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = True, mode: str = "auto"):
        self._best = _Monitor(monitor, mode, min_delta)
        self.monitor, self.patience = monitor, positive_int(patience, "patience")
        self.restore_best_weights = bool(restore_best_weights)
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def on_train_begin(self) -> None:
        self._best.check(self.history, "EarlyStopping")
        self.best_epoch = self.stopped_epoch = None
        self._wait, self._best_weights = 0, None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        if self._best.improved(epoch, logs):
            self.best_epoch, self._wait = epoch + 1, 0
            if self.restore_best_weights:
                self._best_weights = self.model.get_weights()
            return None
        self._wait += 1
        if self._wait < self.patience:
            return None
        self.stopped_epoch = epoch + 1
        reason = (f"early stopping: {self.monitor} has not improved on {self._best.describe_best()} "
                  f"for {self.patience} epoch{'s' if self.patience > 1 else ''}")
        if self._best_weights is not None:
            reason += f"; restored the weights of epoch {self.best_epoch}"
        return reason

    def on_train_end(self) -> None:
        if self.stopped_epoch is not None and self._best_weights is not None:
            self.model.set_weights(self._best_weights)
        self._best_weights = None  # don't keep a copy of the weights alive


class ModelCheckpoint(Callback):
    """Save the model (weights, Adam state, shuffling state) after epochs, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        File to write; may hold ``str.format`` fields ``{epoch}`` (from 1) and the
        metrics, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``.
    monitor : str, default "val_loss"
        The metric ``save_best_only`` compares.
    save_best_only : bool, default False
        Save only after epochs that improve ``monitor``; else after every epoch.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto": higher for accuracies.

    Attributes
    ----------
    last_saved : str or None
        The file most recently written.
    """

    def __init__(self, path: str | os.PathLike[str], *, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto"):
        self.path, self.save_best_only = os.fspath(path), bool(save_best_only)
        self._best = _Monitor(monitor, mode, 0.0)
        self.last_saved: str | None = None

    def on_train_begin(self) -> None:
        metrics = self.history.params["metrics"]
        if self.save_best_only:
            self._best.check(self.history, "ModelCheckpoint")
        try:  # a bad field should fail now, not after the first epoch
            example = self.path.format(epoch=1, **{m: 0.0 for m in metrics})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} has a field that is not epoch or one of "
                             f"{metrics}: {exc!r}") from None
        folder = os.path.dirname(example) or "."
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"ModelCheckpoint: the folder {folder!r} does not exist")
        check_writable(example)  # a read-only folder fails now, not after the first epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        if not self.save_best_only or self._best.improved(epoch, logs):
            self.last_saved = self.path.format(epoch=epoch + 1, **logs)
            self.model.save(self.last_saved)
        return None


class CSVLogger(Callback):
    """Write one row per epoch to a CSV file: ``epoch`` (from 1, as the progress lines
    count), the recorded metrics (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
    ``time``: those of ``history.params["metrics"]``) and the learning rate ``lr``.

    Each row is written and flushed as its epoch ends, so an interrupted fit keeps the
    rows of every completed epoch; a row is written whole or not at all (a full disk
    leaves no half row), and a new file replaces an old one only once its header is written.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    append : bool, default False
        Add rows to an existing file (e.g. when resuming from a checkpoint) instead of
        starting it anew. An existing file must then have the same header, else
        ``ValueError`` before the first epoch, and the file is left as it was.
    separator : str, default ","
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False, separator: str = ","):
        if not isinstance(separator, str) or len(separator) != 1 or separator in "\r\n\"":
            raise ValueError(f"separator must be one character other than a quote or line break, got {separator!r}")
        self.path, self.append, self.separator = os.fspath(path), bool(append), separator
        self._columns: list[str] = []

    def on_train_begin(self) -> None:
        self._columns = ["epoch", *self.history.params["metrics"], "lr"]
        header = self.separator.join(self._columns) + "\n"
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"CSVLogger: the folder {folder!r} does not exist")
        if self.append and os.path.isfile(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, encoding="utf-8", newline="") as f:
                first = f.readline()
            if first != header:
                raise ValueError(f"CSVLogger: {self.path!r} has the header {first.rstrip()!r}, this fit writes "
                                 f"{header.rstrip()!r}: append to a file with the same columns, or append=False")
            return
        write_atomically(self.path, lambda f: f.write(header.encode("utf-8")))  # a failure keeps the old file

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        optimizer = self.model.optimizer
        values = {"epoch": epoch + 1, **logs, "lr": optimizer.lr if optimizer is not None else float("nan")}
        row = self.separator.join(repr(float(values[c])) if c != "epoch" else str(values[c])
                                  for c in self._columns)
        append_whole(self.path, (row + "\n").encode("utf-8"))  # a failed write leaves no half row
        return None


class ReduceLROnPlateau(Callback):
    """Multiply the optimizer's learning rate by ``factor`` when a metric has stopped
    improving: the classic step-down schedule, as Keras's callback of that name.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A metric of the history; needs validation data when it starts with ``val_``.
    factor : float, default 0.1
        The new rate is ``lr * factor``, with 0 < factor < 1.
    patience : int, default 3
        Reduce after this many epochs in a row without improvement.
    min_delta : float, default 0
        An improvement must beat the best by more than this.
    min_lr : float, default 0
        Never go below this rate.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto": higher for accuracies.
    verbose : bool, default False
        Print a line when the rate changes.

    Attributes
    ----------
    changes : list of (int, float)
        ``(epoch, new lr)`` for each reduction; the new rate applies from the next epoch.
    """

    _best: _Monitor
    monitor: str
    factor: float
    min_lr: float
    patience: int
    verbose: bool

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 3,
                 min_delta: float = 0.0, min_lr: float = 0.0, mode: str = "auto", verbose: bool = False):
        if not 0 < real(factor, "factor") < 1:
            raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
        if not real(min_lr, "min_lr") >= 0:
            raise ValueError(f"min_lr must be a number >= 0, got {min_lr!r}")
        self._best = _Monitor(monitor, mode, min_delta)
        self.monitor, self.factor, self.min_lr = monitor, float(factor), float(min_lr)
        self.patience, self.verbose = positive_int(patience, "patience"), bool(verbose)
        self.changes: list[tuple[int, float]] = []

    def on_train_begin(self) -> None:
        self._best.check(self.history, "ReduceLROnPlateau")
        self._wait, self.changes, self._message = 0, [], ""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        if self._best.improved(epoch, logs):
            self._wait = 0
            return None
        self._wait += 1
        optimizer = self.model.optimizer
        if self._wait < self.patience or optimizer is None or optimizer.lr <= self.min_lr:
            return None
        optimizer.lr = max(optimizer.lr * self.factor, self.min_lr)  # read by the core at its next call
        self._wait = 0
        self.changes.append((epoch, optimizer.lr))
        if self.verbose:  # printed after the epoch's own line, which the progress callback prints last
            self._message = (f"Epoch {epoch + 1}: {self.monitor} has not improved on {self._best.describe_best()} "
                             f"for {self.patience} epochs; learning rate now {optimizer.lr:g}")
        return None

    def on_epoch_begin(self, epoch: int) -> None:
        self._print_message()

    def on_train_end(self) -> None:
        self._print_message()

    def _print_message(self) -> None:
        if self._message:
            print(self._message, flush=True)
            self._message = ""


class Progress(Callback):
    """The fit's report: a progress bar and one line per epoch.

    fit adds one when ``verbose`` > 0; pass your own in ``callbacks`` to tune it.

    Parameters
    ----------
    verbose : {1, 2}, default 1
        1: a progress bar on stderr, then one summary line per epoch. The bar is
        drawn only on a terminal or in a Jupyter notebook (logs and pipes get the
        summary lines only); it redraws one line, as wide as the terminal, with the
        ETA and the running loss (and accuracy), after each C++ call of the epoch
        (a few times a second, never per batch). With ``tqdm`` installed it is
        tqdm's (``tqdm.auto``: a widget in notebooks that have ipywidgets), else a
        plain one. 2: no bar; the tutorial's lines (the minibatch's loss and
        accuracy every ``log_every`` batches) and the summary.
    log_every : int, default 100
        Batches between two lines at ``verbose=2``.
    file : file-like, optional
        Where the lines go; default ``sys.stdout`` (the bar always goes to stderr).
    """

    def __init__(self, verbose: int = 1, log_every: int = 100, file: Any = None):
        if verbose not in (1, 2):
            raise ValueError(f"verbose must be 1 or 2, got {verbose!r}")
        self.verbose, self.log_every, self.file = verbose, positive_int(log_every, "log_every"), file
        self._bar: Bar | None = None

    def _print(self, text: str) -> None:
        out = self.file or sys.stdout
        print(text, file=out, flush=True)

    def on_train_begin(self) -> None:
        p = self.history.params
        self._epochs, self._samples = p["epochs"], p["samples"]
        self._n_batches = batches_per_epoch(self._samples, p["batch_size"])
        self._accuracy = "accuracy" in p["metrics"]
        self._draw = self.verbose == 1 and (sys.stderr.isatty() or in_notebook())

    def on_epoch_begin(self, epoch: int) -> None:
        self._start, self._loss_sum, self._correct, self._rows = time.perf_counter(), 0.0, 0.0, 0
        if self._draw:
            self._bar = make_bar(f"Epoch {epoch + 1}/{self._epochs}", self._samples)

    def on_batches_end(self, epoch: int, batches_done: int, logs: BatchLogs) -> None:
        rows = int(logs.size.sum())
        self._loss_sum += float(logs.loss @ logs.size)
        self._correct += float(logs.correct.sum())
        self._rows += rows
        if self.verbose == 2:
            first = batches_done - len(logs)
            for i in np.flatnonzero((np.arange(first, batches_done) + 1) % self.log_every == 0):
                self._print(f"Epoch {epoch + 1}/{self._epochs}  batch {first + i + 1}/{self._n_batches}  "
                            f"minibatch loss {logs.loss[i]:.4f}  accuracy {logs.correct[i] / logs.size[i]:.4f}")
        if self._bar is not None:
            metrics = f"loss {self._loss_sum / self._rows:.4f}"
            if self._accuracy:
                metrics += f" - accuracy {self._correct / self._rows:.4f}"
            self._bar.update(rows, metrics)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self._close_bar()
        metrics = " - ".join(f"{k} {v:.3g}" if k == "lr" else f"{k} {v:.4f}" for k, v in logs.items() if k != "time")
        self._print(f"Epoch {epoch + 1}/{self._epochs} - {logs['time']:.2f}s - "
                    f"{si_prefixed(self._samples / max(logs['time'], 1e-9))} samples/s - {metrics}")

    def on_train_end(self) -> None:
        self._close_bar()
        if self.history.stop_reason:
            self._print(f"Training stopped: {self.history.stop_reason}")
