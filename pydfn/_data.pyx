# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The data path: IDX parsing, normalisation and augmentation (see datasets.py).

Bounds checks are off, so every function checks lengths and shapes itself before it
reads or writes; the loops then run with the GIL released.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy, memset

import numpy as np

# IDX type codes (third header byte); pydfn reads unsigned bytes only.
_IDX_UBYTE = 0x08
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16",
              0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}

ctypedef fused pixel_t:
    uint8_t
    float


_IDX_MAX_DIMS = 32  # NumPy's limit (1.x; 2.x allows 64): beyond it, NumPy's own error would not name the file


def parse_idx(const uint8_t[::1] buf not None, str name):
    """Validate the raw (decompressed) IDX bytes ``buf`` and return their array.

    Parameters
    ----------
    buf : bytes-like of shape (n_bytes,)
        A whole IDX file: magic ``00 00 <type> <ndim>``, ndim big-endian uint32
        sizes, then the data.
    name : str
        The file's name, used in error messages.

    Returns
    -------
    ndarray of uint8 with the header's shape
        A writable copy of the data.

    Raises
    ------
    ValueError
        Naming ``name`` and what is wrong: empty, truncated header or data, wrong
        magic, unsupported type code, zero or too many dimensions, trailing bytes.
    """
    cdef Py_ssize_t n = buf.shape[0], ndim, offset, i
    if n == 0:
        raise ValueError(f"{name}: empty file (0 bytes), not an IDX file")
    if n < 4:
        raise ValueError(f"{name}: truncated: {n} bytes, shorter than the 4-byte IDX header")
    if buf[0] != 0 or buf[1] != 0:
        magic = _be32(&buf[0])
        raise ValueError(f"{name}: wrong magic number 0x{magic:08X}: an IDX file starts with two zero bytes")
    if buf[2] != _IDX_UBYTE:
        kind = _IDX_TYPES.get(buf[2], "unknown")
        raise ValueError(f"{name}: dtype code 0x{buf[2]:02X} ({kind}) is not supported: "
                         f"pydfn reads unsigned-byte (0x08) IDX files")
    ndim = buf[3]
    if ndim == 0:
        raise ValueError(f"{name}: the IDX header declares 0 dimensions")
    if ndim > _IDX_MAX_DIMS:
        raise ValueError(f"{name}: the IDX header declares {ndim} dimensions; an array has at most "
                         f"{_IDX_MAX_DIMS} (images have 3)")
    offset = 4 + 4 * ndim
    if n < offset:
        raise ValueError(f"{name}: truncated: the header of {ndim} dimensions needs {offset} bytes, "
                         f"the file has {n}")
    shape = []
    for i in range(ndim):
        shape.append(_be32(&buf[4 + 4 * i]))
    expected = 1
    for dim in shape:
        expected *= dim  # a Python int: no overflow, whatever the header claims
    found = n - offset
    dims = "x".join(map(str, shape))
    if found < expected:
        raise ValueError(f"{name}: truncated: the header declares {dims} = {expected} data bytes, "
                         f"only {found} follow")
    if found > expected:
        raise ValueError(f"{name}: byte count mismatch: {found - expected} trailing bytes after the "
                         f"{dims} = {expected} data bytes the header declares")
    out = np.empty(shape, dtype=np.uint8)
    if expected:
        _copy_bytes(out.reshape(-1), buf[offset:])
    return out


cdef inline uint32_t _be32(const uint8_t* p) noexcept:
    # widen before shifting: a uint8 promotes to int, and 0xFF << 24 would overflow it
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef void _copy_bytes(uint8_t[::1] dst, const uint8_t[::1] src) noexcept:
    with nogil:
        memcpy(&dst[0], &src[0], dst.shape[0])


def scale_to_float(const uint8_t[:, ::1] src not None, float[:, ::1] dst not None):
    """Write ``dst = src / 255`` as float32, in one pass with the GIL released.

    Parameters
    ----------
    src : ndarray of uint8 of shape (n_samples, n_features), C-contiguous
    dst : ndarray of float32 of shape (n_samples, n_features), C-contiguous
        Overwritten; bitwise equal to ``src.astype(np.float32) / 255``.
    """
    if src.shape[0] != dst.shape[0] or src.shape[1] != dst.shape[1]:
        raise ValueError(f"dst has shape ({dst.shape[0]}, {dst.shape[1]}), "
                         f"src has ({src.shape[0]}, {src.shape[1]})")
    cdef Py_ssize_t i, size = src.shape[0] * src.shape[1]
    if size == 0:
        return
    cdef const uint8_t* s = &src[0, 0]
    cdef float* d = &dst[0, 0]
    with nogil:
        for i in range(size):
            # float / float, exactly what NumPy computes (a reciprocal multiply would round differently)
            d[i] = <float>s[i] / <float>255.0


def shift_flip(const pixel_t[:, :, ::1] src not None, pixel_t[:, :, ::1] dst not None,
               const int32_t[::1] dy not None, const int32_t[::1] dx not None,
               const uint8_t[::1] flip not None, const int64_t[::1] rows=None):
    """Shift (zero fill) and optionally mirror each image, with the GIL released.

    ``dst[i, r, c] = f(src[j])[r - dy[i], c - dx[i]]`` (0 outside the image), where
    ``j = rows[i]`` (``i`` without ``rows``) and ``f`` mirrors left-right when
    ``flip[i]`` and is the identity otherwise.

    Parameters
    ----------
    src : ndarray of uint8 or float32 of shape (n_src, height, width), C-contiguous
    dst : ndarray of the same dtype of shape (n_images, height, width), C-contiguous, not overlapping ``src``
    dy, dx : ndarray of int32 of shape (n_images,)
        Down and right shifts in pixels (negative: up, left).
    flip : ndarray of uint8 of shape (n_images,)
        Nonzero mirrors the image before it is shifted.
    rows : ndarray of int64 of shape (n_images,), optional
        The images of ``src`` to transform, in [0, n_src): the gather is fused into
        the one pass. Without it, ``n_src == n_images``.
    """
    cdef Py_ssize_t n = dst.shape[0], h = src.shape[1], w = src.shape[2], i, j
    if dst.shape[1] != h or dst.shape[2] != w or (rows is None and src.shape[0] != n):
        raise ValueError(f"dst has shape ({dst.shape[0]}, {dst.shape[1]}, {dst.shape[2]}), "
                         f"src has ({src.shape[0]}, {h}, {w})")
    if dy.shape[0] != n or dx.shape[0] != n or flip.shape[0] != n:
        raise ValueError(f"dy, dx and flip need {n} entries, got {dy.shape[0]}, {dx.shape[0]}, {flip.shape[0]}")
    if rows is not None:
        if rows.shape[0] != n:
            raise ValueError(f"rows needs {n} entries, got {rows.shape[0]}")
        for i in range(n):
            if rows[i] < 0 or rows[i] >= src.shape[0]:
                raise ValueError(f"rows[{i}] = {rows[i]} is outside [0, {src.shape[0]})")
    if n == 0 or h == 0 or w == 0:
        return
    cdef const pixel_t* s = &src[0, 0, 0]
    cdef pixel_t* d = &dst[0, 0, 0]
    cdef const int64_t* gather = NULL
    if rows is not None:
        gather = &rows[0]
    with nogil:
        for i in range(n):
            j = i if gather == NULL else gather[i]
            _shift_flip_one(d + i * h * w, s + j * h * w, h, w, dy[i], dx[i], flip[i] != 0)


cdef inline void _shift_flip_one(pixel_t* dst, const pixel_t* src, Py_ssize_t h, Py_ssize_t w,
                                 Py_ssize_t dy, Py_ssize_t dx, bint flip) noexcept nogil:
    # Output rows [r0, r1) and columns [c0, c1) come from the image; the rest is zero fill.
    # Few library calls per image, not per row: fit runs this on every training image each epoch.
    cdef Py_ssize_t r, c, r0 = max(dy, 0), r1 = min(h + dy, h), c0 = max(dx, 0), c1 = min(w + dx, w)
    cdef pixel_t* out
    cdef const pixel_t* row
    if r1 <= r0 or c1 <= c0:  # shifted entirely out of the frame
        memset(dst, 0, h * w * sizeof(pixel_t))
        return
    memset(dst, 0, r0 * w * sizeof(pixel_t))
    memset(dst + r1 * w, 0, (h - r1) * w * sizeof(pixel_t))
    if not flip:
        # Unflipped, dst[k] = src[k - dy*w - dx] over the flat index: one copy from the first
        # kept pixel to the last; the columns it wraps into are zeroed just below.
        memcpy(dst + r0 * w + c0, src + (r0 - dy) * w + c0 - dx, ((r1 - r0 - 1) * w + c1 - c0) * sizeof(pixel_t))
    for r in range(r0, r1):
        out = dst + r * w
        for c in range(c0):
            out[c] = 0
        if flip:
            row = src + (r - dy) * w
            for c in range(c0, c1):
                out[c] = row[w - 1 - (c - dx)]
        for c in range(c1, w):
            out[c] = 0
