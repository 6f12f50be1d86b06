"""Interrupted paths: a user's callback that raises mid-fit leaves the model at a completed step —
usable, saveable, trainable on — and the last ModelCheckpoint loadable; Ctrl-C while
``pydfn export`` or ``pydfn predict --output`` writes its file exits 130 with one line, leaving
the old file whole and no temporary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import pydfn
from pydfn.callbacks import Callback, ModelCheckpoint


class Steps(Callback):
    """The weights after each C++ call (one batch each, with tiny_chunks), by optimizer step."""

    def __init__(self):
        self.weights = {}

    def on_batches_end(self, epoch, batches_done, logs):
        self.weights[self.model.optimizer_step] = self.model.get_weights()


class Raises(Callback):
    """A user's callback with a bug: raises in ``hook`` of epoch 2 (after its 5th batch)."""

    def __init__(self, hook):
        self.hook = hook

    def on_batches_end(self, epoch, batches_done, logs):
        if self.hook == "on_batches_end" and (epoch, batches_done) == (1, 5):
            raise RuntimeError("a bug in the user's callback")

    def on_epoch_end(self, epoch, logs):
        if self.hook == "on_epoch_end" and epoch == 1:
            raise RuntimeError("a bug in the user's callback")


def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("hook, step, checkpoint", [("on_batches_end", 8 + 5, "ckpt-1.npz"),
                                                    ("on_epoch_end", 16, "ckpt-2.npz")])
def test_a_callback_that_raises_leaves_the_model_at_a_completed_step(tmp_path, tiny_chunks, hook, step, checkpoint):
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 6), dtype=np.float32), rng.integers(0, 3, 64)  # 8 batches an epoch
    steps = Steps()
    pydfn.MLP([6, 16, 3], seed=0).fit(x, y, pydfn.Adam(), epochs=3, batch_size=8, verbose=0, callbacks=[steps])

    model = pydfn.MLP([6, 16, 3], seed=0)
    with pytest.raises(RuntimeError, match="a bug in the user's callback"):
        model.fit(x, y, pydfn.Adam(), epochs=3, batch_size=8, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "ckpt-{epoch}.npz"), Raises(hook)])
    assert model.optimizer_step == step and same(model.get_weights(), steps.weights[step])
    assert all(np.isfinite(w).all() for w in model.get_weights())

    assert model.predict(x).shape == (64,)
    model.save(tmp_path / "after.npz")
    saved = pydfn.load(tmp_path / "after.npz")
    assert saved.optimizer_step == step and same(saved.get_weights(), model.get_weights())
    last = pydfn.load(tmp_path / checkpoint)  # the last one ModelCheckpoint wrote, whole
    assert sorted(os.listdir(tmp_path)) == sorted(["after.npz", *{"ckpt-1.npz", checkpoint}])
    assert same(last.get_weights(), steps.weights[last.optimizer_step])

    history = model.fit(x, y, model.optimizer, epochs=1, batch_size=8, verbose=0)
    assert model.optimizer_step == step + 8 and np.isfinite(history.history["loss"][0])


# Runs `pydfn ARGV...` with every atomic write stalled once its temporary is whole: it prints
# "writing" and waits there for the parent's SIGINT, however fast the machine.
STALLED_WRITE = r"""
import sys, time
from pydfn import _atomic, cli, datafile, export

real = _atomic.write_atomically


def stalled(path, write):
    def write_then_wait(f):
        write(f)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
    real(path, write_then_wait)


for module in (cli, datafile, export):
    module.write_atomically = stalled
sys.exit(cli.main(sys.argv[1:]))
"""


def interrupt_while_writing(folder, *argv):
    """Run ``pydfn argv...`` in ``folder``, SIGINT it mid-write: (exit code, stderr, temporaries then)."""
    child = subprocess.Popen([sys.executable, "-c", STALLED_WRITE, *argv], cwd=folder, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # cwd: the installed pydfn
    try:
        marker = child.stdout.readline()  # "" if the child ended without writing
        writing = [n for n in os.listdir(folder) if ".tmp-" in n]
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert marker == "writing\n", err
    return child.returncode, err, writing


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(0)
    model = pydfn.MLP([30, 16, 3], seed=0)
    model.fit(rng.random((40, 30), dtype=np.float32), np.arange(40) % 3, pydfn.Adam(), epochs=1, batch_size=8,
              verbose=0)
    model.save(tmp_path / "model.npz")
    np.save(tmp_path / "x.npy", rng.random((5000, 30), dtype=np.float32))
    return tmp_path


@pytest.mark.parametrize("argv, output", [
    (["export", "model.npz", "model.onnx"], "model.onnx"),
    (["predict", "model.npz", "--input", "x.npy", "--output", "p.csv", "--probabilities"], "p.csv"),
    (["predict", "model.npz", "--input", "x.npy", "--output", "p.npy"], "p.npy"),
])
def test_ctrl_c_while_a_command_writes_keeps_the_old_file_and_leaves_no_temporary(saved, argv, output):
    if argv[0] == "export":
        pytest.importorskip("onnx")
    (saved / output).write_bytes(b"the user's file")
    before = sorted(os.listdir(saved))
    code, err, writing = interrupt_while_writing(saved, *argv)
    assert len(writing) == 1 and writing[0].startswith(output + ".tmp-")  # SIGINT came mid-write
    assert code == 130 and err == "pydfn: interrupted; nothing saved\n"
    assert sorted(os.listdir(saved)) == before and (saved / output).read_bytes() == b"the user's file"
