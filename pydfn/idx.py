"""IDX files (the format of MNIST and Fashion-MNIST): reading them, gzipped or raw.

The parsing and validation run in Cython (``pydfn._data.parse_idx``).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from . import _data


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
    ValueError
        Naming the file and what is wrong with it (empty, truncated, bad gzip
        stream, wrong magic, type code, dimensions, byte count).
    """
    return _data.parse_idx(decompress(Path(path).read_bytes(), str(path)), str(path))
