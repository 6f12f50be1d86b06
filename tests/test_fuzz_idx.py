"""Hostile IDX files and hostile arguments to the Cython data path (bounds checks off
there): an exact array or a ValueError naming the file, never a read or write out of
bounds. Derandomized hypothesis in a subprocess with a small budget; a longer run is
``PYDFN_FUZZ_EXAMPLES=20000 .ci/fuzz``; under ``.ci/sanitize`` ASan checks every access.
Inputs that ever failed are kept in ``tests/fuzz_corpus/idx`` and replayed here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _robust import replay_corpus, run_fuzz_script

CORPUS = Path(__file__).parent / "fuzz_corpus" / "idx"
SEED = os.environ.get("PYDFN_FUZZ_SEED", "")  # empty: derandomized, the same examples every run
EXAMPLES = int(os.environ.get("PYDFN_FUZZ_EXAMPLES", "300"))

FUZZ = r"""
import gzip, hashlib, os, sys, tempfile
import numpy as np
from hypothesis import HealthCheck, given, seed, settings, strategies as st
from pydfn import _data, datasets

tmp = tempfile.mkdtemp()
SAVE = os.environ.get("PYDFN_FUZZ_SAVE")
SETTINGS = settings(max_examples=int(sys.argv[1]), derandomize=not sys.argv[2], deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

def idx_bytes(array):
    return bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()

def keep(raw):
    if SAVE:
        with open(os.path.join(SAVE, hashlib.sha256(raw).hexdigest()[:16] + ".idx"), "wb") as f:
            f.write(raw)

valid = st.builds(lambda shape, seed: np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8),
                  st.lists(st.integers(0, 5), min_size=1, max_size=4).map(tuple), st.integers(0, 9))

@st.composite
def hostile(draw):
    raw = bytearray(idx_bytes(draw(valid)))
    if draw(st.booleans()):  # the header's fields, where the interesting bugs live
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(st.integers(0, min(len(raw), 24) - 1))] = draw(st.sampled_from([0, 1, 3, 8, 0x7F, 0x80, 0xFF]))
    if draw(st.booleans()):
        raw = raw[:draw(st.integers(0, len(raw)))]
    if draw(st.booleans()):
        raw += draw(st.binary(max_size=16))
    raw = bytes(raw)
    return gzip.compress(raw) if draw(st.booleans()) else raw

@SETTINGS
@given(st.one_of(hostile(), st.binary(max_size=64)))
def fuzz_read_idx(raw):
    path = os.path.join(tmp, "fuzz-idx3-ubyte")
    with open(path, "wb") as f:
        f.write(raw)
    try:
        array = datasets.read_idx(path)
    except ValueError as exc:
        assert str(exc).startswith(path + ": "), exc
        return
    except BaseException:
        keep(raw)
        raise
    content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    assert idx_bytes(array) == content  # accepted only when exact

@SETTINGS
@given(st.integers(0, 4), st.integers(0, 6), st.integers(0, 6),
       st.lists(st.integers(-2**31, 2**31 - 1), min_size=0, max_size=5),
       st.lists(st.integers(-2**31, 2**31 - 1), min_size=0, max_size=5),
       st.lists(st.integers(0, 255), min_size=0, max_size=5), st.sampled_from([np.uint8, np.float32]))
def fuzz_shift_flip(n, h, w, dy, dx, flip, dtype):
    src = np.arange(n * h * w).astype(dtype).reshape(n, h, w)
    dst = np.full_like(src, 7)
    dy, dx = np.array(dy, np.int32), np.array(dx, np.int32)
    flip = np.array(flip, np.uint8)
    try:
        _data.shift_flip(src, dst, dy, dx, flip)
    except ValueError as exc:
        assert "need" in str(exc) and not (len(dy) == len(dx) == len(flip) == n)
        return
    for i in range(n):  # the definition, in Python ints (no int32 wrap-around)
        img = src[i, :, ::-1] if flip[i] else src[i]
        want, sy, sx = np.zeros_like(img), int(dy[i]), int(dx[i])
        for r in range(h):
            for c in range(w):
                if 0 <= r - sy < h and 0 <= c - sx < w:
                    want[r, c] = img[r - sy, c - sx]
        assert np.array_equal(dst[i], want)

for fuzz in (fuzz_read_idx, fuzz_shift_flip):
    (seed(int(sys.argv[2]))(fuzz) if sys.argv[2] else fuzz)()
print("ok")
"""


def test_fuzzed_idx_files_and_shifts_give_exact_results_or_value_error():
    run_fuzz_script(FUZZ, EXAMPLES, SEED, CORPUS)


CORPUS_FILES = sorted(CORPUS.glob("*.idx"))


@pytest.mark.skipif(not CORPUS_FILES, reason="empty regression corpus")
def test_the_regression_corpus_raises_value_error():
    replay_corpus("from pydfn import datasets", "datasets.read_idx({path!r})", CORPUS_FILES)
