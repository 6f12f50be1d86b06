"""IDX files (the format of MNIST and Fashion-MNIST): reading them, gzipped or raw.

The parsing and validation run in Cython (``pydfn._data.parse_idx``).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from . import _data
from ._validation import most_inflated, printable, regular_file


def decompress(raw: bytes, name: str, limit: int | None = None) -> bytes:
    """The IDX bytes of a file's contents ``raw``, gunzipped when they are gzip.

    With ``limit`` (the size the content must have), a stream that inflates beyond it
    is refused after ``limit + 1`` bytes: a small hostile .gz could expand a thousandfold.
    """
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        if limit is None:
            return gzip.decompress(raw)
        stream = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer
        content = stream.decompress(raw, limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: bad gzip stream: {exc}") from None
    if len(content) > limit:
        raise ValueError(f"{name}: decompresses to more than the {limit} bytes its content must have")
    if not stream.eof:
        raise ValueError(f"{name}: bad gzip stream: it ends before its end-of-stream marker")
    if stream.unused_data:
        raise ValueError(f"{name}: bad gzip stream: {len(stream.unused_data)} bytes after its end")
    return content


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file of unsigned bytes, gzipped or raw.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray of uint8
        Shaped as the header says, e.g. (n_images, rows, cols) or (n_labels,).

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` names no file.
    ValueError
        Naming the file and what is wrong with it (empty, truncated, bad gzip
        stream, wrong magic, type code, dimensions, byte count), or that it is
        not a regular file (a FIFO or device).
    """
    path = regular_file(path)
    raw, name = Path(path).read_bytes(), printable(path)
    return _data.parse_idx(decompress(raw, name, _gzip_limit(raw, name)), name)


_SLACK = 1 << 20  # bytes past the declared size still inflated, so parse_idx reports trailing bytes exactly


def _gzip_limit(raw: bytes, name: str) -> int | None:
    """For a gzip stream ``raw``, how much it may inflate to: what its IDX header declares
    (read by decompressing the header alone), so a gzip bomb is refused after that instead of
    inflating in full, and never more than ``raw`` can inflate to (a header may claim 2**96
    bytes: parse_idx then says the file is truncated); None for raw bytes. A header that is
    wrong raises its parse_idx error."""
    if raw[:2] != b"\x1f\x8b":
        return None
    stream = zlib.decompressobj(wbits=31)
    try:
        head = stream.decompress(raw, 4)
        ndim = head[3] if len(head) == 4 and head[:2] == b"\0\0" else 0
        if ndim:
            head += stream.decompress(stream.unconsumed_tail, 4 * ndim)
    except zlib.error as exc:
        raise ValueError(f"{name}: bad gzip stream: {exc}") from None
    if ndim == 0 or len(head) < 4 + 4 * ndim:
        _data.parse_idx(head, name)  # raises, naming what is wrong with the header
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return min(4 + 4 * ndim + math.prod(dims) + _SLACK, most_inflated(len(raw)))
