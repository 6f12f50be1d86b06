"""Data augmentation during ``fit``: each epoch sees randomly shifted and mirrored images.

The transform is :func:`pydfn.datasets.augment`'s (Cython, GIL released), applied
to one slice of the epoch's shuffled order at a time, gathering its rows in the same
pass, so the extra memory is one buffer of the rows of one C++ call, not a copy of
the training set.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _data
from ._validation import nonnegative_int, positive_int

# Rows transformed per C++ call: the buffer stays small enough to be reused from
# the heap and to sit in the L3 cache when the core reads it. A fresh buffer of
# a whole ~0.2 s call (~45 MB) cost up to 0.2 s of first-touch page faults here.
BUFFER_BYTES = 8 << 20


class Augment:
    """Random shifts and horizontal flips of the training images, drawn anew each epoch.

    Pass it to :meth:`pydfn.MLP.fit` as ``augment=``. Validation data is never augmented.

    Parameters
    ----------
    shift : int, default 2
        Largest shift in pixels along each axis; each image moves by ``dy, dx``
        drawn uniformly from ``[-shift, shift]``, the pixels it uncovers are 0.
    flip : bool, default True
        Mirror each image left-right with probability 1/2 (before the shift).
    image_shape : (int, int) or None, default None
        (height, width) of the images the rows of ``x`` hold; None: square
        images, ``height = width = sqrt(n_features)``.

    Examples
    --------
    >>> model.fit(x, y, pydfn.Adam(), augment=pydfn.Augment(shift=2, flip=True))  # doctest: +SKIP
    """

    def __init__(self, shift: int = 2, flip: bool = True, image_shape: tuple[int, int] | None = None):
        self.shift = nonnegative_int(shift, "shift")
        if not isinstance(flip, (bool, np.bool_)):
            raise TypeError(f"flip must be True or False, got {type(flip).__name__}")
        self.flip = bool(flip)
        if image_shape is not None:
            if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2:
                raise ValueError(f"image_shape must be (height, width) or None, got {image_shape!r}")
            image_shape = (positive_int(image_shape[0], "image_shape[0]"),
                           positive_int(image_shape[1], "image_shape[1]"))
        self.image_shape = image_shape

    def __repr__(self) -> str:
        shape = f", image_shape={self.image_shape}" if self.image_shape else ""
        return f"Augment(shift={self.shift}, flip={self.flip}{shape})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Augment) and (self.shift, self.flip, self.image_shape) == (
            other.shift, other.flip, other.image_shape)

    def image_shape_for(self, n_features: int) -> tuple[int, int]:
        """(height, width) of rows of ``n_features`` pixels; ValueError when they cannot be images."""
        if self.image_shape is not None:
            height, width = self.image_shape
            if height * width != n_features:
                raise ValueError(f"augment: image_shape {self.image_shape} has {height * width} pixels, "
                                 f"but the rows of x hold {n_features} features")
            return self.image_shape
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"augment needs image rows: {n_features} features are not a square image; "
                             "give Augment(image_shape=(height, width)) for other shapes")
        return side, side


class EpochAugmenter:
    """Serves the rows of one epoch's order, each shifted and flipped by its own draw.

    Parameters
    ----------
    augment : Augment
    x : ndarray of float32 of shape (n_samples, n_features), C-contiguous
        The training rows; ``n_features`` must be ``height * width``.
    """

    def __init__(self, augment: Any, x: np.ndarray):
        if not isinstance(augment, Augment):
            raise TypeError(f"augment must be a pydfn.Augment or None, got {type(augment).__name__}")
        self.augment, self.x = augment, x
        self.image_shape = augment.image_shape_for(x.shape[1])
        self._out = np.empty((0, x.shape[1]), np.float32)  # grown to the largest call's rows, then reused

    def max_batches(self, batch_size: int) -> int:
        """The most batches of ``batch_size`` rows one call should take (at least one)."""
        return max(1, BUFFER_BYTES // (4 * int(self.x.shape[1]) * batch_size))

    def new_epoch(self, rng: np.random.Generator, n: int) -> None:
        """Draw the transforms of the ``n`` rows of an epoch's order from ``rng`` (the model's)."""
        self._dy, self._dx, self._flips = draw_shift_flip(rng, n, self.augment.shift, self.augment.flip)

    def take(self, rows: np.ndarray, start: int) -> np.ndarray:
        """Rows ``x[rows]`` transformed by the epoch's draws ``start, start + 1, ...``, gathered
        and transformed in one pass.

        Parameters
        ----------
        rows : ndarray of int64 of shape (n,)
            Positions ``start`` to ``start + n`` of the epoch's order.
        start : int

        Returns
        -------
        ndarray of float32 of shape (n, n_features)
            A view of a buffer that the next call overwrites.
        """
        n, stop = len(rows), start + len(rows)
        if n > len(self._out):
            self._out = np.empty((n, self.x.shape[1]), np.float32)
        out = self._out[:n]
        _data.shift_flip(self.x.reshape(-1, *self.image_shape), out.reshape(n, *self.image_shape),
                         self._dy[start:stop], self._dx[start:stop], self._flips[start:stop], rows)
        return out


def augment(images: Any, *, shift: int = 2, flip: bool = True, seed: Any = None,
            image_shape: tuple[int, int] = (28, 28), out: np.ndarray | None = None) -> np.ndarray:
    """Randomly shift (zero fill) and mirror images, for one epoch of training.

    Each image is mirrored left-right with probability 1/2 (when ``flip``), then
    shifted by whole pixels ``dy, dx`` drawn uniformly from ``[-shift, shift]``.
    The work runs in Cython with the GIL released.

    Parameters
    ----------
    images : ndarray of uint8 or float32 of shape (n_images, height, width) or (n_images, height * width)
    shift : int, default 2
        Largest shift in pixels, along each axis (as :class:`Augment`'s ``shift``).
    flip : bool, default True
        Mirror half of the images left-right.
    seed : int, numpy Generator or None
        Passed to ``np.random.default_rng``; the same seed gives the same output.
    image_shape : (int, int), default (28, 28)
        (height, width) of each image when ``images`` is 2-D.
    out : ndarray like ``images``, optional
        C-contiguous, not overlapping ``images``; written and returned.

    Returns
    -------
    ndarray of the same shape and dtype as ``images``
    """
    images = np.ascontiguousarray(images)
    if images.dtype not in (np.uint8, np.float32):
        raise TypeError(f"images must be uint8 or float32, got dtype {images.dtype}")
    shift = nonnegative_int(shift, "shift")
    height, width = images.shape[1:] if images.ndim == 3 else image_shape
    if images.ndim not in (2, 3) or height * width != math.prod(images.shape[1:]):
        raise ValueError(f"images must have shape (n, {height}, {width}) or (n, {height * width}), "
                         f"got {images.shape}")
    if out is None:
        out = np.empty_like(images)
    elif out.dtype != images.dtype or out.shape != images.shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {images.dtype} array of shape {images.shape}, "
                         f"got {out.dtype} {out.shape}")
    elif np.may_share_memory(out, images):
        raise ValueError("out must not overlap images")
    n = images.shape[0]
    dy, dx, flips = draw_shift_flip(np.random.default_rng(seed), n, shift, flip)
    shape3 = (n, height, width)
    _data.shift_flip(images.reshape(shape3), out.reshape(shape3), dy, dx, flips)
    return out


def draw_shift_flip(rng: np.random.Generator, n: int, shift: int, flip: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random transforms of :func:`augment` for ``n`` images, drawn from ``rng``.

    Returns
    -------
    dy, dx : ndarray of int32 of shape (n,)
        Shifts down and right, uniform in ``[-shift, shift]``.
    flips : ndarray of uint8 of shape (n,)
        1 (mirror) with probability 1/2 when ``flip``, else all 0.
    """
    if not shift:  # draw nothing: a no-op augmentation leaves rng, hence later epochs, untouched
        dy = dx = np.zeros(n, dtype=np.int32)
    else:
        dy = rng.integers(-shift, shift + 1, size=n, dtype=np.int32)
        dx = rng.integers(-shift, shift + 1, size=n, dtype=np.int32)
    flips = (rng.random(n) < 0.5) if flip else np.zeros(n, dtype=bool)
    return dy, dx, flips.view(np.uint8)
