"""IDX parsing (pydfn._data.parse_idx through datasets.read_idx): round trips and every bad file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from conftest import idx_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from pydfn import _data
from pydfn.datasets import read_idx


@pytest.mark.parametrize("shape", [(1,), (3,), (17,), (1, 28, 28), (3, 5, 7), (17, 2, 3, 4), (0, 28, 28)])
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip(tmp_path, shape, gz):
    array = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    content = idx_bytes(array)
    path = tmp_path / "file-idx-ubyte"
    path.write_bytes(gzip.compress(content) if gz else content)
    loaded = read_idx(path)
    assert loaded.dtype == np.uint8 and loaded.shape == shape
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable and loaded.flags.c_contiguous


def test_gzip_is_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gunzipped_named_gz = tmp_path / "labels.gz"
    gunzipped_named_gz.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(gunzipped_named_gz), array)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))

BAD_FILES = {
    "empty": (b"", "empty file"),
    "short header": (b"\x00\x00", "truncated: 2 bytes, shorter than the 4-byte IDX header"),
    "wrong magic": (b"\x1a\x2b" + GOOD[2:], "wrong magic number 0x1A2B0803"),
    "float dtype": (b"\x00\x00\x0d" + GOOD[3:], r"dtype code 0x0D \(float32\) is not supported"),
    "unknown dtype": (b"\x00\x00\x42" + GOOD[3:], r"dtype code 0x42 \(unknown\)"),
    "zero dims": (b"\x00\x00\x08\x00", "declares 0 dimensions"),
    "truncated dims": (GOOD[:9], "truncated: the header of 3 dimensions needs 16 bytes, the file has 9"),
    "wrong dims": (b"\x00\x00\x08\x02" + GOOD[4:], "byte count mismatch: 22 trailing bytes after the 2x3 = 6 data bytes"),
    "truncated data": (GOOD[:-1], "truncated: the header declares 2x3x4 = 24 data bytes, only 23 follow"),
    "trailing garbage": (GOOD + b"junk", "byte count mismatch: 4 trailing bytes"),
    "huge dims": (b"\x00\x00\x08\x02" + b"\xff" * 8 + b"x", "declares 4294967295x4294967295 = "),
    "bad gzip stream": (gzip.compress(GOOD)[:-20] + b"\x00" * 20, "bad gzip stream"),
    "truncated gzip": (gzip.compress(GOOD)[:30], "bad gzip stream: it ends before its end-of-stream marker"),
    "gzip garbage after": (gzip.compress(GOOD) + b"junk", "bad gzip stream"),
}


@pytest.mark.parametrize("raw, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_raises_value_error_naming_file_and_fault(tmp_path, raw, message):
    path = tmp_path / "broken-idx3-ubyte.gz"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=f"^{path}: .*{message}"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_every_truncation_is_an_error(tmp_path, gz):
    content = idx_bytes(np.ones((3, 5, 7), dtype=np.uint8))
    data = gzip.compress(content) if gz else content
    path = tmp_path / "cut"
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(ValueError, match=f"^{path}: "):
            read_idx(path)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.builds(lambda head, tail: b"\x00\x00\x08" + head + tail,
                                          st.binary(min_size=1, max_size=9), st.binary(max_size=40)))
def test_arbitrary_bytes_give_an_exact_array_or_value_error(raw):
    try:
        array = _data.parse_idx(raw, "fuzz")
    except ValueError as exc:
        assert str(exc).startswith("fuzz: ")
    else:  # accepted only when header and size agree exactly
        assert idx_bytes(array) == raw
