"""Fashion-MNIST: find it, download it, verify it, and prepare it for training.

Where :func:`load_fashion_mnist` looks, in order: the ``path`` argument, ``$PYDFN_DATA``,
the user cache (``$XDG_CACHE_HOME/pydfn/fashion-mnist`` or ``~/.cache/pydfn/fashion-mnist``),
the Debian/Ubuntu package's ``/usr/share/datasets/fashion-mnist``, then a download into
the user cache. A directory is used when it holds all four files, gzipped or not, each
with the SHA-256 of its decompressed content listed in :data:`FASHION_MNIST_FILES`.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import math
import os
import sys
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import _data
from ._validation import as_labels, positive_int

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
"""The ten class names, indexed by label."""

FASHION_MNIST_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
"""Base URLs tried in order by :func:`download_fashion_mnist`; append more here."""

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files."""


@dataclass(frozen=True)
class IdxSpec:
    """One IDX file of a dataset: its name without ``.gz``, shape and content SHA-256."""

    name: str
    shape: tuple[int, ...]
    sha256: str  # of the decompressed bytes: Debian's recompressed .gz files differ from upstream's


FASHION_MNIST_FILES = {
    "train_images": IdxSpec("train-images-idx3-ubyte", (60000, 28, 28),
                            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train_labels": IdxSpec("train-labels-idx1-ubyte", (60000,),
                            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test_images": IdxSpec("t10k-images-idx3-ubyte", (10000, 28, 28),
                           "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test_labels": IdxSpec("t10k-labels-idx1-ubyte", (10000,),
                           "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
"""The four files :func:`load_fashion_mnist` needs, by role."""

# --- reading and verifying files ---------------------------------------------------

def _decompress(raw: bytes, name: str, limit: int | None = None) -> bytes:
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
    return _data.parse_idx(_decompress(Path(path).read_bytes(), str(path)), str(path))


def _idx_size(spec: IdxSpec) -> int:
    """Bytes of the IDX file ``spec``: the 4-byte magic, 4 per dimension, then the data."""
    return 4 + 4 * len(spec.shape) + math.prod(spec.shape)


def _content_sha256(content: bytes) -> str:
    """Hex SHA-256 of decompressed IDX bytes (the one place that hashes, so it can be counted)."""
    return hashlib.sha256(content).hexdigest()


def _file_in(directory: Path, spec: IdxSpec) -> Path | None:
    """The gzipped or gunzipped copy of ``spec`` in ``directory``, if any."""
    for candidate in (directory / f"{spec.name}.gz", directory / spec.name):
        if candidate.is_file():
            return candidate
    return None


def _verify(path: Path, spec: IdxSpec, registry: dict[str, Any]) -> np.ndarray | None:
    """Check ``path`` holds ``spec``; return its array when reading it was needed.

    ``registry`` maps resolved paths to ``[size, mtime_ns, sha256]``: a file whose
    size and mtime are registered as verified is trusted unread; otherwise it is
    parsed, checked and hashed, and registered on success.
    """
    stat = path.stat()
    key = str(path.resolve())
    if registry.get(key) == [stat.st_size, stat.st_mtime_ns, spec.sha256]:
        return None
    content = _decompress(path.read_bytes(), str(path), _idx_size(spec))
    array = _data.parse_idx(content, str(path))
    if array.shape != spec.shape:
        raise ValueError(f"{path}: shape {array.shape}, expected {spec.shape}")
    digest = _content_sha256(content)
    if digest != spec.sha256:
        raise ValueError(f"{path}: content SHA-256 is {digest}, expected {spec.sha256} "
                         "(a corrupt or different file)")
    registry[key] = [stat.st_size, stat.st_mtime_ns, spec.sha256]
    return array


def _verify_dir(directory: Path, registry: dict[str, Any]) -> dict[str, tuple[Path, np.ndarray | None]]:
    """Each role's verified file in ``directory`` (and its array if it was read)."""
    if not directory.is_dir():
        raise ValueError("not a directory" if directory.exists() else "does not exist")
    found = {}
    for role, spec in FASHION_MNIST_FILES.items():
        path = _file_in(directory, spec)
        if path is None:
            raise ValueError(f"{spec.name}.gz (or {spec.name}) missing")
        found[role] = (path, _verify(path, spec, registry))
    return found


# --- the verification cache ----------------------------------------------------------

def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: ignore relative paths
    return base / "pydfn"


def fashion_mnist_cache_dir() -> Path:
    """The user cache directory for Fashion-MNIST (it may not exist yet).

    Returns
    -------
    pathlib.Path
        ``$XDG_CACHE_HOME/pydfn/fashion-mnist``, or ``~/.cache/pydfn/fashion-mnist``.
    """
    return _cache_root() / "fashion-mnist"


def _load_registry() -> dict[str, Any]:
    try:
        registry = json.loads((_cache_root() / "verified.json").read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: verifying again is only slower
    return registry if isinstance(registry, dict) else {}


def _save_registry(registry: dict[str, Any]) -> None:
    root = _cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".verified.", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(registry, out)
        os.replace(tmp, root / "verified.json")  # atomic: concurrent loads never read half a file
    except OSError:
        pass  # a read-only home only costs re-verification next time


# --- downloading ---------------------------------------------------------------------

def _copy_with_progress(response: Any, out: Any, label: str) -> None:
    """Stream ``response`` into ``out``; a byte count on stderr when it is a terminal."""
    total = int(response.headers.get("Content-Length") or 0)
    show = sys.stderr is not None and sys.stderr.isatty()  # None under pythonw
    done = 0
    while chunk := response.read(1 << 16):
        out.write(chunk)
        done += len(chunk)
        if show:
            print(f"\rdownloading {label}: {done / 1e6:.1f} / {total / 1e6:.1f} MB",
                  end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    if total and done != total:
        raise ValueError(f"connection dropped after {done} of {total} bytes")


def _fetch(url: str, spec: IdxSpec, target: Path, timeout: float) -> None:
    """Download ``url`` to ``target`` through a temp file, renamed only once verified."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            _copy_with_progress(response, out, url)
        digest = _content_sha256(_decompress(Path(tmp).read_bytes(), "the download", _idx_size(spec)))
        if digest != spec.sha256:
            raise ValueError(f"content SHA-256 is {digest}, expected {spec.sha256}")
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)  # whatever went wrong (even Ctrl-C), leave nothing half-written behind
        raise


def download_fashion_mnist(directory: str | os.PathLike[str] | None = None, *,
                           mirrors: Sequence[str] | None = None, timeout: float = 30.0) -> Path:
    """Download the files of Fashion-MNIST that ``directory`` lacks, verified.

    Each file is written to a temp file in ``directory``, its decompressed content
    checked against its SHA-256, then renamed into place; on any failure the next
    mirror is tried and nothing partial is left behind.

    Parameters
    ----------
    directory : str or path-like, optional
        Defaults to :func:`fashion_mnist_cache_dir`; created if needed.
    mirrors : sequence of str, optional
        Base URLs tried in order; defaults to :data:`FASHION_MNIST_MIRRORS`.
    timeout : float, default 30.0
        Seconds to wait for a mirror to connect or send more bytes.

    Returns
    -------
    pathlib.Path
        The directory, now holding the four verified files.

    Raises
    ------
    OSError
        When a file could not be fetched from any mirror; the message lists each URL's failure.
    """
    directory = Path(directory).expanduser() if directory is not None else fashion_mnist_cache_dir()
    mirrors = FASHION_MNIST_MIRRORS if mirrors is None else mirrors
    directory.mkdir(parents=True, exist_ok=True)
    registry = _load_registry()
    for spec in FASHION_MNIST_FILES.values():
        target = directory / f"{spec.name}.gz"
        try:
            _verify(target, spec, registry)
            continue  # already there and whole
        except (OSError, ValueError):
            pass
        failures = []
        for mirror in mirrors:
            url = f"{mirror.rstrip('/')}/{spec.name}.gz"
            try:
                _fetch(url, spec, target, timeout)
                break
            except (OSError, ValueError, http.client.HTTPException) as exc:
                failures.append(f"{url}: {exc}")
        else:
            raise OSError(f"could not download {spec.name}.gz: " + ("; ".join(failures) or "no mirrors"))
    _save_registry(registry)
    return directory


# --- finding and loading ---------------------------------------------------------------

def _places(path: str | os.PathLike[str] | None) -> list[tuple[str, Path | None]]:
    """The local directories to look in, in order, labelled for the error message."""
    env = os.environ.get("PYDFN_DATA")
    return [("path argument", Path(path).expanduser() if path is not None else None),
            ("$PYDFN_DATA", Path(env).expanduser() if env else None),
            ("user cache", fashion_mnist_cache_dir()),
            ("system package", SYSTEM_DIR)]


def _not_found(tried: list[str]) -> FileNotFoundError:
    names = ", ".join(f"{spec.name}.gz" for spec in FASHION_MNIST_FILES.values())
    return FileNotFoundError(
        "Fashion-MNIST not found. Places tried, in order:\n"
        + "".join(f"  - {line}\n" for line in tried)
        + "Fix it with one of:\n"
        "  - sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu)\n"
        f"  - set PYDFN_DATA to a directory holding {names}\n"
        f"  - download those files from {' or '.join(FASHION_MNIST_MIRRORS)} into {fashion_mnist_cache_dir()}")


def _locate(path: str | os.PathLike[str] | None, download: bool
            ) -> tuple[Path, dict[str, tuple[Path, np.ndarray | None]]]:
    registry = _load_registry()
    tried = []
    for label, directory in _places(path):
        if directory is None:
            tried.append(f"{label}: not set")
            continue
        try:
            found = _verify_dir(directory, registry)
        except (OSError, ValueError) as exc:
            tried.append(f"{label} {directory}: {exc}")
            continue
        _save_registry(registry)
        return directory, found
    if not download:
        tried.append("download: not attempted (download=False)")
        raise _not_found(tried)
    try:
        directory = download_fashion_mnist()
    except OSError as exc:
        tried.append(f"download into {fashion_mnist_cache_dir()}: {exc}")
        raise _not_found(tried) from None
    return directory, _verify_dir(directory, _load_registry())


def find_fashion_mnist(path: str | os.PathLike[str] | None = None, *, download: bool = True) -> Path:
    """The directory :func:`load_fashion_mnist` would load from (downloading if needed).

    Parameters
    ----------
    path, download
        As for :func:`load_fashion_mnist`.

    Returns
    -------
    pathlib.Path
        A directory holding the four verified files.

    Raises
    ------
    FileNotFoundError
        Listing every place tried and how to get the data.
    """
    return _locate(path, download)[0]


def load_fashion_mnist(path: str | os.PathLike[str] | None = None, *, download: bool = True
                       ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST, like ``keras.datasets.fashion_mnist.load_data()``.

    Parameters
    ----------
    path : str or path-like, optional
        A directory holding the four files (gzipped or not); looked in first.
    download : bool, default True
        Download into the user cache when no local copy is found.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 images of shape (60000, 28, 28) and (10000, 28, 28), uint8 labels of
        shape (60000,) and (10000,) indexing :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    FileNotFoundError
        When no place holds a verified copy; the message lists every place tried
        and the three fixes (apt package, ``$PYDFN_DATA``, download URL).
    """
    _, found = _locate(path, download)
    arrays = {}
    for role, (file, array) in found.items():
        if array is None:  # verified by an earlier run: parse only
            array = read_idx(file)
            if array.shape != FASHION_MNIST_FILES[role].shape:
                raise ValueError(f"{file}: shape {array.shape}, expected {FASHION_MNIST_FILES[role].shape}")
        arrays[role] = array
    return ((arrays["train_images"], arrays["train_labels"]),
            (arrays["test_images"], arrays["test_labels"]))


# --- preparing arrays for training -------------------------------------------------------

def prepare_images(images: Any, *, out: np.ndarray | None = None) -> np.ndarray:
    """Scale uint8 images to float32 in [0, 1] and flatten them, in one pass.

    Parameters
    ----------
    images : array-like of uint8 of shape (n_images, height, width) or (n_images, n_features)
    out : ndarray of float32 of shape (n_images, height * width), optional
        C-contiguous; written in place and returned.

    Returns
    -------
    ndarray of float32 of shape (n_images, height * width)
        Equal to ``images.reshape(len(images), -1).astype(np.float32) / 255``, bit for bit.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got dtype {images.dtype}")
    if images.ndim < 2:
        raise ValueError(f"images must have shape (n_images, ...) with ndim >= 2, got {images.shape}")
    flat = np.ascontiguousarray(images).reshape(images.shape[0], math.prod(images.shape[1:]))
    if out is None:
        out = np.empty(flat.shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != flat.shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {flat.shape}, "
                         f"got {out.dtype} {out.shape}")
    _data.scale_to_float(flat, out)
    return out


def augment(images: Any, *, max_shift: int = 2, flip: bool = True, seed: Any = None,
            image_shape: tuple[int, int] = (28, 28), out: np.ndarray | None = None) -> np.ndarray:
    """Randomly shift (zero fill) and mirror images, for one epoch of training.

    Each image is mirrored left-right with probability 1/2 (when ``flip``), then
    shifted by whole pixels ``dy, dx`` drawn uniformly from ``[-max_shift, max_shift]``.
    The work runs in Cython with the GIL released.

    Parameters
    ----------
    images : ndarray of uint8 or float32 of shape (n_images, height, width) or (n_images, height * width)
    max_shift : int, default 2
        Largest shift in pixels, along each axis.
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
    max_shift = positive_int(max_shift, "max_shift", minimum=0)
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
    dy, dx, flips = draw_shift_flip(np.random.default_rng(seed), n, max_shift, flip)
    shape3 = (n, height, width)
    _data.shift_flip(images.reshape(shape3), out.reshape(shape3), dy, dx, flips)
    return out


def draw_shift_flip(rng: np.random.Generator, n: int, max_shift: int, flip: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random transforms of :func:`augment` for ``n`` images, drawn from ``rng``.

    Returns
    -------
    dy, dx : ndarray of int32 of shape (n,)
        Shifts down and right, uniform in ``[-max_shift, max_shift]``.
    flips : ndarray of uint8 of shape (n,)
        1 (mirror) with probability 1/2 when ``flip``, else all 0.
    """
    if not max_shift:  # draw nothing: a no-op augmentation leaves rng, hence later epochs, untouched
        dy = dx = np.zeros(n, dtype=np.int32)
    else:
        dy = rng.integers(-max_shift, max_shift + 1, size=n, dtype=np.int32)
        dx = rng.integers(-max_shift, max_shift + 1, size=n, dtype=np.int32)
    flips = (rng.random(n) < 0.5) if flip else np.zeros(n, dtype=bool)
    return dy, dx, flips.view(np.uint8)


def train_val_split(x: Any, y: Any, val_fraction: float = 0.1, seed: int = 2
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split off a validation set, like the tutorial's scikit-learn call.

    Gives the same split as ``sklearn.model_selection.train_test_split(x, y,
    test_size=val_fraction, random_state=seed)`` without needing scikit-learn.

    Parameters
    ----------
    x : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    val_fraction : float, default 0.1
        Share of the samples in the validation set (rounded up), in (0, 1).
    seed : int, default 2

    Returns
    -------
    x_train, x_val, y_train, y_val : ndarray
        Of shapes (n_train, ...), (n_val, ...), (n_train,), (n_val,), in scikit-learn's order.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"x and y need the same number of samples, got shapes {x.shape} and {y.shape}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = math.ceil(val_fraction * len(x))
    if n_val >= len(x):
        raise ValueError(f"val_fraction={val_fraction} leaves no training sample out of {len(x)}")
    # scikit-learn's ShuffleSplit: a legacy RandomState permutation, validation rows first.
    order = np.random.RandomState(positive_int(seed, "seed", minimum=0)).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return x[train], x[val], y[train], y[val]


def one_hot(y: Any, num_classes: int) -> np.ndarray:
    """One-hot encode integer labels.

    Parameters
    ----------
    y : array-like of int of shape (n_samples,)
        Labels in ``[0, num_classes)``.
    num_classes : int

    Returns
    -------
    ndarray of float32 of shape (n_samples, num_classes)
    """
    num_classes = positive_int(num_classes, "num_classes")
    y = np.asarray(y)
    labels = as_labels(y, num_classes, len(y) if y.ndim else 0)
    encoded = np.zeros((len(labels), num_classes), dtype=np.float32)
    encoded[np.arange(len(labels)), labels] = 1.0
    return encoded
