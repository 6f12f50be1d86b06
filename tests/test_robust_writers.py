"""Every writer — model.save, to_onnx, ModelCheckpoint, CSVLogger, pydfn train --out and --plots,
pydfn predict --output, pydfn export — when the write fails (a folder in the way, a read-only
file or folder, a full disk, no file descriptor left) keeps the file that was there byte for
byte, leaves no temporary, and says which file and why: ``cannot write PATH: why`` in an
OSError, or in the one line of a command's exit 2. A path that is no regular file (a pipe)
is written into, not replaced; a link stays a link; a long legal name is saved.

The failures run in one fresh interpreter (resource limits, and an unprivileged user: as root
the child drops to nobody once everything is imported, since root writes read-only files).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest

import pydfn
from pydfn.callbacks import CSVLogger

from _subprocess import run_python

pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

CHILD = r"""
import contextlib, errno, io, json, os, resource, shutil, signal, stat, sys, tempfile
import numpy as np
import pydfn
from pydfn import cli
from pydfn.callbacks import CSVLogger, ModelCheckpoint

home = tempfile.mkdtemp()  # not pytest's tmp_path: nobody could not enter it
os.chdir(home)
rng = np.random.default_rng(0)
x, y = rng.random((100, 30), dtype=np.float32), np.arange(100) % 2
np.savez("data.npz", x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
np.save("x.npy", x)
model = pydfn.MLP([30, 16, 2], seed=0)
model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=8, verbose=0)
model.save("model.npz")


def fit(callback):
    model.fit(x, y, model.optimizer, epochs=20, batch_size=8, verbose=0, callbacks=[callback])


def command(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(list(argv))
    return {"code": code, "err": err.getvalue()}


TRAIN = ("train", "--data-file", "data.npz", "--epochs", "1", "--batch-size", "8", "--verbose", "0")
WRITERS = {  # name: the file it writes (in the folder out), how
    "save": ("out/model.npz", model.save),
    "to_onnx": ("out/model.onnx", model.to_onnx),
    "ModelCheckpoint": ("out/ckpt.npz", lambda p: fit(ModelCheckpoint(p))),
    "CSVLogger": ("out/log.csv", lambda p: fit(CSVLogger(p))),
    "train --out": ("out/trained.npz", lambda p: command(*TRAIN, "--hidden", "16", "--out", p)),
    "train --plots": ("out/training_curves.png",  # after the model (small: no hidden layer) is saved
                      lambda p: command(*TRAIN, "--hidden", "", "--out", "plotted.npz", "--plots", "out")),
    "predict --output": ("out/p.csv", lambda p: command("predict", "model.npz", "--input", "x.npy", "--output", p)),
    "export": ("out/exported.onnx", lambda p: command("export", "model.npz", p)),
}
API = ["save", "to_onnx", "ModelCheckpoint", "CSVLogger"]
OLD = b"the user's file"


def fresh_out(make_target):
    shutil.rmtree("out", ignore_errors=True)
    os.mkdir("out")
    for target, _ in WRITERS.values():
        make_target(target)


def old_file(target):
    with open(target, "wb") as f:
        f.write(OLD)


def attempt(name, limit=contextlib.nullcontext):
    target, write = WRITERS[name]
    try:
        with limit(name):
            result = write(target) or {"code": None}
    except Exception as exc:
        result = {"error": type(exc).__name__, "errno": getattr(exc, "errno", None), "message": str(exc)}
    result["target"] = target
    result["kept"] = open(target, "rb").read() == OLD if os.path.isfile(target) else os.path.isdir(target)
    result["temporaries"] = [n for folder in ("out", ".") for n in os.listdir(folder) if ".tmp-" in n]
    if name == "CSVLogger" and os.path.isfile(target):
        with open(target, "rb") as f:
            result["log"] = f.read().decode()
    return result


@contextlib.contextmanager
def small_disk(name):  # a write past the size limit fails with EFBIG, as a full disk with ENOSPC
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16000 if name == "train --plots" else 500, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@contextlib.contextmanager
def no_descriptors(name):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so write() fails with EFBIG instead of killing the process
report = {}
fresh_out(lambda target: None)
report["warm up"] = {name: attempt(name) for name in WRITERS}  # also imports what each needs lazily
fresh_out(os.mkdir)
report["a folder in the way"] = {name: attempt(name) for name in WRITERS}
fresh_out(old_file)
report["a full disk"] = {name: attempt(name, small_disk) for name in WRITERS}
fresh_out(old_file)
report["no file descriptor left"] = {name: attempt(name, no_descriptors) for name in API}

if os.geteuid() == 0:
    for folder, _, files in os.walk(home):
        for path in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chown(path, 65534, 65534)
    os.setgid(65534)
    os.setuid(65534)
fresh_out(old_file)
for target, _ in WRITERS.values():
    os.chmod(target, 0o444)
report["a read-only file"] = {name: attempt(name) for name in WRITERS}
fresh_out(old_file)
os.chmod("out", 0o555)
report["a read-only folder"] = {name: attempt(name) for name in WRITERS}
os.chmod("out", 0o755)
shutil.rmtree(home)
print(json.dumps(report))
"""

CAUSES = {  # the errno and the words of each failure
    "a folder in the way": (errno.EISDIR, "it is a folder"),
    "a full disk": (errno.EFBIG, "File too large"),
    "no file descriptor left": (errno.EMFILE, "Too many open files"),
    "a read-only file": (errno.EACCES, "the file is read-only"),
    "a read-only folder": (errno.EACCES, "the folder out is read-only"),
}


@pytest.fixture(scope="module")
def report():
    return json.loads(run_python(CHILD, timeout=300))


def test_every_writer_writes_when_nothing_is_in_the_way(report):
    for name, result in report["warm up"].items():
        assert "error" not in result and result.get("code") in (None, 0), (name, result)
        assert result["temporaries"] == [], name


@pytest.mark.parametrize("failure", list(CAUSES))
def test_a_failed_write_keeps_the_file_names_it_and_says_why(report, failure):
    code, why = CAUSES[failure]
    for name, result in report[failure].items():
        said = f"cannot write {result['target']}: {why}"
        if name.startswith(("train", "predict", "export")):  # the command: exit 2, one line
            assert result["code"] == 2 and result["err"].count("\n") == 1 and said in result["err"], (name, result)
            assert "Traceback" not in result["err"]
        else:
            assert result["errno"] == code and said in result["message"], (name, result)
        assert result["temporaries"] == [], (name, result)
        if not (name == "CSVLogger" and failure == "a full disk"):  # that one began a new log: below
            assert result["kept"], (name, result)


def test_a_full_disk_leaves_whole_rows_in_the_csv_log(report):
    log = report["a full disk"]["CSVLogger"]["log"]
    rows = list(csv.reader(io.StringIO(log)))
    assert rows[0] == ["epoch", "loss", "accuracy", "time", "lr"] and 1 < len(rows) < 21  # some rows, not all 20
    assert log.endswith("\n") and {len(row) for row in rows} == {5}
    assert [int(row[0]) for row in rows[1:]] == list(range(1, len(rows)))


def test_a_pipe_is_written_into_not_replaced(tmp_path):
    # Renaming over it would replace it with a file: as root, `model.save("/dev/null")` did so to /dev/null.
    model = pydfn.MLP([3, 4, 2], seed=0)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    model.save(pipe)
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and os.listdir(tmp_path) == ["pipe"]
    (tmp_path / "copy.npz").write_bytes(received[0])
    copy = pydfn.load(tmp_path / "copy.npz")
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), model.get_weights()))


def test_a_save_through_a_link_replaces_the_file_it_names_and_keeps_the_link(tmp_path):
    # The rename replaced the link itself; as root, writing to /dev/stdout redirected to a file
    # replaced the system's /dev/stdout link with that file (/dev is written into, not replaced).
    (tmp_path / "run").mkdir()
    pydfn.MLP([3, 4, 2], seed=0).save(tmp_path / "run" / "model.npz")
    os.symlink(os.path.join("run", "model.npz"), tmp_path / "latest.npz")
    new = pydfn.MLP([3, 4, 2], seed=1)
    new.save(tmp_path / "latest.npz")
    assert os.readlink(tmp_path / "latest.npz") == os.path.join("run", "model.npz")
    saved = pydfn.load(tmp_path / "run" / "model.npz")
    assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), new.get_weights()))
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "run"] and os.listdir(tmp_path / "run") == ["model.npz"]


def test_a_csv_log_goes_to_stdout_through_a_pipe():
    # A pipe cannot seek: the row's append, which cuts a regular file back on failure, failed there.
    out = run_python("""
import numpy as np, pydfn
from pydfn.callbacks import CSVLogger
x, y = np.random.default_rng(0).random((16, 3), dtype=np.float32), np.arange(16) % 2
pydfn.MLP([3, 2]).fit(x, y, pydfn.Adam(), epochs=2, batch_size=8, verbose=0, callbacks=[CSVLogger("/dev/stdout")])
""", timeout=60)
    assert [row[0] for row in csv.reader(io.StringIO(out))] == ["epoch", "1", "2"]


def test_a_csv_log_goes_to_stdout_redirected_to_a_file(tmp_path):
    # /dev/stdout is a link to /proc/self/fd/1: it is written into, never replaced (as root, the
    # rename replaced the system's link with a file), even when stdout is a regular file.
    script = ("import numpy as np, pydfn\nfrom pydfn.callbacks import CSVLogger\n"
              "x, y = np.random.default_rng(0).random((16, 3), dtype=np.float32), np.arange(16) % 2\n"
              "pydfn.MLP([3, 2]).fit(x, y, pydfn.Adam(), epochs=2, batch_size=8, verbose=0, "
              "callbacks=[CSVLogger('/dev/stdout')])\n")
    with open(tmp_path / "out.csv", "wb") as out:
        subprocess.run([sys.executable, "-c", script], stdout=out, check=True, timeout=60, cwd=tmp_path)
    assert [row[0] for row in csv.reader(io.StringIO((tmp_path / "out.csv").read_text()))] == ["epoch", "1", "2"]
    assert os.path.islink("/dev/stdout") and os.listdir(tmp_path) == ["out.csv"]


@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK), reason="no writable /dev/shm here")
def test_a_file_under_dev_shm_is_replaced_atomically():
    # /dev/shm is a tmpfs for regular files: a save there was written in place, as into a device,
    # so an interrupted one destroyed the previous file.
    fd, path = tempfile.mkstemp(dir="/dev/shm", suffix=".npz")
    os.close(fd)
    try:
        pydfn.MLP([3, 4, 2], seed=0).save(path)
        before = os.stat(path).st_ino
        pydfn.MLP([3, 4, 2], seed=1).save(path)
        assert os.stat(path).st_ino != before  # a new file renamed over it
        assert pydfn.load(path).get_weights()[0][0, 0] == pydfn.MLP([3, 4, 2], seed=1).get_weights()[0][0, 0]
    finally:
        os.unlink(path)


def test_a_long_legal_name_is_saved(tmp_path):
    # The temporary's name (the target's plus ".tmp-PID-XXXXXXXX") was longer than a name may be.
    name = "m" * 250 + ".npz"  # 254 bytes: legal
    model = pydfn.MLP([3, 4, 2], seed=0)
    model.save(tmp_path / name)
    model.to_onnx(tmp_path / (name[:-4] + ".onx"))
    assert sorted(os.listdir(tmp_path)) == sorted([name, name[:-4] + ".onx"])
    assert pydfn.load(tmp_path / name).layer_sizes == [3, 4, 2]


def test_a_csv_log_is_written_whole_under_a_long_name_too(tmp_path):
    x, y = np.random.default_rng(0).random((16, 3), dtype=np.float32), np.arange(16) % 2
    path = tmp_path / ("log" * 80 + ".csv")
    pydfn.MLP([3, 2]).fit(x, y, pydfn.Adam(), epochs=2, batch_size=8, verbose=0, callbacks=[CSVLogger(path)])
    assert len(path.read_text().splitlines()) == 3 and os.listdir(tmp_path) == [path.name]


def test_an_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model = pydfn.MLP([3, 4, 2], seed=0)
    model.save(path)
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pydfn.MLP([3, 4, 2], seed=1).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]
