"""Reading ``.npy`` files and ``.npz`` archives that come from files, safely: never unpickling,
and checking each array's ``.npy`` header against the bytes that can hold it before NumPy
allocates what the header claims (a 1 kB file claiming 2**40 elements is a corrupt file, not
an out-of-memory condition). Any damage is a ValueError."""

from __future__ import annotations

import contextlib
import math
import os
import struct
import tokenize
import zipfile
import zlib
from typing import IO, Iterator

import numpy as np

from ._validation import most_inflated

NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a first member, or an empty archive
# What zipfile, zlib and NumPy's header parser raise for hostile bytes besides ValueError
# (fuzzing found each kind): encrypted or exotic members, corrupt headers and streams.
_DAMAGE = (EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OverflowError,
           KeyError, IndexError, struct.error, tokenize.TokenError)


def load_npy(path: str) -> np.ndarray:
    """The array of the ``.npy`` file ``path``; ValueError if it is not one, claims more data than
    it holds, or holds Python objects."""
    with open(path, "rb") as f:
        try:
            _check_header(f, os.fstat(f.fileno()).st_size, "it")
            f.seek(0)
            array: np.ndarray = np.load(f, allow_pickle=False)
        except _DAMAGE as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return array


@contextlib.contextmanager
def open_npz(path: str) -> Iterator[np.lib.npyio.NpzFile]:
    """The ``.npz`` archive ``path``, open for the block, its members checked (:func:`_check_members`).

    Any damage, found on opening or while the block reads members, is a ValueError.
    """
    with open(path, "rb") as f:  # ours to close: np.load leaks the file it opened when the zip is bad
        start = f.read(len(NPY_MAGIC))
        if start == NPY_MAGIC:  # np.load would read the whole array, whatever its size
            raise ValueError("it holds a single array, not an .npz archive")
        if start[:4] not in _ZIP_MAGICS:  # else np.load tries it as a pickle and says so
            raise ValueError("it does not start as a zip archive does")
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as archive:
                _check_members(archive)
                yield archive
        except _DAMAGE as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}") from None


def _check_members(archive: np.lib.npyio.NpzFile) -> None:
    """Raise ValueError naming the first member that is not an ``.npy`` array NumPy reads without
    pickle, or whose header claims more data than the member can hold: its stated size, at most
    what its compressed bytes (at most the whole archive) inflate to."""
    assert archive.zip is not None and archive.zip.fp is not None  # an NpzFile open for reading
    archive_size = archive.zip.fp.seek(0, os.SEEK_END)  # zipfile seeks to each member itself
    for info in archive.zip.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name == info.filename:  # NumPy would read it as raw bytes, as many as it inflates to
            raise ValueError(f"its entry {name!r} is not a NumPy array (.npy)")
        compressed = min(info.compress_size, archive_size)
        if info.compress_type == zipfile.ZIP_STORED:
            held = min(info.file_size, compressed)
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            held = min(info.file_size, most_inflated(compressed))
        else:
            raise ValueError(f"its entry {name!r} uses zip compression method {info.compress_type}; NumPy "
                             "writes stored or deflated entries (numpy.savez, numpy.savez_compressed)")
        with archive.zip.open(info) as f:
            _check_header(f, held, f"its entry {name!r}")


def _check_header(f: IO[bytes], size: int, what: str) -> None:
    version = np.lib.format.read_magic(f)
    # Versions 2 and 3 share the header's layout (3 allows UTF-8 field names).
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    if dtype.hasobject:
        raise ValueError(f"{what} holds Python objects (dtype {dtype}): reading them would unpickle them, "
                         "which pydfn never does (allow_pickle=False)")
    held = size - f.tell()
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > held:
        raise ValueError(f"{what} claims shape {shape} of {dtype} ({claimed:,} bytes) but holds {held:,} bytes: "
                         "the file is corrupt")
