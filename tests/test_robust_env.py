"""Garbage in the environment pydfn reads — OMP_* (and GNU OpenMP's own), PYDFN_MAX_ISA,
PYDFN_MPI_TIMEOUT, COLUMNS, an unusable cache folder — gives a clear message or the documented
default, never a crash. Each in a fresh interpreter, as a user's script starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import pydfn
from pydfn import progress

from _subprocess import run_python

TESTS = os.path.dirname(os.path.abspath(__file__))

TRAIN = """
import hashlib, json, warnings
warnings.simplefilter("ignore")
import numpy as np, pydfn
rng = np.random.default_rng(0)
x, y = rng.random((300, 20), dtype=np.float32), rng.integers(0, 3, 300)
model = pydfn.MLP([20, 32, 3], seed=0)
model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=16, verbose=0)
w = np.concatenate([a.ravel() for a in model.get_weights()])
print(json.dumps({"sha": hashlib.sha256(w.tobytes()).hexdigest(), "threads": pydfn.get_num_threads()}))
"""


def test_garbage_in_every_openmp_variable_trains_as_without_it():
    garbage = {name: "garbage" for name in ("OMP_PROC_BIND", "OMP_PLACES", "OMP_WAIT_POLICY", "OMP_DYNAMIC",
                                            "OMP_SCHEDULE", "OMP_MAX_ACTIVE_LEVELS", "OMP_THREAD_LIMIT",
                                            "OMP_DISPLAY_ENV", "OMP_STACKSIZE", "GOMP_SPINCOUNT",
                                            "GOMP_CPU_AFFINITY", "OMP_NUM_THREADS")}
    clean = json.loads(run_python(TRAIN, timeout=120))
    assert json.loads(run_python(TRAIN, timeout=120, **garbage))["sha"] == clean["sha"]


@pytest.mark.parametrize("name, shown", [("OMP_NUM_THREADS", "OMP_NUM_THREADS='\\xff4' is not a positive integer"),
                                         ("PYDFN_MAX_ISA", "PYDFN_MAX_ISA='avx\\xe9' is not one of generic")])
def test_bytes_that_are_not_text_are_shown_escaped_not_a_crash_at_import(name, shown):
    # The warning's message held the raw bytes: Python could not decode it, and `import pydfn` failed.
    if name == "OMP_NUM_THREADS" and not pydfn._core.has_openmp():
        pytest.skip("a build without OpenMP reads no OMP_* variable")
    value = os.fsdecode(b"\xff4" if name == "OMP_NUM_THREADS" else b"avx\xe9")  # passed to the child as bytes
    out = run_python("import warnings\nwith warnings.catch_warnings(record=True) as seen:\n"
                     "    warnings.simplefilter('always')\n    import pydfn\n"
                     "print('\\n'.join(str(w.message) for w in seen))", timeout=60, **{name: value})
    assert shown in out


def test_omp_thread_limit_caps_the_thread_count_pydfn_reports():
    # OpenMP starts no more than OMP_THREAD_LIMIT threads: pydfn said 2 and ran 1.
    out = run_python("""
import json, pydfn
pydfn.set_num_threads(2)
testing = pydfn._core.testing
testing.set_barrier_accounting(True)
testing.barriers(10)
print(json.dumps({"threads": pydfn.get_num_threads(), "waits": testing.barrier_waits()[0]}))
""", timeout=60, OMP_THREAD_LIMIT="1")
    assert json.loads(out) == {"threads": 1, "waits": 0}


MPI_TIMEOUT = """
import json, os, sys, types
sys.modules["mpi4py"] = types.SimpleNamespace(MPI=None)  # timeout_seconds reads only the environment
from pydfn import distributed
said = {}
for value in ["", "2.5", "abc", "0", "nan", "inf"]:
    os.environ["PYDFN_MPI_TIMEOUT"] = value
    try:
        said[value] = distributed.timeout_seconds()
    except ValueError as exc:
        said[value] = str(exc)
print(json.dumps(said))
"""


def test_pydfn_mpi_timeout_is_a_number_of_seconds_or_a_clear_error():
    # inf passed, and the deadline's threading.Timer died of it (OverflowError in its thread).
    said = json.loads(run_python(MPI_TIMEOUT, timeout=60))
    limit = "PYDFN_MPI_TIMEOUT must be > 0 and at most 9.22337e+09 seconds, got"
    assert said == {"": 300.0, "2.5": 2.5, "abc": "PYDFN_MPI_TIMEOUT must be a number of seconds, got 'abc'",
                    "0": f"{limit} '0'", "nan": f"{limit} 'nan'", "inf": f"{limit} 'inf'"}


def test_a_huge_columns_draws_a_bar_of_a_terminals_width(monkeypatch, capsys):
    # COLUMNS=1000000000 made each update of the plain bar build and write a 1 GB line.
    monkeypatch.setenv("COLUMNS", "1000000000")
    bar = progress._PlainBar("Epoch 1/1", 100)
    bar.update(10, "loss 1.0")
    line = capsys.readouterr().err
    assert "Epoch 1/1 [" in line and len(line) < 1100


CACHE = """
import json, os, resource, signal, sys
from pathlib import Path
tests, home, cache_home, limit = sys.argv[1:]
sys.path.insert(0, tests)
import pytest
from conftest import FakeFashion
from pydfn import datasets
home = Path(home)
data = FakeFashion(pytest.MonkeyPatch()).write(home / "data")
os.environ["XDG_CACHE_HOME"] = str(home / cache_home)
if limit:  # a full disk: a write past the limit fails with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
(x, _), _ = datasets.load_fashion_mnist(data)
try:
    datasets.download_fashion_mnist(mirrors=[])
    download = "downloaded"
except OSError as exc:
    download = str(exc)
print(json.dumps({"rows": len(x), "download": download,
                  "cache": sorted(str(p.relative_to(home)) for p in home.rglob("*") if "data" not in p.parts)}))
"""


@pytest.mark.parametrize("cache_home, limit", [("file/in/the/way", ""), ("cache", "10")])
def test_an_unusable_cache_folder_only_costs_the_cache(cache_home, limit):
    # The verification cache under a file (or on a full disk) is skipped: the data still loads; a
    # full disk left a .verified.*.json temporary behind. A download there says where it failed.
    home = tempfile.mkdtemp()  # not pytest's tmp_path: the child holds the limit on file sizes
    try:
        open(os.path.join(home, "file"), "w").close()
        out = subprocess.run([sys.executable, "-c", CACHE, TESTS, home, cache_home, limit], capture_output=True,
                             text=True, timeout=120, cwd=tempfile.gettempdir())
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
    finally:
        shutil.rmtree(home)
    assert report["rows"] == 6
    if cache_home == "cache":
        assert report["cache"] == ["cache", "cache/pydfn", "cache/pydfn/fashion-mnist", "file"]  # no temporary
    else:
        assert report["cache"] == ["file"]
        assert report["download"] == f"[Errno 20] Not a directory: '{home}/file/in/the/way/pydfn/fashion-mnist'"
