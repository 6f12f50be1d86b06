"""Data-parallel training over MPI: every test runs ``mpiexec -n N`` in a subprocess with a timeout."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import pydfn

from _subprocess import run_python

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
needs_mpi = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                               reason="needs mpi4py and mpiexec: pip install 'pydfn[mpi]'")
TIMEOUT = 120  # seconds for a whole mpiexec run: a hang fails the test instead of stalling the suite

# The data and models of the scripts below: the same on every rank.
SETUP = """
import os, signal, sys, threading, time
import numpy as np
import pydfn
from pydfn import distributed
rank = distributed.rank()
rng = np.random.default_rng(0)
x = rng.random((257, 20), dtype=np.float32)
y = rng.integers(0, 5, 257)
out = sys.argv[1]
def report(text):  # a file per rank: mpiexec may interleave the ranks' stdout
    with open(f"{out}/r-{rank}.txt", "w") as f:
        f.write(text)
"""

# 257 rows: batches of 63 split 31/32 and end with 5 rows (2/3); batches of 64 end with
# one row, which only rank 1 of 2 gets. Each rank starts from its own seed: the
# broadcast of rank 0's weights must undo that.
AUGMENT = pydfn.Augment(1, True, image_shape=(4, 5))  # CONSISTENCY's, when $AUGMENT is set
CONSISTENCY = SETUP + """
augment = pydfn.Augment(1, True, image_shape=(4, 5)) if os.environ.get("AUGMENT") else None
for batch in (63, 64):
    model = pydfn.MLP([20, 16, 5], seed=rank)
    hist = model.fit(x, y, pydfn.Adam(lr=0.01), epochs=2, batch_size=batch, seed=3, verbose=0,
                     validation_split=0.2, distributed=True, augment=augment)
    np.save(f"{out}/w{batch}-{rank}.npy", model.engine.get_params())
    with open(f"{out}/h{batch}-{rank}.json", "w") as f:
        json.dump({k: v for k, v in hist.history.items() if k != "time"}, f)
"""


def run_mpi(script: str, ranks: int, tmp_path, env: dict | None = None, timeout: float = TIMEOUT):
    """Run ``script`` (given the output folder as argv[1]) on ``ranks`` ranks; returns (result, seconds)."""
    path = tmp_path / "script.py"
    path.write_text("import json\n" + script)
    start = time.monotonic()
    result = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, str(path), str(tmp_path)],
                            capture_output=True, text=True, timeout=timeout, cwd=tempfile.gettempdir(),
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    return result, time.monotonic() - start


def reports(tmp_path, ranks: int = 2) -> list[str]:
    """What each rank's script passed to report()."""
    return [(tmp_path / f"r-{r}.txt").read_text() for r in range(ranks)]


def single_process(batch: int, augment: pydfn.Augment | None = None) -> tuple[np.ndarray, list[float]]:
    """What CONSISTENCY trains, in this process with train_step: weights and per-epoch losses."""
    rng = np.random.default_rng(0)
    x = rng.random((257, 20), dtype=np.float32)
    y = rng.integers(0, 5, 257)
    x, y = x[:205], y[:205]  # validation_split=0.2 holds out the last rows
    model, opt = pydfn.MLP([20, 16, 5], seed=0), pydfn.Adam(lr=0.01)
    model.engine.reseed(3)
    losses = []
    for _ in range(2):
        order = model.engine.epoch_order(len(x), True)
        xs, ys = x[order], y[order]
        if augment:  # the epoch's transforms come next from the same generator
            xs = pydfn.datasets.augment(xs, shift=augment.shift, flip=augment.flip, seed=model.engine.rng,
                                        image_shape=augment.image_shape)
        total = 0.0
        for start in range(0, len(x), batch):
            xb, yb = xs[start:start + batch], ys[start:start + batch]
            total += model.train_step(xb, yb, opt) * len(yb)
        losses.append(total / len(x))
    return model.engine.get_params(), losses


@needs_mpi
@pytest.mark.parametrize("batch", [63, 64])
def test_two_ranks_agree_bitwise_and_match_one_process(tmp_path, batch):
    result, _ = run_mpi(CONSISTENCY, 2, tmp_path)
    assert result.returncode == 0, result.stderr
    w0, w1 = np.load(tmp_path / f"w{batch}-0.npy"), np.load(tmp_path / f"w{batch}-1.npy")
    np.testing.assert_array_equal(w0, w1)  # bitwise, not close
    h0, h1 = (json.loads((tmp_path / f"h{batch}-{r}.json").read_text()) for r in (0, 1))
    assert h0 == h1
    # The batch's gradient is summed per share, then across ranks: a different order
    # than one process's, so equal to rounding, not bitwise.
    expected, losses = single_process(batch)
    assert not np.array_equal(w0, pydfn.MLP([20, 16, 5], seed=0).engine.get_params())  # it trained
    np.testing.assert_allclose(w0, expected, rtol=0, atol=2e-5)
    np.testing.assert_allclose(h0["loss"], losses, rtol=1e-5)


@needs_mpi
def test_one_rank_is_bitwise_train_step(tmp_path):
    result, _ = run_mpi(CONSISTENCY, 1, tmp_path)
    assert result.returncode == 0, result.stderr
    for batch in (63, 64):
        expected, losses = single_process(batch)
        np.testing.assert_array_equal(np.load(tmp_path / f"w{batch}-0.npy"), expected)
        # The loss is summed per row by a forward pass, not from the step's mean: rounding apart.
        np.testing.assert_allclose(json.loads((tmp_path / f"h{batch}-0.json").read_text())["loss"], losses,
                                   rtol=1e-6)


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_augment_transforms_each_row_as_one_process_does(tmp_path, ranks):
    result, _ = run_mpi(CONSISTENCY, ranks, tmp_path, env={"AUGMENT": "1"})
    assert result.returncode == 0, result.stderr
    for batch in (63, 64):
        weights = [np.load(tmp_path / f"w{batch}-{r}.npy") for r in range(ranks)]
        expected, _ = single_process(batch, AUGMENT)
        assert not np.array_equal(expected, single_process(batch)[0])  # the augmentation changed the run
        if ranks == 1:
            np.testing.assert_array_equal(weights[0], expected)
        else:  # as without augmentation: bitwise alike across ranks, equal to rounding to one process
            np.testing.assert_array_equal(weights[0], weights[1])
            np.testing.assert_allclose(weights[0], expected, rtol=0, atol=2e-5)


# A long fit that one rank leaves in the middle; PYDFN_MPI_TIMEOUT bounds the others' wait.
FAILURE = SETUP + """
how = os.environ["HOW"]
def hook(epoch, logs):  # runs on rank 0 only
    if how == "raise" and epoch == 1:
        raise RuntimeError("boom in a callback")
if rank == 1 and how in ("kill", "stop"):
    sig = signal.SIGKILL if how == "kill" else signal.SIGSTOP
    threading.Timer(1.0, os.kill, (os.getpid(), sig)).start()
pydfn.MLP([20, 16, 5]).fit(x, y, pydfn.Adam(), epochs=100000, batch_size=8, verbose=0, callbacks=[hook],
                           distributed=True)
print("finished", flush=True)
"""


@needs_mpi
@pytest.mark.parametrize("how, message", [
    ("raise", r"(?s)RuntimeError: boom in a callback.*rank 0/2: RuntimeError: boom in a callback; aborting all ranks"),
    ("stop", r"rank 0/2: no answer from the other ranks for 3 s during the [a-z ]+: a rank has died or hangs"),
    # mpiexec itself sees the dead rank and ends the others (else the timeout would).
    ("kill", r"Killed|signal 9|BAD TERMINATION|no answer from the other ranks"),
])
def test_a_failed_rank_stops_all_within_bounded_time(tmp_path, how, message):
    result, seconds = run_mpi(FAILURE, 2, tmp_path, env={"HOW": how, "PYDFN_MPI_TIMEOUT": "3"}, timeout=60)
    assert result.returncode != 0
    assert "finished" not in result.stdout
    assert re.search(message, result.stdout + result.stderr), result.stdout + result.stderr
    assert seconds < 60  # the timeout of run_mpi would have raised; this documents the bound


DIFFERENT_DATA = SETUP + """
try:
    pydfn.MLP([20, 16, 5]).fit(x[:200 + rank], y[:200 + rank], pydfn.Adam(), epochs=1, verbose=0,
                               distributed=True)
except ValueError as exc:
    report(str(exc))
"""


@needs_mpi
def test_different_data_on_the_ranks_is_a_clear_error_on_every_rank(tmp_path):
    result, _ = run_mpi(DIFFERENT_DATA, 2, tmp_path)
    assert result.returncode == 0, result.stderr
    for text in reports(tmp_path):
        assert text.startswith("distributed training needs the same data, model and fit settings on every rank; "
                               "the ranks differ in: training data shape, training features x, training targets y"), text


# Issue 19 item 5: a full checksum of everything that must match (the sampled one missed 75% of the rows),
# the validation data (never checked), the architecture and settings (ended in "Message truncated").
MISMATCH = SETUP + """
what = os.environ["WHAT"]
xv, yv = x[200:].copy(), y[200:].copy()
args = dict(epochs=1, batch_size=64, verbose=0, distributed=True)
sizes = [20, 16, 5]
if rank == 1:
    if what == "rows":  # 3 of 4 rows differ, between the rows a 1-in-257 sample would look at
        x[np.arange(len(x)) % 4 != 0] += 1
    elif what == "labels":
        y[-1] = (y[-1] + 1) % 5
    elif what == "validation":
        xv[7, 3] += 1e-3
    elif what == "architecture":
        sizes = [20, 17, 5]
    elif what == "options":
        args["epochs"] = 2
try:
    pydfn.MLP(sizes, seed=rank).fit(x, y, pydfn.Adam(), validation_data=(xv, yv), **args)
    report("trained")
except ValueError as exc:
    report(str(exc))
"""


@needs_mpi
@pytest.mark.parametrize("what, named", [
    ("rows", "training features x"), ("labels", "training targets y"), ("validation", "validation features"),
    ("architecture", "layer sizes and options"), ("options", "optimizer and fit settings"), ("nothing", None),
])
def test_any_difference_between_the_ranks_is_named_on_every_rank(tmp_path, what, named):
    result, seconds = run_mpi(MISMATCH, 2, tmp_path, env={"WHAT": what, "PYDFN_MPI_TIMEOUT": "20"})
    assert result.returncode == 0, result.stderr
    for text in reports(tmp_path):
        if named is None:
            assert text == "trained"
        else:
            assert text.startswith("distributed training needs the same data, model and fit settings"), text
            assert text.endswith(f"the ranks differ in: {named} (load the data and build the model the same way "
                                 "everywhere)"), text
    assert seconds < 20  # no watchdog wait: the mismatch is found before any collective can mismatch


LATE_RANK = SETUP + """
if rank == 1:
    time.sleep(60)  # never reaches fit in time
pydfn.MLP([20, 16, 5]).fit(x, y, pydfn.Adam(), epochs=1, verbose=0, distributed=True)
print("finished", flush=True)
"""


@needs_mpi
def test_a_rank_that_never_reaches_fit_aborts_the_others_after_the_timeout(tmp_path):
    result, seconds = run_mpi(LATE_RANK, 2, tmp_path, env={"PYDFN_MPI_TIMEOUT": "3"}, timeout=60)
    assert result.returncode != 0 and "finished" not in result.stdout
    # rank 0's broadcast may return before rank 1 receives it (an eager send): then the next collective waits
    assert re.search(r"rank 0/2: no answer from the other ranks for 3 s during the (start of fit|check that every "
                     r"rank holds the same data)",
                     result.stdout + result.stderr), result.stdout + result.stderr
    assert seconds < 30


DIVERGING = SETUP + """
x[5] = 3e38  # finite, but its activations overflow: the loss of the share holding it is NaN
model = pydfn.MLP([20, 16, 5])
try:
    model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=64, shuffle=False, verbose=0, distributed=True)
except FloatingPointError as exc:
    report(f"{exc} | {model.history.stop_reason}")
np.save(f"{out}/w-{rank}.npy", model.engine.get_params())
"""


@needs_mpi
def test_a_diverged_share_stops_every_rank_together_without_an_update(tmp_path):
    result, _ = run_mpi(DIVERGING, 2, tmp_path)
    assert result.returncode == 0, result.stderr
    for text in reports(tmp_path):  # row 5 is in rank 0's share of batch 1; rank 1 learns of it from the sum
        assert text.startswith("the loss stopped being finite at batch 1 of 5"), text
        assert text.endswith("| the loss diverged in epoch 1, after batch 0 of 5"), text
    np.testing.assert_array_equal(np.load(tmp_path / "w-0.npy"), pydfn.MLP([20, 16, 5]).engine.get_params())
    np.testing.assert_array_equal(np.load(tmp_path / "w-1.npy"), pydfn.MLP([20, 16, 5]).engine.get_params())


def test_without_mpi4py_the_error_names_the_extra():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import numpy as np, pydfn\n"
            "x = np.zeros((4, 3), np.float32); y = np.zeros(4, int)\n"
            "try:\n"
            "    pydfn.MLP([3, 2]).fit(x, y, pydfn.Adam(), batch_size=2, verbose=0, distributed=True)\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    assert "distributed training needs mpi4py and an MPI library: pip install 'pydfn[mpi]'" in \
        run_python(code, timeout=60)


def test_distributed_must_be_a_bool():
    x, y = np.zeros((4, 3), np.float32), np.zeros(4, int)
    with pytest.raises(TypeError, match="distributed must be True or False, got str"):
        pydfn.MLP([3, 2]).fit(x, y, pydfn.Adam(), batch_size=2, verbose=0, distributed="yes")


@needs_mpi
@pytest.mark.slow
@pytest.mark.skipif(not (pydfn.datasets.SYSTEM_DIR.is_dir() or os.environ.get("PYDFN_DATA")),
                    reason="needs the real Fashion-MNIST (apt-get install dataset-fashion-mnist)")
def test_cli_trains_on_two_ranks_and_only_rank_0_reports(tmp_path):
    pydfn_command = os.path.join(os.path.dirname(sys.executable), "pydfn")
    result = subprocess.run([MPIEXEC, "-n", "2", pydfn_command, "train", "--distributed", "--epochs", "1",
                             "--hidden", "32", "--out", str(tmp_path / "m.npz")],
                            capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path,
                            env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    assert result.returncode == 0, result.stderr
    threads = max(1, (os.cpu_count() or 1) // 2)  # the cores shared out between the 2 ranks
    assert f"{threads} thread{'s' if threads != 1 else ''} per rank - 2 MPI ranks" in result.stdout
    assert result.stdout.count("Test: loss") == 1  # rank 1 trained too, silently
    accuracy = float(re.search(r"Test: loss [\d.]+ - accuracy ([\d.]+)", result.stdout).group(1))
    assert accuracy > 0.8
    assert pydfn.load(tmp_path / "m.npz").layer_sizes == [784, 32, 10]


BAD_CALLBACK = SETUP + """
from pydfn.callbacks import ModelCheckpoint
try:  # the callbacks run on rank 0 only; their check must fail rank 1 as well
    pydfn.MLP([20, 16, 5]).fit(x, y, pydfn.Adam(), epochs=1, verbose=0, distributed=True,
                               callbacks=[ModelCheckpoint(f"{out}/missing/m.npz")])
except FileNotFoundError as exc:
    report(str(exc))
"""


@needs_mpi
def test_a_bad_callback_setting_fails_every_rank_at_once(tmp_path):
    result, _ = run_mpi(BAD_CALLBACK, 2, tmp_path, env={"PYDFN_MPI_TIMEOUT": "30"})
    assert result.returncode == 0, result.stderr
    for text in reports(tmp_path):
        assert text.startswith("ModelCheckpoint: the folder"), text


EARLY_STOP = SETUP + """
from pydfn.callbacks import EarlyStopping
model = pydfn.MLP([20, 16, 5])
stopper = EarlyStopping(monitor="val_accuracy", patience=1, mode="min")  # stops when it rises
hist = model.fit(x, y, pydfn.Adam(lr=0.01), epochs=10, verbose=0, validation_split=0.2, distributed=True,
                 callbacks=[stopper])
np.save(f"{out}/w-{rank}.npy", model.engine.get_params())
report(f"{len(hist)} epochs; {hist.stop_reason}")
"""


@needs_mpi
def test_rank_0s_early_stopping_stops_every_rank_with_its_restored_weights(tmp_path):
    result, _ = run_mpi(EARLY_STOP, 2, tmp_path)
    assert result.returncode == 0, result.stderr
    texts = reports(tmp_path)
    assert texts[0] == texts[1]
    assert "restored the weights of epoch" in texts[0]
    np.testing.assert_array_equal(np.load(tmp_path / "w-0.npy"), np.load(tmp_path / "w-1.npy"))


SCHEDULE = SETUP + """
from pydfn.callbacks import ReduceLROnPlateau
model = pydfn.MLP([20, 16, 5], seed=2)
opt = pydfn.Adam(lr=0.01)
schedule = ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=10.0)  # halves the rate after each epoch
model.fit(x, y, opt, epochs=3, verbose=0, distributed=True, callbacks=[schedule])
report(repr(opt.lr))
"""


@needs_mpi
def test_rank_0s_learning_rate_schedule_reaches_every_rank(tmp_path):
    # The callbacks run on rank 0 only: the other ranks must step with the rate it set.
    result, _ = run_mpi(SCHEDULE, 2, tmp_path)
    assert result.returncode == 0, result.stderr
    assert reports(tmp_path) == [repr(0.0025)] * 2


LR_SCHEDULE = SETUP + """
schedule = pydfn.schedules.CosineDecay(0.02, 8, warmup_steps=2, final_lr=1e-4)  # 2 epochs of 4 batches
model = pydfn.MLP([20, 16, 5], seed=rank)
model.fit(x, y, pydfn.Adam(lr=0.01), epochs=2, batch_size=64, seed=3, verbose=0, validation_split=0.2,
          distributed=True, lr_schedule=schedule)
np.save(f"{out}/w-{rank}.npy", model.engine.get_params())
report(repr(model.optimizer.lr))
"""


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_an_lr_schedule_sets_every_ranks_rate_per_batch(tmp_path, ranks):
    result, _ = run_mpi(LR_SCHEDULE, ranks, tmp_path)
    assert result.returncode == 0, result.stderr
    schedule = pydfn.schedules.CosineDecay(0.02, 8, warmup_steps=2, final_lr=1e-4)
    assert reports(tmp_path, ranks) == [repr(schedule(7))] * ranks
    # The reference: train_step on the same batches, the rate set in Python before each.
    rng = np.random.default_rng(0)
    x = rng.random((257, 20), dtype=np.float32)[:205]
    y = rng.integers(0, 5, 257)[:205]
    model, opt = pydfn.MLP([20, 16, 5], seed=0), pydfn.Adam(lr=0.01)
    model.engine.reseed(3)
    for _ in range(2):
        order = model.engine.epoch_order(len(x), True)
        for start in range(0, len(x), 64):
            opt.lr = schedule(model.optimizer_step)
            model.train_step(x[order[start:start + 64]], y[order[start:start + 64]], opt)
    weights = [np.load(tmp_path / f"w-{r}.npy") for r in range(ranks)]
    if ranks == 1:  # one rank is bitwise train_step
        np.testing.assert_array_equal(weights[0], model.engine.get_params())
    else:  # the ranks agree bitwise; the gradient's sum order differs from one process's
        np.testing.assert_array_equal(weights[0], weights[1])
        np.testing.assert_allclose(weights[0], model.engine.get_params(), rtol=0, atol=2e-5)
