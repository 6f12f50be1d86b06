"""The engine: the one owner of a model's core network, its shuffling generator and its
bound optimizer with that optimizer's state.

Everything that trains or stores a model goes through this small interface — the
facade (:class:`pydfn.MLP`), the one-process and the MPI fit loops, checkpoints,
pickling and the scikit-learn estimators; no other module touches the core network.

The optimizer rule (:meth:`Engine.bind`): the optimizer's state (moments, momentum
buffers, step count) belongs to the model. Binding the optimizer already bound, or an
equal one (same kind, same hyper-parameters), keeps that state, so a loaded model
continues bit for bit with ``pydfn.Adam()`` as with ``model.optimizer``. Binding an
optimizer of another kind or other hyper-parameters starts from fresh state. To
change a hyper-parameter and keep the state (a learning-rate schedule), change the
bound optimizer's attribute (``model.optimizer.lr = ...``): it is sent to the core
before the next step. :meth:`Engine.reset_optimizer` clears the state explicitly.

Threads: each core call is atomic (the core network holds a lock: predictions share it,
calls that write hold it alone, with the GIL released while waiting). A sequence of calls
that must see one state runs under :meth:`Engine.shared` (reads, e.g. an evaluation and
its penalty) or :meth:`Engine.exclusive` (a train step's gradients and update), so two
threads' train steps never interleave and no reader sees half of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import weakref
from typing import Any, Iterator, Sequence

import numpy as np

from . import _core
from .optim import Optimizer


def batches_per_epoch(n_samples: int, batch_size: int) -> int:
    """Minibatches in an epoch of ``n_samples`` rows: the last one holds the remainder."""
    return -(-n_samples // batch_size)


class BatchLogs:
    """Statistics of consecutive minibatches as named fields, one entry per batch (Keras'
    batch logs, as arrays): what callbacks' ``on_batches_end`` receives.

    Parameters
    ----------
    table : ndarray of float64 of shape (n_batches, 3)
        Per batch: cost, correct predictions, rows (the fields below are views of it).
    """

    def __init__(self, table: np.ndarray):
        self.table = table

    @classmethod
    def of(cls, loss: np.ndarray, correct: np.ndarray, size: np.ndarray) -> BatchLogs:
        return cls(np.stack([loss.astype(np.float64), correct, size], axis=1).astype(np.float64))

    @property
    def loss(self) -> np.ndarray:
        """Each minibatch's cost (mean loss + penalty), computed before its update."""
        return self.table[:, 0]

    @property
    def correct(self) -> np.ndarray:
        """Correct predictions in each minibatch (0 for regression)."""
        return self.table[:, 1]

    @property
    def size(self) -> np.ndarray:
        """Rows in each minibatch."""
        return self.table[:, 2]

    @property
    def accuracy(self) -> np.ndarray:
        """Each minibatch's accuracy (0 for regression)."""
        accuracy: np.ndarray = self.correct / self.size
        return accuracy

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"BatchLogs({len(self)} batches)"

    @staticmethod
    def concatenate(parts: Sequence[BatchLogs]) -> BatchLogs:
        """The logs of consecutive calls as one."""
        return BatchLogs(np.concatenate([p.table for p in parts]))

    def mean_loss(self) -> float:
        """Mean over the rows of the cost of the minibatch each belonged to."""
        return float(self.loss @ self.size) / float(self.size.sum())

    def mean_accuracy(self) -> float:
        """Correct predictions over rows."""
        return float(self.correct.sum()) / float(self.size.sum())


@dataclasses.dataclass
class EngineState:
    """What an engine holds besides its architecture: all a fit needs to continue exactly.

    Attributes
    ----------
    params : ndarray of float32 of shape (num_params,)
        The flat parameters ``[W1 (in, out), b1, W2, b2, ...]``.
    optimizer : Optimizer or None
        The bound optimizer (None: never trained).
    optimizer_state : dict of str to ndarray of float32 of shape (num_params,)
        Its state buffers by name (``optimizer.state_names``).
    step : int
        Optimizer steps taken (also what the dropout masks are drawn from).
    rng_state : dict
        The shuffling generator's ``bit_generator.state``.
    """

    params: np.ndarray
    optimizer: Optimizer | None
    optimizer_state: dict[str, np.ndarray]
    step: int
    rng_state: dict[str, Any]


class SharedLock:
    """Many readers at once, or one writer; the writer may re-enter (and read)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None  # the writing thread's ident
        self._depth = 0  # the writer's nesting

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # a writer reading its own state
                self._depth += 1
            else:
                while self._writer is not None:
                    self._cond.wait()
                self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                if self._writer == me:
                    self._depth -= 1
                else:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                while self._writer is not None or self._readers:
                    self._cond.wait()
                self._writer = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._writer = None
                    self._cond.notify_all()


# Every live engine, for the fork handler below.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _release_after_fork() -> None:
    """In a forked child only the forking thread exists: a model another thread was training
    at the fork would stay "in use by another thread" forever. Free them all (their contents
    are whatever that thread had written; the child can load or retrain them)."""
    for engine in list(_ENGINES):
        engine.release_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_release_after_fork)


class Engine:
    """A model's core network, shuffling generator and bound optimizer.

    Arrays passed in are already checked by the caller (float32 C-contiguous
    features, int32 labels or float32 targets of the right shapes); the core
    checks them again and raises ValueError rather than reading out of bounds.

    Parameters
    ----------
    sizes : list of int
        Checked layer sizes.
    activation, loss, precision : str
    label_smoothing : float
        softmax_xent's, checked by the caller.
    dropout : sequence of float
        One rate per hidden layer.
    seed : int >= 0
        Seeds the shuffling generator and the dropout masks.
    """

    def __init__(self, sizes: list[int], *, activation: str, loss: str, precision: str, dropout: Sequence[float],
                 seed: int, label_smoothing: float = 0.0):
        self._net = _core.Network(sizes, activation, loss, precision)
        self._net.label_smoothing = label_smoothing
        self._net.set_dropout(list(dropout), seed % 2**64)
        self._rng = np.random.default_rng(seed)
        self._optimizer: Optimizer | None = None
        self._bound: dict[str, Any] | None = None  # the hyper-parameters the core holds
        self._lock = SharedLock()
        _ENGINES.add(self)

    # --- threads ------------------------------------------------------------------------

    def shared(self) -> contextlib.AbstractContextManager[None]:
        """Hold the model against writers (other readers run) for a sequence of reads."""
        return self._lock.shared()

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the model alone for a sequence of calls (re-entrant in one thread)."""
        return self._lock.exclusive()

    # --- the network ------------------------------------------------------------------

    @property
    def sizes(self) -> list[int]:
        return list(self._net.sizes)

    @property
    def num_params(self) -> int:
        return self._net.num_params

    def set_penalty(self, l1: float, l2: float) -> None:
        self._net.set_penalty(l1, l2)

    def penalty(self) -> float:
        """l1·Σ|W| + l2·ΣW² of the current weights."""
        return self._net.penalty()

    def get_params(self) -> np.ndarray:
        """A copy of the flat parameters."""
        return self._net.get_params()

    def set_params(self, params: np.ndarray) -> None:
        self._net.set_params(params)

    # --- the optimizer ------------------------------------------------------------------

    @property
    def optimizer(self) -> Optimizer | None:
        """The bound optimizer, or None before any training."""
        return self._optimizer

    @property
    def step(self) -> int:
        """Optimizer steps taken, read without copying any state."""
        return self._net.optimizer_step

    def bind(self, optimizer: Optimizer) -> None:
        """Train with ``optimizer`` from now on; see the module's rule for its state."""
        if not isinstance(optimizer, Optimizer):
            raise TypeError("optimizer must be a pydfn optimizer (Adam, AdamW, SGD, RMSProp), "
                            f"got {type(optimizer).__name__}")
        with self.exclusive():
            if optimizer is not self._optimizer:
                if self._optimizer is None or optimizer != self._optimizer:
                    self._net.reset_optimizer()
                self._optimizer = optimizer
            self._sync()

    def release_after_fork(self) -> None:
        """Mark the model free in a forked child (see ``_release_after_fork``): a thread that
        held either lock at the fork does not exist there."""
        self._lock = SharedLock()
        self._net.release_after_fork()

    def reset_optimizer(self) -> None:
        """Clear the optimizer's state (zero buffers, step 0); the optimizer stays bound."""
        self._net.reset_optimizer()

    def _sync(self) -> None:
        """Send the bound optimizer's hyper-parameters to the core if they changed (a schedule)."""
        if self._optimizer is None:
            raise RuntimeError("no optimizer is bound: bind one first")
        config = self._optimizer.get_config()
        if config != self._bound:
            self._optimizer.validate()  # e.g. nesterov set True after momentum was set to 0
            self._net.bind_optimizer(self._optimizer.core_config())
            self._bound = config

    # --- shuffling ------------------------------------------------------------------------

    @property
    def rng(self) -> np.random.Generator:
        """The generator of the epochs' orders (and of augmentation's draws)."""
        return self._rng

    def reseed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def epoch_order(self, n: int, shuffle: bool, seed: int | None = None) -> np.ndarray:
        """The order of an epoch's rows, int64 array of shape (n,): a permutation drawn from
        the engine's generator (or from ``seed``'s), or ``0..n-1`` without ``shuffle``."""
        if not shuffle:
            return np.arange(n, dtype=np.int64)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        return rng.permutation(n).astype(np.int64)

    # --- training ---------------------------------------------------------------------------

    def train(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, batch_size: int,
              sample_weight: np.ndarray | None = None, lr: np.ndarray | None = None) -> BatchLogs:
        """Train on rows ``rows`` of ``(x, y)`` in minibatches, in one C++ call; with
        ``sample_weight`` (float32 (n,), checked), each batch's loss is Σ w_i·l_i / B.
        With ``lr`` (one rate per batch; the core checks it is finite, >= 0 and of that
        length: ValueError), batch i steps with rate ``lr[i]`` (rounded to float32) in
        place of the optimizer's, whose ``lr`` is then the last batch's.

        Calls on consecutive slices of one order, cut at multiples of ``batch_size``,
        give exactly the result of one call on the whole order.

        Raises
        ------
        FloatingPointError
            When a minibatch's cost is not finite, or an update made the parameters or
            the optimizer state non-finite (an overflow): the call is then undone, the
            model and its optimizer state are exactly as before it.
        """
        rates = None if lr is None else np.ascontiguousarray(lr, dtype=np.float32)
        with self.exclusive():
            self._sync()
            applied, undone, loss, correct = self._net.train_batches(x, y, rows, batch_size, sample_weight, rates)
            step = self._net.optimizer_step
            if lr is not None and len(lr) and not undone:  # every batch was applied
                assert self._optimizer is not None  # _sync checked it
                self._optimizer.lr = float(lr[-1])
        if undone:
            what = (f"the loss became {loss[applied]} at batch {applied} of {len(loss)}" if applied < len(loss)
                    else "an update made the weights or the optimizer state overflow to infinity or NaN")
            # The step names the state kept: fit trains in several calls, so "this call" is not the user's.
            raise FloatingPointError(f"{what}: training stopped; the model and its optimizer state are as before "
                                     f"this call, after optimizer step {step} (try a smaller learning rate or "
                                     "scale the inputs)")
        size = np.minimum(batch_size, len(rows) - batch_size * np.arange(len(loss)))
        return BatchLogs.of(loss, correct, size)

    def compute_gradients(self, x: np.ndarray, y: np.ndarray) -> float:
        """The cost on the batch ``(x, y)``; its gradients go into the core's buffer."""
        return float(self._net.compute_gradients(x, y))

    def get_grads(self) -> np.ndarray:
        """A copy of the gradients of the last :meth:`compute_gradients`."""
        return self._net.get_grads()

    def grads_view(self) -> np.ndarray:
        """The gradient buffer itself (no copy), for reducing it in place across MPI ranks."""
        return self._net.grads_view()

    def apply_update(self) -> None:
        """One step of the bound optimizer from the gradient buffer.

        Raises
        ------
        FloatingPointError
            When the step would make the parameters or the optimizer state non-finite
            (nothing is changed then).
        """
        with self.exclusive():
            self._sync()
            applied = self._net.apply_update()
        if not applied:
            raise FloatingPointError("the update would make the weights or the optimizer state overflow to "
                                     "infinity or NaN: update skipped, weights unchanged (try a smaller "
                                     "learning rate or scale the inputs)")

    # --- inference ------------------------------------------------------------------------

    def predict_logits(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        return self._net.predict_logits(x, batch_size)

    def predict_proba(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        return self._net.predict_proba(x, batch_size)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, int]:
        """(sum of the rows' losses without penalty, correct predictions) on ``(x, y)``."""
        loss_sum, correct = self._net.evaluate(x, y, batch_size)
        return float(loss_sum), int(correct)

    # --- state out, state in -----------------------------------------------------------------

    def state(self) -> EngineState:
        """Copies of everything a fit needs to continue (see :class:`EngineState`)."""
        with self.shared():
            return EngineState(params=self._net.get_params(), optimizer=self._optimizer,
                               optimizer_state=dict(self._net.get_optimizer_state()) if self._optimizer else {},
                               step=self.step, rng_state=dict(self._rng.bit_generator.state))

    def set_state(self, state: EngineState) -> None:
        """Take ``state`` over, binding its optimizer with its state as is (ValueError if the
        buffers are not the optimizer's, or are not shaped like the parameters)."""
        with self.exclusive():
            self._net.set_params(state.params)
            self._optimizer, self._bound = state.optimizer, None
            if state.optimizer is None:
                self._net.bind_optimizer(None)
            else:
                self._sync()
            self._net.set_optimizer_state(state.optimizer_state, state.step)
            self._rng.bit_generator.state = state.rng_state
