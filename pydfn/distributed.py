"""Synchronous data-parallel training over MPI, as Horovod does it.

Run the same script on every rank (``mpiexec -n 4 python train.py``, or
``mpiexec -n 4 pydfn train --distributed``) and call ``model.fit(...,
distributed=True)``. Then:

- rank 0's weights, Adam state and shuffling generator are broadcast first, so
  every rank starts from the same model and draws the same epoch orders (and
  the same shifts and flips with ``augment=``);
- each global minibatch of ``batch_size`` rows (the rows a 1-process run would
  use) is split into contiguous shares, rank r taking rows
  ``[r*m//N, (r+1)*m//N)`` of a batch of m rows;
- each rank computes the gradient of its share's mean loss, scales it by its
  share of the rows, and one in-place allreduce of the flat gradient buffer per
  step sums them into the global batch's mean gradient (also when the last batch
  splits unevenly); every rank then takes the same Adam step;
- training and validation metrics are summed across ranks; only rank 0 runs the
  callbacks (progress, checkpoints, early stopping, schedules), its decision to
  stop and its optimizer's hyper-parameters (a schedule's learning rate) are
  broadcast, and at the end its weights are broadcast (EarlyStopping may have
  restored older ones);
- a rank that fails stops them all: an exception that not every rank raised
  together prints its rank and message, then calls ``MPI_Abort``; a rank that
  does not answer for ``PYDFN_MPI_TIMEOUT`` seconds (default 300) is taken for
  dead or hung, and the waiting ranks abort. A killed rank ends the job through
  ``mpiexec`` itself.

Every rank ends with bitwise identical weights. They equal a 1-process run's to
float rounding only: the batch's gradient is summed in a different order (per
share, then across ranks). With one rank the result is bitwise that of
``train_step`` on the same batches.

Costs beside the allreduce: the loop over steps is Python's (one C++ call per
step instead of one per epoch), Adam runs as its own pass (the 1-process epoch
fuses it into the backward pass), and the training accuracy takes one extra
forward pass of each share (``compute_gradients`` does not return predictions).
Give each rank ``cores / ranks per node`` threads (``pydfn train --distributed``
does): more oversubscribes the cores, and every step waits for the slowest rank.

Needs ``mpi4py`` and an MPI library: ``pip install 'pydfn[mpi]'`` brings both
(the ``mpich`` wheel ships ``mpiexec``); a system MPI works as well.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
import traceback
import zlib
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

try:
    from mpi4py import MPI
except ImportError as exc:  # the message the user sees from fit(distributed=True)
    raise ImportError("distributed training needs mpi4py and an MPI library: "
                      "pip install 'pydfn[mpi]' (mpi4py and the mpich wheel)") from exc

from ._engine import BatchLogs, Engine, batches_per_epoch

if TYPE_CHECKING:
    from .augment import EpochAugmenter
    from .callbacks import CallbackList
    from .schedules import Schedule

CHUNK_BATCHES = 32  # steps between progress updates (one small allreduce of their stats)
DEFAULT_TIMEOUT = 300.0


def timeout_seconds() -> float:
    """Seconds a rank waits for the others before taking one for dead: ``$PYDFN_MPI_TIMEOUT`` or 300."""
    text = os.environ.get("PYDFN_MPI_TIMEOUT", "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"PYDFN_MPI_TIMEOUT must be a number of seconds, got {text!r}") from None
    if not 0 < value <= threading.TIMEOUT_MAX:  # inf, or 1e300, would kill the deadline's timer thread
        raise ValueError(f"PYDFN_MPI_TIMEOUT must be > 0 and at most {threading.TIMEOUT_MAX:g} seconds, "
                         f"got {text!r}")
    return value


def rank() -> int:
    """This process's rank in ``MPI.COMM_WORLD``."""
    return MPI.COMM_WORLD.Get_rank()


def size() -> int:
    """The number of ranks in ``MPI.COMM_WORLD``."""
    return MPI.COMM_WORLD.Get_size()


def under_deadline(what: str, call: Callable[[], Any]) -> Any:
    """``call()``, a collective outside the training loop's watchdog, aborting every rank when
    it lasts longer than ``PYDFN_MPI_TIMEOUT`` (a rank that never reaches it would hang the others)."""
    comm = MPI.COMM_WORLD
    seconds = timeout_seconds()

    def abort() -> None:
        print(f"pydfn rank {comm.Get_rank()}/{comm.Get_size()}: no answer from the other ranks for "
              f"{seconds:g} s during {what}: a rank has died, hangs or does not run the same program "
              "(PYDFN_MPI_TIMEOUT sets the wait); aborting all ranks", file=sys.stderr, flush=True)
        time.sleep(0.5)  # mpiexec may tear the job down before it has forwarded the line otherwise
        comm.Abort(1)

    timer = threading.Timer(seconds, abort)
    timer.daemon = True
    timer.start()
    try:
        return call()
    finally:
        timer.cancel()


def check_same_everywhere(items: dict[str, bytes | np.ndarray]) -> None:
    """Raise ValueError on every rank, naming each item, if any rank holds other contents for it
    (a full CRC-32 of each item's bytes, and its length, compared across ranks)."""
    mine = np.array([[_nbytes(v), _crc(v)] for v in items.values()], np.int64).reshape(-1)
    low, high = mine.copy(), mine.copy()
    comm = MPI.COMM_WORLD
    def reduce() -> None:
        comm.Allreduce(MPI.IN_PLACE, low, op=MPI.MIN)
        comm.Allreduce(MPI.IN_PLACE, high, op=MPI.MAX)

    under_deadline("the check that every rank holds the same data and model", reduce)
    differ = [name for i, name in enumerate(items) if not np.array_equal(low[2 * i:2 * i + 2], high[2 * i:2 * i + 2])]
    if differ:  # seen alike by every rank, so all raise together
        raise ValueError("distributed training needs the same data, model and fit settings on every rank; the "
                         f"ranks differ in: {', '.join(differ)} (load the data and build the model the same way "
                         "everywhere)")


def _nbytes(value: bytes | np.ndarray) -> int:
    return len(value) if isinstance(value, bytes) else int(value.nbytes)


def _crc(value: bytes | np.ndarray, chunk: int = 1 << 24) -> int:
    """CRC-32 of all the bytes, in chunks (no copy of a contiguous array)."""
    flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8).data if isinstance(value, np.ndarray) \
        else memoryview(value)
    crc = 0
    for at in range(0, len(flat), chunk):
        crc = zlib.crc32(flat[at:at + chunk], crc)
    return crc


def ranks_per_node() -> int:
    """The number of ranks sharing this rank's node (its shared-memory group)."""
    node: MPI.Comm = under_deadline("the count of ranks per node",
                                    lambda: MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED))
    try:
        count: int = node.Get_size()
        return count
    finally:
        node.Free()


def as_rank_0(fn: Callable[[], None]) -> None:
    """Call ``fn`` on every rank, then raise rank 0's exception, if any, on every rank.

    For the callbacks' checks, which run on rank 0 only: a mistake there must not
    leave the other ranks waiting for rank 0 in a collective.
    """
    error: BaseException | None = None
    try:
        fn()
    except Exception as exc:  # passed on below
        error = exc
    comm = MPI.COMM_WORLD
    shared = under_deadline("the start of fit (did every rank call it?)",
                            lambda: comm.bcast(error if comm.Get_rank() == 0 else None, root=0))
    if error is not None and comm.Get_rank() == 0:
        raise error
    if shared is not None:
        raise shared


class DataParallelLoop:
    """The epoch loop of ``fit(distributed=True)``: the protocol ``training.EpochLoop`` over
    the model's engine, as the one-process loop implements it.

    Construction is collective: it checks that every rank holds the same training
    data and broadcasts rank 0's weights, optimizer state and generator.
    """

    def __init__(self, engine: Engine, x: np.ndarray, y: np.ndarray, batch_size: int,
                 callbacks: CallbackList, augmenter: EpochAugmenter | None, schedule: Schedule | None = None):
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = timeout_seconds()
        self.engine, self.x, self.y = engine, x, y
        self.batch_size, self.callbacks, self.augmenter = batch_size, callbacks, augmenter
        self.schedule = schedule  # every rank computes the same rates from the same (broadcast) step
        self.n_batches = batches_per_epoch(x.shape[0], batch_size)
        self.epoch, self.done, self.first_step = -1, 0, 0
        self._pending: tuple[str, float] | None = None  # the collective under way and since when
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="pydfn-mpi-watchdog", daemon=True)
        self._watchdog.start()
        try:
            self._check_same_data()
            self._broadcast_state()
        except BaseException:
            self._stop.set()
            raise
        self.grads = engine.grads_view()  # the network's own buffer: reduced in place
        share = -(-batch_size // self.size)  # the largest share of a batch
        self._xb = np.empty((share, x.shape[1]), np.float32)
        self._yb = np.empty((share, *y.shape[1:]), y.dtype)  # labels, or regression targets

    # --- collectives with a deadline --------------------------------------------

    def _watch(self) -> None:
        """The watchdog thread: MPI collectives have no timeout, so abort when one lasts too long."""
        while not self._stop.wait(min(1.0, self.timeout / 4)):
            pending = self._pending
            if pending and time.monotonic() - pending[1] > self.timeout:
                self._abort(f"no answer from the other ranks for {self.timeout:g} s during {pending[0]}: "
                            "a rank has died or hangs (PYDFN_MPI_TIMEOUT sets the wait)")

    def _collective(self, what: str, call: Any, *args: Any, **kwargs: Any) -> None:
        """A blocking collective (mpi4py releases the GIL in it) under the watchdog's eye."""
        self._pending = (what, time.monotonic())
        call(*args, **kwargs)
        self._pending = None

    def _allreduce(self, buffer: np.ndarray, what: str, op: Any = None) -> None:
        self._collective(what, self.comm.Allreduce, MPI.IN_PLACE, buffer, op=op or MPI.SUM)

    def _bcast(self, buffer: np.ndarray, what: str) -> None:
        self._collective(what, self.comm.Bcast, buffer, root=0)

    def _bcast_object(self, obj: Any, what: str) -> Any:
        """Rank 0's picklable ``obj`` on every rank (a length, then the bytes)."""
        data = pickle.dumps(obj) if self.rank == 0 else b""
        length = np.array([len(data)], np.int64)
        self._bcast(length, what)
        buf = np.frombuffer(data, np.uint8).copy() if self.rank == 0 else np.empty(int(length[0]), np.uint8)
        self._bcast(buf, what)
        return pickle.loads(buf.tobytes())

    def _abort(self, message: str) -> None:
        print(f"pydfn rank {self.rank}/{self.size}: {message}; aborting all ranks", file=sys.stderr, flush=True)
        time.sleep(0.5)  # mpiexec may tear the job down before it has forwarded the line otherwise
        self.comm.Abort(1)

    # --- setup ---------------------------------------------------------------------

    def _check_same_data(self) -> None:
        """Every rank must hold the same rows: their shapes and full checksums (fit checked the
        validation data and the model's description before)."""
        x, y = self.x, self.y
        check_same_everywhere({"training data shape": np.array([*x.shape, *y.shape], np.int64),
                               "training features x": x, "training targets y": y})

    def _broadcast_state(self) -> None:
        """Rank 0's weights, optimizer state and generator on every rank; each rank keeps its
        own (equal) optimizer object, bound by fit."""
        state = self.engine.state()
        self._bcast(state.params, "the weight broadcast")
        for name in sorted(state.optimizer_state):  # the same names on every rank: the same optimizer
            self._bcast(state.optimizer_state[name], "the weight broadcast")
        state.step, state.rng_state = self._bcast_object((state.step, state.rng_state), "the weight broadcast")
        self.engine.set_state(state)

    # --- the loop ----------------------------------------------------------------

    def where(self) -> str:
        """Where training stood, for messages."""
        if self.epoch < 0:
            return "before the first epoch"
        done = self.engine.step - self.first_step
        return f"in epoch {self.epoch + 1}, after batch {done} of {self.n_batches}"

    def _step(self, rows: np.ndarray, first: int, lr: float | None) -> tuple[float, float, int]:
        """One synchronous step on global batch ``rows`` (positions ``first, ...`` of the epoch's
        order), with learning rate ``lr`` (None: the optimizer's); returns this rank's
        (loss sum, correct, rows)."""
        m = len(rows)
        lo, hi = self.rank * m // self.size, (self.rank + 1) * m // self.size
        engine, grads = self.engine, self.grads
        loss_sum = correct = 0.0
        if hi > lo:
            xb, yb = self._xb[:hi - lo], self._yb[:hi - lo]
            if self.augmenter:  # every rank drew the same transforms from the broadcast generator
                xb = self.augmenter.take(rows[lo:hi], first + lo)
            else:
                np.take(self.x, rows[lo:hi], axis=0, out=xb)
            np.take(self.y, rows[lo:hi], axis=0, out=yb)
            # Accuracy needs the predictions, which compute_gradients does not return: one forward pass.
            loss_sum, correct = engine.evaluate(xb, yb, hi - lo)
            loss_sum += engine.penalty() * (hi - lo)  # the cost, as the single-process loop reports it
            loss = engine.compute_gradients(xb, yb)
            grads *= np.float32((hi - lo) / m)  # weight by rows: the sum is the global batch's mean
            if not np.isfinite(loss):
                grads[0] = np.nan  # travels through the sum: every rank sees it and stops together
        else:  # fewer rows than ranks in the last batch: this rank adds nothing
            grads[:] = 0.0
        self._allreduce(grads, "the gradient allreduce")
        if not np.isfinite(grads[0]):
            raise FloatingPointError(f"the loss stopped being finite at batch {self.done + 1} of "
                                     f"{self.n_batches}: training stopped; the weights are those after the "
                                     "last finite step")
        if lr is not None:
            assert engine.optimizer is not None  # fit bound it
            engine.optimizer.lr = lr  # sent to the core by apply_update
        engine.apply_update()
        return float(loss_sum), float(correct), hi - lo

    def _share_optimizer_settings(self) -> None:
        """Rank 0's optimizer hyper-parameters on every rank: its callbacks (a learning-rate
        schedule) may have changed them, and every rank must take the same step."""
        optimizer = self.engine.optimizer
        assert optimizer is not None  # fit bound it
        for name, value in self._bcast_object(optimizer.get_config(), "the optimizer's settings").items():
            setattr(optimizer, name, value)

    def run(self, epoch: int, shuffle: bool) -> tuple[float, float, float]:
        """Train one epoch on every rank; return its global loss, accuracy and seconds (the slowest rank's)."""
        self.epoch, self.done = epoch, 0
        self.first_step = self.engine.step
        self.callbacks.on_epoch_begin(epoch)
        self._share_optimizer_settings()
        order = self.engine.epoch_order(self.x.shape[0], shuffle)  # the same on every rank
        if self.augmenter:
            self.augmenter.new_epoch(self.engine.rng, len(order))
        B, totals, start = self.batch_size, np.zeros(2), time.perf_counter()
        while self.done < self.n_batches:
            count = min(CHUNK_BATCHES, self.n_batches - self.done)
            stats = np.zeros((count, 3))  # per batch: loss sum, correct, rows — summed across ranks
            rates = None if self.schedule is None else self.schedule.rates(
                np.arange(self.engine.step, self.engine.step + count))
            for i in range(count):
                first = (self.done + i) * B
                stats[i] = self._step(order[first:first + B], first, None if rates is None else float(rates[i]))
            self._allreduce(stats, "the metrics allreduce")
            self.done += count
            totals += stats[:, :2].sum(axis=0)
            stats[:, 0] /= stats[:, 2]  # mean loss per batch, as callbacks expect
            self.callbacks.on_batches_end(epoch, self.done, BatchLogs(stats))
        seconds = np.array([time.perf_counter() - start])
        self._allreduce(seconds, "the metrics allreduce", MPI.MAX)
        n = self.x.shape[0]
        return float(totals[0] / n), float(totals[1] / n), float(seconds[0])

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, int]:
        """(sum of the losses, correct predictions) on ``(x, y)``, each rank evaluating a share."""
        n = x.shape[0]
        lo, hi = self.rank * n // self.size, (self.rank + 1) * n // self.size
        sums = np.zeros(2)
        if hi > lo:
            sums[:] = self.engine.evaluate(x[lo:hi], y[lo:hi], batch_size)
        self._allreduce(sums, "the validation allreduce")
        return float(sums[0]), int(sums[1])

    def agree(self, reason: str | None) -> str | None:
        """Rank 0's decision to stop (its callbacks ran) on every rank."""
        decision: str | None = self._bcast_object(reason, "the stop decision")
        return decision

    # --- success or failure --------------------------------------------------------

    def __enter__(self) -> DataParallelLoop:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc is None:
                params = self.engine.get_params()
                self._bcast(params, "the final weight broadcast")  # EarlyStopping restored them on rank 0 only
                self.engine.set_params(params)
                self._share_optimizer_settings()  # and a schedule's last change
            elif not isinstance(exc, FloatingPointError):  # raised by every rank at the same step: no abort
                traceback.print_exception(kind, exc, tb, file=sys.stderr)
                self._abort(f"{kind.__name__}: {exc}")
        finally:
            self._stop.set()
