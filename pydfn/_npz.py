"""Reading ``.npz`` archives that come from files: each member's ``.npy`` header is checked
against the bytes the member holds before NumPy allocates what the header claims (a 1 kB
file claiming 2**40 elements is a corrupt file, not an out-of-memory condition)."""

from __future__ import annotations

import math
import os
from typing import IO, BinaryIO

import numpy as np


def check_npy(f: BinaryIO) -> None:
    """Raise ValueError if the ``.npy`` file open as ``f`` (at its start) claims more data than it
    holds; ``f`` is left at its start."""
    _check_header(f, os.fstat(f.fileno()).st_size, "it")
    f.seek(0)


def check_members(archive: np.lib.npyio.NpzFile) -> None:
    """Raise ValueError naming the first member whose header claims more data than it holds
    (or whose header is unreadable)."""
    assert archive.zip is not None  # an NpzFile open for reading
    for info in archive.zip.infolist():
        if not info.filename.endswith(".npy"):
            continue  # NumPy reads such members as raw bytes, as many as there are
        with archive.zip.open(info) as f:
            _check_header(f, info.file_size, f"its entry {info.filename[:-4]!r}")


def _check_header(f: IO[bytes], size: int, what: str) -> None:
    version = np.lib.format.read_magic(f)
    # Versions 2 and 3 share the header's layout (3 allows UTF-8 field names).
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    held = size - f.tell()
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > held:
        raise ValueError(f"{what} claims shape {shape} of {dtype} ({claimed:,} bytes) but holds {held:,} bytes: "
                         "the file is corrupt")
