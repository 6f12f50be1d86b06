"""The progress bar: it fits the terminal, shows ETA and running metrics, draws in notebooks,
and logs and pipes get the summary lines only."""

import io
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pydfn
from pydfn import training


class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((600, 20), dtype=np.float32), rng.integers(0, 5, 600)


@pytest.fixture
def one_batch_per_call(monkeypatch):
    monkeypatch.setattr(training, "FIRST_CHUNK", 1)
    monkeypatch.setattr(training, "CHUNK_SECONDS", 0.0)  # then one batch per call: 6 calls an epoch


def redraws(text):
    return [part.replace("\x1b[K", "") for part in text.split("\r") if part.replace("\x1b[K", "")]


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_the_plain_bar_fits_the_terminal_and_shows_eta_and_metrics(columns, data, capsys, monkeypatch,
                                                                   one_batch_per_call):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # no tqdm: the plain bar
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: os.terminal_size((columns, 24)))
    monkeypatch.setattr(sys, "stderr", err := _FakeTerminal())
    pydfn.MLP([20, 8, 5]).fit(*data, pydfn.Adam(), epochs=2, batch_size=100, verbose=1)
    drawn = redraws(err.getvalue())
    assert len(drawn) == 12 and "\n" not in err.getvalue()  # one redraw per C++ call, on one line
    assert all(len(line) <= columns - 1 for line in drawn)
    assert drawn[0].startswith("Epoch 1/2 ") and drawn[-1].startswith("Epoch 2/2 ")
    assert ("[" in drawn[0]) == (columns >= 80)  # too narrow for a bar of 10: the text only
    assert all("loss " in line for line in drawn)  # narrow: the counts, then the ETA, make room first
    if columns >= 80:
        assert re.search(r"ETA \d+s - loss \d\.\d{4}", drawn[3])
        assert re.search(r"100/600 - ETA \d+s - loss \d\.\d{4} - accuracy \d\.\d{4}$", drawn[0])
    assert err.getvalue().endswith("\r\x1b[K")  # cleared: the summary line takes its place
    assert [line[:10] for line in capsys.readouterr().out.splitlines()] == ["Epoch 1/2 ", "Epoch 2/2 "]


def test_the_tqdm_bar_shows_eta_and_metrics_and_is_cleared(data, capsys, monkeypatch, one_batch_per_call):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys, "stderr", err := _FakeTerminal())
    pydfn.MLP([20, 8, 5]).fit(*data, pydfn.Adam(), epochs=1, batch_size=100, verbose=1)
    drawn = redraws(err.getvalue())
    assert any(re.search(r"Epoch 1/1 +\d+%\|.*\| [\d.]+k?/600 \[ETA \d", line) for line in drawn), drawn
    assert any(re.search(r"/s, loss \d\.\d{4} - accuracy \d\.\d{4}\]$", line) for line in drawn), drawn
    assert drawn[-1].strip() == ""  # leave=False: the bar is erased
    assert capsys.readouterr().out.startswith("Epoch 1/1 - ")


def test_no_bar_when_stderr_is_not_a_terminal(data, capsys):
    pydfn.MLP([20, 8, 5]).fit(*data, pydfn.Adam(), epochs=2, batch_size=100, verbose=1)
    out, err = capsys.readouterr()
    assert err == "" and [line[:10] for line in out.splitlines()] == ["Epoch 1/2 ", "Epoch 2/2 "]


NOTEBOOK_CELL = """
import numpy as np, pydfn
rng = np.random.default_rng(0)
x, y = rng.random((6000, 784), dtype=np.float32), rng.integers(0, 10, 6000)
pydfn.MLP([784, 64, 10]).fit(x, y, pydfn.Adam(), epochs=2, batch_size=32, verbose=1)
"""


def test_fit_shows_progress_in_a_notebook(tmp_path):
    nbformat = pytest.importorskip("nbformat")  # in the test extra, so CI runs this
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CELL)])
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own deprecation notice
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the kernel machinery's own notices are not pydfn's
        nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[0].outputs
    err = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    out = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert re.search(r"Epoch 1/2 .*ETA .*loss \d\.\d{4} - accuracy \d\.\d{4}", err), outputs
    assert [line[:10] for line in out.splitlines()] == ["Epoch 1/2 ", "Epoch 2/2 "]
