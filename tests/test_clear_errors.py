"""Issue 19 item 6: clear errors naming the file or the argument where they used to be
MemoryError, NumPy's own message, NaN results or files left behind."""

import gzip
import io
import os
import signal
import subprocess
import sys
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest

import pydfn
from pydfn import cli
from pydfn.datafile import load_data_file
from pydfn.idx import read_idx

SIZES = [6, 8, 3]


def npy_claiming(shape, dtype="<f4"):
    """The bytes of an .npy whose header claims ``shape`` but that holds 16 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(16)


def npz_with(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data if isinstance(data, bytes) else _npy(data))
    return path


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path):
    model = pydfn.MLP(SIZES, seed=0)
    model.train_step(np.ones((4, 6), np.float32), np.zeros(4, np.int32), pydfn.Adam())
    path = tmp_path / "good.npz"
    model.save(path)
    return path


@pytest.mark.parametrize("member", ["params", "optimizer.m", "history", "layer_sizes"])
def test_a_checkpoint_entry_claiming_2_to_the_40_elements_is_a_corrupt_file(saved, tmp_path, member):
    with np.load(saved) as f:
        arrays = {k: _npy(f[k]) for k in f.files}
    arrays[member] = npy_claiming((2**40,))
    bad = npz_with(tmp_path / "bad.npz", arrays)
    assert bad.stat().st_size < 20_000
    with pytest.raises(ValueError, match="claims shape .* holds 16 bytes: the file is corrupt") as info:
        pydfn.load(bad)
    assert str(bad) in str(info.value)


def test_the_cli_says_corrupt_file_and_exits_2(saved, tmp_path, capsys):
    with np.load(saved) as f:
        arrays = {k: _npy(f[k]) for k in f.files}
    arrays["params"] = npy_claiming((2**40,))
    bad = npz_with(tmp_path / "bad.npz", arrays)
    assert cli.main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "the file is corrupt" in err
    fashion = tmp_path / "fashion.npz"
    pydfn.MLP([784, 4, 10], seed=0).save(fashion)
    x = tmp_path / "x.npy"
    x.write_bytes(npy_claiming((2**20, 2**20)))
    assert cli.main(["predict", str(fashion), "--input", str(x)]) == 2
    err = capsys.readouterr().err
    assert f"{x}: not a readable .npy file" in err and "the file is corrupt" in err


def test_a_data_file_member_claiming_too_much_is_a_corrupt_file(tmp_path):
    bad = npz_with(tmp_path / "data.npz", {"x_train": npy_claiming((2**30, 1024)), "y_train": np.zeros(3, np.int32)})
    with pytest.raises(ValueError, match="x_train.*the file is corrupt") as info:
        load_data_file(bad)
    assert str(bad) in str(info.value)


def idx_bytes(dims, data=b""):
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + data


@pytest.mark.parametrize("ndim", [33, 65, 255])
@pytest.mark.parametrize("gz", [False, True])
def test_an_idx_file_with_too_many_dimensions_names_the_file(tmp_path, ndim, gz):
    raw = idx_bytes([1] * ndim, b"\x07")
    path = tmp_path / ("many.idx.gz" if gz else "many.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match=f"{path}: the IDX header declares {ndim} dimensions"):
        read_idx(path)


def test_read_idx_refuses_a_gzip_bomb_after_what_the_header_declares(tmp_path):
    path = tmp_path / "bomb.idx.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(idx_bytes([10], bytes(10)))
        for _ in range(64):
            f.write(bytes(4 << 20))  # 256 MiB of zeros after the 10 declared bytes
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=f"{path}: decompresses to more than"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


@pytest.mark.parametrize("content, match", [
    (idx_bytes([3], b"abc") + b"xy", "2 trailing bytes"),
    (b"\x01\x02\x08\x01", "wrong magic"),
    (bytes([0, 0, 8, 0]), "declares 0 dimensions"),
    (bytes([0, 0, 8, 2, 0, 0]), "truncated: the header of 2 dimensions"),
])
def test_a_gzipped_idx_file_still_gets_the_precise_error(tmp_path, content, match):
    path = tmp_path / "f.idx.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(ValueError, match=match):
        read_idx(path)
    assert np.array_equal(read_idx(_write(tmp_path / "ok.gz", gzip.compress(idx_bytes([2, 2], b"abcd")))),
                          np.frombuffer(b"abcd", np.uint8).reshape(2, 2))


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("scale", [3e38, 3.3e38])
def test_inputs_that_overflow_float32_raise_instead_of_returning_nan(scale):
    model = pydfn.MLP(SIZES, seed=0)
    x = np.full((5, 6), scale, np.float32)
    y = np.zeros(5, np.int32)
    for call in (lambda: model.evaluate(x, y), lambda: model.predict(x), lambda: model.predict_proba(x),
                 lambda: model.predict_logits(x)):
        with pytest.raises(FloatingPointError, match="overflowed float32 .* scale the inputs"):
            call()
    regression = pydfn.MLP([6, 8, 2], loss="mse", seed=0)
    with pytest.raises(FloatingPointError, match="overflowed"):
        regression.evaluate(x, np.zeros((5, 2), np.float32))
    assert np.isfinite(model.evaluate(x / np.float32(scale), y)[0])


def test_an_overflow_from_diverged_weights_names_them():
    model = pydfn.MLP(SIZES, seed=0)
    model.set_weights([w * np.float32(1e25) for w in model.get_weights()])  # as a diverged lr leaves them
    x = np.ones((4, 6), np.float32)
    message = r"\(largest \|x\| 1, largest \|weight\| [0-9.]+e\+24\).* if the weights diverged, train with a smaller"
    for call in (lambda: model.predict(x), lambda: model.predict_proba(x[0]), lambda: model.evaluate(x, [0] * 4)):
        with pytest.raises(FloatingPointError, match=message):
            call()


def test_a_loss_that_overflows_on_finite_outputs_says_so():
    regression = pydfn.MLP([6, 8, 2], loss="mse", seed=0)
    x = np.ones((4, 6), np.float32)
    with pytest.raises(FloatingPointError, match=r"the cost overflowed float32 though the outputs are finite "
                                                 r"\(mean loss inf, penalty 0\): scale the targets"):
        regression.evaluate(x, np.full((4, 2), 3e38, np.float32))


def test_masked_arrays_are_refused_wherever_data_enters():
    model = pydfn.MLP(SIZES, seed=0)
    x = np.ma.masked_array(np.ones((8, 6), np.float32), mask=np.zeros((8, 6), bool))
    x.mask[0, 0] = True
    y = np.zeros(8, np.int32)
    ym = np.ma.masked_array(y, mask=np.eye(1, 8, dtype=bool)[0])
    calls = {
        "fit x": lambda: model.fit(x, y, pydfn.Adam(), epochs=1, batch_size=4, verbose=0),
        "fit y": lambda: model.fit(x.data, ym, pydfn.Adam(), epochs=1, batch_size=4, verbose=0),
        "validation": lambda: model.fit(x.data, y, pydfn.Adam(), epochs=1, batch_size=4, verbose=0,
                                        validation_data=(x, y)),
        "train_step": lambda: model.train_step(x, y, pydfn.Adam()),
        "train_epoch": lambda: model.train_epoch(x.data, ym, pydfn.Adam(), batch_size=4),
        "predict": lambda: model.predict(x),
        "evaluate": lambda: model.evaluate(x.data, ym),
        "regression": lambda: pydfn.MLP([6, 2], loss="mse").fit(x.data, np.ma.masked_array(np.ones((8, 2))),
                                                               pydfn.Adam(), epochs=1, verbose=0),
        "one_hot": lambda: pydfn.preprocessing.one_hot(ym, 3),
        "split": lambda: pydfn.preprocessing.train_val_split(x, y),
        "metrics": lambda: pydfn.metrics.confusion_matrix(ym, y),
    }
    before = model.get_weights()
    for what, call in calls.items():
        with pytest.raises(TypeError, match="is a masked array"):
            call()
            pytest.fail(what)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_save_removes_temporaries_that_killed_saves_left(tmp_path):
    model = pydfn.MLP(SIZES, seed=0)
    target = tmp_path / "model.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = [tmp_path / f"model.npz.tmp-{dead}-0123abcd", tmp_path / f"model.npz.tmp-{dead}-deadbeef"]
    kept = [tmp_path / f"model.npz.tmp-{os.getppid()}-0123abcd",  # a live process may be saving
            tmp_path / f"other.npz.tmp-{dead}-0123abcd",         # another target's
            tmp_path / "model.npz.tmp-notes.txt"]                # not a temporary's name
    for p in stale + kept:
        p.write_bytes(b"partial")
    model.save(target)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert sorted(os.listdir(tmp_path)) == sorted([target.name] + [p.name for p in kept])
    pydfn.load(target)


def test_sigterm_during_save_leaves_nothing_after_the_next_save(tmp_path):
    # The kill leaves its temporary (no handler runs on SIGKILL either); the next save removes it.
    target = tmp_path / "model.npz"
    code = f"""
import os, signal, numpy as np, pydfn
model = pydfn.MLP([2000, 2000, 10], seed=0)
real = np.savez
def savez_then_die(f, **arrays):
    real(f, **arrays)
    os.kill(os.getpid(), signal.SIGTERM)
np.savez = savez_then_die
model.save({str(target)!r})
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          cwd=tempfile.gettempdir())  # the installed pydfn, not the source folder
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    left = [n for n in os.listdir(tmp_path) if n.startswith("model.npz.tmp-")]
    assert len(left) == 1 and not target.exists()
    pydfn.MLP(SIZES, seed=0).save(target)
    assert os.listdir(tmp_path) == ["model.npz"]
