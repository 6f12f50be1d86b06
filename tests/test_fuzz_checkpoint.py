"""Hostile checkpoints: load() never crashes, never runs code, never takes memory a file
could not justify; it returns a consistent model or raises a ValueError naming the file.
The C API's loader reads each fuzzed file too: a model, or a file error naming it.

The hypothesis run is derandomized with a small budget; a longer one is
``PYDFN_FUZZ_EXAMPLES=20000 .ci/fuzz``. Inputs that ever failed are kept in
``tests/fuzz_corpus/checkpoint`` and replayed here."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pydfn
from pydfn import load

from _robust import replay_corpus, run_fuzz_script

CORPUS = Path(__file__).parent / "fuzz_corpus" / "checkpoint"
SEED = os.environ.get("PYDFN_FUZZ_SEED", "")  # empty: derandomized, the same examples every run
EXAMPLES = int(os.environ.get("PYDFN_FUZZ_EXAMPLES", "150"))

# The property, run in a subprocess so that a crash fails the test, not the run. On a
# failure the input is written to $PYDFN_FUZZ_SAVE (if set) for the regression corpus.
FUZZ = r"""
import ctypes, hashlib, io, os, sys, tempfile
import numpy as np
from hypothesis import HealthCheck, given, seed, settings, strategies as st
import pydfn

tmp = tempfile.mkdtemp()
good_path = os.path.join(tmp, "good.npz")
model = pydfn.MLP([6, 5, 3], seed=0)
rng = np.random.default_rng(0)
model.fit(rng.random((32, 6), dtype=np.float32), np.arange(32) % 3, pydfn.Adam(), epochs=1, batch_size=8, verbose=0)
model.save(good_path)
GOOD = open(good_path, "rb").read()
with np.load(good_path) as f:
    ENTRIES = {k: f[k] for k in f.files}

# The C API's loader (libpydfn.so) reads the same file: a model, or a file error naming it.
LIB = ctypes.CDLL(os.path.join(pydfn.get_library_dir(), "libpydfn.so"))
LIB.pydfn_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
LIB.pydfn_model_free.argtypes = [ctypes.c_void_p]
LIB.pydfn_last_error.restype = ctypes.c_char_p

def check_c_loader(path):
    handle = ctypes.c_void_p()
    status = LIB.pydfn_model_load(path.encode(), ctypes.byref(handle))
    if status == 0:
        LIB.pydfn_model_free(handle)
    else:
        assert status == 2 and LIB.pydfn_last_error().decode().startswith(path), (status, LIB.pydfn_last_error())

def check(raw):
    path = os.path.join(tmp, "fuzz.npz")
    with open(path, "wb") as f:
        f.write(raw)
    try:
        check_c_loader(path)
        loaded = pydfn.load(path)
    except ValueError as exc:
        assert str(exc).startswith(path), exc
        return
    except BaseException:
        save = os.environ.get("PYDFN_FUZZ_SAVE")
        if save:
            with open(os.path.join(save, hashlib.sha256(raw).hexdigest()[:16] + ".npz"), "wb") as f:
                f.write(raw)
        raise
    # accepted: a consistent model
    weights = loaded.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    assert loaded.predict(np.zeros((2, loaded.layer_sizes[0]), np.float32)).shape == (2,)

def npz(entries, compress):
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **entries)
    return buffer.getvalue()

arrays = st.one_of(
    st.sampled_from([np.array(1), np.array(-1), np.array(2**62), np.array(np.inf), np.array(np.nan),
                     np.array("x"), np.array(b"\xff"), np.array("{}"), np.array("[" * 5000),
                     np.array('{"params": {}, "history": {"loss": ["a"]}, "epoch": [], "stop_reason": null}'),
                     np.array('{"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}}'),
                     np.array([6, 5, 3]), np.array([6, 0, 3]), np.array([6, 2**31, 3]), np.array([100000, 100000, 10]),
                     np.zeros(0), np.zeros((2, 2)), np.zeros(58, np.float64), np.full(58, np.nan, np.float32),
                     np.ones(58, np.float32), np.ones(3), np.array([1e300, 0.9, 0.999, 1e-8])]),
    st.builds(lambda n, kind: np.zeros(n, kind), st.integers(0, 70), st.sampled_from(["f4", "f8", "i8", "u1", "?"])))

@settings(max_examples=int(sys.argv[1]), derandomize=not sys.argv[2], deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def fuzz(data):
    how = data.draw(st.sampled_from(["flip", "cut", "splice", "entries"]))
    if how == "entries":  # a well-formed archive with hostile contents
        entries = dict(ENTRIES)
        for key in data.draw(st.lists(st.sampled_from(sorted(ENTRIES) + ["extra"]), min_size=1, max_size=3)):
            if data.draw(st.booleans()) and key in entries:
                del entries[key]
            else:
                entries[key] = data.draw(arrays)
        raw = npz(entries, data.draw(st.booleans()))
    else:
        base = data.draw(st.sampled_from([GOOD, npz(ENTRIES, True)]))
        if how == "flip":  # a few bytes changed anywhere
            raw = bytearray(base)
            for _ in range(data.draw(st.integers(1, 8))):
                raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
            raw = bytes(raw)
        elif how == "cut":
            raw = base[:data.draw(st.integers(0, len(base)))]
        else:  # bytes inserted
            at = data.draw(st.integers(0, len(base)))
            raw = base[:at] + data.draw(st.binary(min_size=1, max_size=64)) + base[at:]
    check(raw)

if sys.argv[2]:
    fuzz = seed(int(sys.argv[2]))(fuzz)
fuzz()
print("ok")
"""


def test_fuzzed_checkpoints_load_or_raise_value_error():
    run_fuzz_script(FUZZ, EXAMPLES, SEED, CORPUS)


CORPUS_FILES = sorted(CORPUS.glob("*.npz"))


@pytest.mark.skipif(not CORPUS_FILES, reason="empty regression corpus")
def test_the_regression_corpus_raises_value_error():
    replay_corpus("import pydfn", "pydfn.load({path!r})", CORPUS_FILES)


def test_loading_never_unpickles(tmp_path):
    # A pickled object whose unpickling would create a file: np.load must refuse it
    # (allow_pickle=False) before anything runs.
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    good = tmp_path / "good.npz"
    pydfn.MLP([4, 3]).save(good)
    with np.load(good) as f:
        entries = {k: f[k] for k in f.files}
    entries["history"] = np.array([Exploit()], dtype=object)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **entries)  # numpy pickles object arrays on save
    assert b"pwned" in zipfile.ZipFile(bad).read("history.npy")
    with pytest.raises(ValueError, match="not a readable pydfn checkpoint.*allow_pickle=False"):
        load(bad)
    assert not marker.exists()
    # the same bytes as a bare pickle
    (tmp_path / "p.npz").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ValueError, match="not a readable pydfn checkpoint"):
        load(tmp_path / "p.npz")
    assert not marker.exists()


def test_a_zip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    good = tmp_path / "good.npz"
    pydfn.MLP([20, 32, 4]).save(good)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        with dst.open("junk.npy", "w", force_zip64=True) as junk:
            header = io.BytesIO()  # a true .npy header, so the member's own header check passes
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (80 << 18,)})
            junk.write(header.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(80):  # 80 MiB of zeros, about 80 kB compressed
                junk.write(chunk)
    assert bomb.stat().st_size < 1 << 20
    size = (80 << 20) + len(header.getvalue())
    with pytest.raises(ValueError, match=rf"junk.npy decompresses to {size:,} bytes, more than its layers need"):
        load(bomb)


def test_layer_sizes_too_big_for_ram_are_refused_before_allocating(tmp_path):
    good = tmp_path / "good.npz"
    pydfn.MLP([4, 3]).save(good)
    with np.load(good) as f:
        entries = {k: f[k] for k in f.files}
    entries["layer_sizes"] = np.array([100000, 100000, 10])
    bad = tmp_path / "big.npz"
    np.savez(bad, **entries)
    with pytest.raises(ValueError, match=r"not a valid pydfn checkpoint: layer_sizes \[100000, 100000, 10\] has "
                                         r"10,001,100,010 parameters.*more than this machine's"):
        load(bad)


def test_a_bare_npy_file_is_refused_without_reading_its_array(tmp_path):
    # The header claims 2**40 floats: np.load would try to allocate 4 TiB.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    path = tmp_path / "huge.npy"
    path.write_bytes(header.getvalue())  # magic and header, no data
    with pytest.raises(ValueError, match="single array, not an .npz archive"):
        load(path)
