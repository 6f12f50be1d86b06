"""Up-front checks of user input: clear errors naming the argument, one conversion."""

from __future__ import annotations

import errno
import math
import numbers
import os
import stat
from typing import Any, Sequence

import numpy as np

from . import _data

MAX_DIM = 2**31 - 1  # the core indexes rows and layer widths with C int
FLOAT32_MAX = float(np.finfo(np.float32).max)  # about 3.4e38
# Deflate's most output per input byte: a 258-byte match coded in 2 bits (zlib's docs say 1032:1).
MAX_INFLATE_RATIO = 1032
# Buffers the core holds per parameter: params, grads, Adam m and v, float32 each.
BYTES_PER_PARAM = 4 * 4


def as_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)``, with NumPy's complaint about ragged input naming ``name``; masked
    arrays are refused (every way data enters goes through here, and the core cannot honour a mask)."""
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array: pydfn would ignore its mask; fill the masked entries "
                        f"({name}.filled(value)) or drop their rows ({name}[~{name}.mask.any(axis=1)]) first")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a rectangular array, got {type(x).__name__}: {exc}") from None


def as_features(x: Any, n_features: int, *, name: str = "x", check_finite: bool = True) -> np.ndarray:
    """Return the samples ``x`` as a C-contiguous float32 array of shape (n_samples, n_features).

    The one input rule of every entry point (fit, evaluate, predict*, train_step...):

    - dtype: floating point, or uint8 images, which are scaled to [0, 1] (divided by 255);
      other integer dtypes are refused (their scale is unknown).
    - shape: (n_samples, n_features), or images (n_samples, height, width, ...) whose
      pixels number n_features, flattened row-major.
    """
    features, _ = as_inputs(x, n_features, name=name, check_finite=check_finite, single=False)
    return features


def as_inputs(x: Any, n_features: int, *, name: str = "x", check_finite: bool = True,
              single: bool = True) -> tuple[np.ndarray, bool]:
    """:func:`as_features`, also taking one sample when ``single``: one row (n_features,) or
    one image (height, width) with height * width == n_features.

    Returns the features (n_samples, n_features) and whether ``x`` was one sample. A 2-D
    array whose last axis is n_features is always a batch of rows (e.g. (28, 28) for a
    28-input model is 28 rows); a 1-D array is one row only when its length is n_features.
    """
    if (type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == n_features
            and x.shape[0] and x.flags.c_contiguous and not check_finite):
        return x, False  # already what the core takes: serving one row must not pay for the checks below
    x = as_array(x, name)
    images = x.dtype == np.uint8
    if not images and x.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a floating-point array, got dtype {x.dtype}"
            + (" (uint8 images are scaled for you; scale other integer images to [0, 1] first)"
               if x.dtype.kind in "ui" else ""))
    shape = x.shape
    one = single and ((x.ndim == 1 and shape[0] == n_features) or  # one row
                      (x.ndim == 2 and shape[1] != n_features and shape[0] * shape[1] == n_features))  # one image
    if one:
        x = x.reshape(1, n_features)
    elif x.ndim == 1:
        raise ValueError(f"{name} must have shape (n_samples, {n_features}), got {shape}"
                         + (f": one sample has {n_features} features (one row, or one image of {n_features} "
                            "pixels)" if single else ": pass one sample as x[None]"))
    elif x.ndim >= 3 and math.prod(shape[1:]) == n_features:
        x = x.reshape(shape[0], n_features)
    if x.ndim != 2 or x.shape[1] != n_features:
        if images or x.ndim >= 3:
            raise ValueError(f"{name} must hold images of {n_features} pixels, shaped (n_samples, height, width) "
                             f"or (n_samples, {n_features}), got shape {shape}")
        raise ValueError(f"{name} must have shape (n_samples, {n_features}), got {shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: it must have at least one row")
    if images:  # one fused pass in Cython, bit for bit x / np.float32(255); pixels are finite
        features = np.empty(x.shape, dtype=np.float32)
        _data.scale_to_float(np.ascontiguousarray(x), features)
        return features, one
    features = np.ascontiguousarray(x, dtype=np.float32)
    if check_finite and not all_finite(features):
        raise ValueError(f"{name} contains NaN or infinity (pass check_finite=False to skip this check)")
    return features, one


def all_finite(x: np.ndarray, chunk: int = 1 << 20) -> bool:
    """Whether a contiguous array holds no NaN or infinity, checked in chunks so
    that a large training set needs no full-size temporary."""
    flat = x.reshape(-1)
    return all(np.isfinite(flat[i:i + chunk]).all() for i in range(0, flat.size, chunk))


def as_labels(y: Any, n_classes: int, n_samples: int, *, name: str = "y") -> np.ndarray:
    """Return class labels ``y`` as a C-contiguous int32 array of shape (n_samples,)."""
    y = as_array(y, name)
    if y.dtype.kind not in "ui":
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n_samples,), got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} labels but x has {n_samples} rows")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise ValueError(f"{name} must hold labels in [0, {n_classes}), found {bad}")
    return np.ascontiguousarray(y, dtype=np.int32)


def real(value: Any, name: str) -> float:
    """Return ``value`` as a float, else raise a TypeError naming it (bools are refused:
    ``True`` is not a rate)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def nonnegative_real(value: Any, name: str) -> float:
    """Return ``value`` as a finite float >= 0, else raise TypeError/ValueError naming it."""
    number = real(value, name)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {number}")
    return number


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a bool; a TypeError for anything else ('no' would be truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def as_y(y: Any, classifier: bool, n_outputs: int, n_samples: int, *, name: str = "y") -> np.ndarray:
    """Labels (n_samples,) int32 for a classifier, else targets (n_samples, n_outputs) float32."""
    if classifier:
        return as_labels(y, n_outputs, n_samples, name=name)
    return as_targets(y, n_outputs, n_samples, name=name)


def positive_int(value: Any, name: str, *, maximum: int | None = None) -> int:
    """Return ``value`` as an int in [1, maximum], else raise TypeError/ValueError naming it."""
    return _int_in_range(value, name, 1, maximum)


def nonnegative_int(value: Any, name: str, *, maximum: int | None = None) -> int:
    """Return ``value`` as an int in [0, maximum], else raise TypeError/ValueError naming it."""
    return _int_in_range(value, name, 0, maximum)


def batch_size_for(batch_size: Any, n_samples: int, name: str = "batch_size") -> int:
    """The rows of each training minibatch: an int in [1, n_samples], else TypeError/ValueError naming it."""
    rows = positive_int(batch_size, name)
    if rows > n_samples:
        raise ValueError(f"{name} ({rows}) is larger than the number of training samples ({n_samples})")
    return rows


def _int_in_range(value: Any, name: str, minimum: int, maximum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {number}")
    return number


def as_sample_weight(weights: Any, n_samples: int, name: str = "sample_weight") -> np.ndarray:
    """Return per-sample loss weights as a C-contiguous float32 array of shape (n_samples,), each
    finite in float32 and >= 0, not all 0; else raise TypeError/ValueError naming ``name``."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {type(weights).__name__}") from None
    if w.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), one weight per sample, got {w.shape}")
    bad = np.flatnonzero(~((w >= 0) & (w <= FLOAT32_MAX)))  # NaN fails both
    if bad.size:
        i = bad[0]
        raise ValueError(f"{name} must be finite and >= 0; sample {i} has {w[i]}"
                         + (" (beyond float32's range, |w| <= 3.4e38)" if FLOAT32_MAX < w[i] < np.inf else ""))
    result = np.ascontiguousarray(w, dtype=np.float32)
    if not result.any():  # also weights so small that float32 rounds them to 0
        raise ValueError(f"{name} gives every sample a weight of zero")
    return result


def as_targets(y: Any, n_outputs: int, n_samples: int, *, name: str = "y") -> np.ndarray:
    """Return regression targets ``y`` as a C-contiguous float32 array of shape (n_samples, n_outputs).

    A 1-D ``y`` is accepted when there is one output.
    """
    y = as_array(y, name)
    if y.dtype.kind not in "fiu" or y.dtype == np.bool_:
        raise TypeError(f"{name} must hold numeric regression targets, got dtype {y.dtype}")
    if y.ndim == 1 and n_outputs == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise ValueError(f"{name} must have shape (n_samples, {n_outputs}), got {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} rows but x has {n_samples} rows")
    targets: np.ndarray = np.ascontiguousarray(y, dtype=np.float32)
    if not all_finite(targets):
        raise ValueError(f"{name} contains NaN or infinity")
    return targets


def num_params(sizes: Sequence[int]) -> int:
    """Number of parameters (weights and biases) of dense layers of ``sizes``, as a Python int."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def physical_memory() -> int | None:
    """Bytes of RAM of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_network_size(sizes: Sequence[int], *, name: str = "layer_sizes") -> list[int]:
    """Return ``sizes`` as ints after checking the network fits in the core and in RAM.

    Raises before anything is allocated: a TypeError or ValueError for a size that is
    not an integer in [1, 2**31 - 1], a MemoryError when the parameters, gradients and
    Adam moments (16 bytes per parameter) would not fit in this machine's RAM, which
    would otherwise end in the kernel's OOM killer rather than an exception.
    """
    sizes = [positive_int(s, f"{name}[{i}]", maximum=MAX_DIM) for i, s in enumerate(sizes)]
    n = num_params(sizes)
    need, have = BYTES_PER_PARAM * n, physical_memory()
    if have is not None and need > have:
        raise MemoryError(f"{name} {sizes} has {n:,} parameters: weights, gradients and Adam state "
                          f"need {need / 2**30:,.1f} GiB, more than this machine's {have / 2**30:,.1f} GiB of RAM")
    if n > MAX_DIM * MAX_DIM:  # no machine holds it; keeps the core's int64 offsets far from overflow
        raise MemoryError(f"{name} {sizes} has {n:,} parameters, too many to allocate")
    return sizes


def most_inflated(compressed: int) -> int:
    """The most bytes a deflate (or gzip) stream of ``compressed`` bytes can decompress to: the
    most a header inside it may claim, known without decompressing anything."""
    return MAX_INFLATE_RATIO * compressed + 1024


def printable(text: str) -> str:
    """``text`` with each character that cannot be shown on one line escaped (\\n, \\t, \\udcff...):
    a message naming a file must print as one line, and a file name that is not UTF-8 (which
    ``os.fsdecode`` gives lone surrogates) would make ``print(message)`` raise UnicodeEncodeError."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def regular_file(path: Any) -> str:
    """``path`` (str, bytes or path-like) as a str, once it names a regular file.

    Raises FileNotFoundError or IsADirectoryError as ``open`` would, and a ValueError for a
    FIFO, socket or device, whose reading could wait for a writer forever or never end.
    """
    name: str = os.fsdecode(path)
    mode = os.stat(name).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if not stat.S_ISREG(mode):
        raise ValueError(f"{printable(name)}: not a regular file (a FIFO, socket or device): give a file")
    return name
