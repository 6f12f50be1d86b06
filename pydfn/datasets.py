"""Fashion-MNIST: find it, download it, verify it, load it.

The data path's other jobs live in their own modules and are re-exported here, where
users know them: reading IDX files (:mod:`pydfn.idx`), preparing arrays
(:mod:`pydfn.preprocessing`: ``prepare_images``, ``train_val_split``, ``one_hot``)
and augmentation (:mod:`pydfn.augment`: ``augment``, ``draw_shift_flip``).

Where :func:`load_fashion_mnist` looks, in order: the ``path`` argument, ``$PYDFN_DATA``,
the user cache (``$XDG_CACHE_HOME/pydfn/fashion-mnist`` or ``~/.cache/pydfn/fashion-mnist``),
the Debian/Ubuntu package's ``/usr/share/datasets/fashion-mnist``, then a download into
the user cache. A directory is used when it holds all four files, gzipped or not, each
with the SHA-256 of its decompressed content listed in :data:`FASHION_MNIST_FILES`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import _data
from ._atomic import write_atomically
from .augment import augment, draw_shift_flip
from .idx import decompress, read_idx
from .preprocessing import one_hot, prepare_images, train_val_split

__all__ = ["FASHION_MNIST_CLASSES", "FASHION_MNIST_FILES", "FASHION_MNIST_MIRRORS", "SYSTEM_DIR", "IdxSpec",
           "augment", "download_fashion_mnist", "draw_shift_flip", "fashion_mnist_cache_dir", "find_fashion_mnist",
           "load_fashion_mnist", "one_hot", "prepare_images", "read_idx", "train_val_split"]

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
    content = decompress(path.read_bytes(), str(path), _idx_size(spec))
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
        # atomic: concurrent loads never read half a file, and a full disk leaves no temporary
        write_atomically(root / "verified.json", lambda f: f.write(json.dumps(registry).encode()))
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
        digest = _content_sha256(decompress(Path(tmp).read_bytes(), "the download", _idx_size(spec)))
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
    if path is not None:  # an explicit path is used or refused, never silently replaced
        given = Path(path).expanduser()
        try:
            found = _verify_dir(given, registry)
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(f"no verified Fashion-MNIST in {given}, the path given: {exc} "
                                    "(give a folder holding the four files, or no path to search "
                                    "$PYDFN_DATA, the cache and the system package)") from None
        _save_registry(registry)
        return given, found
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
        A directory holding the four files (gzipped or not). When given, it is the
        only place looked in: a missing or corrupt copy there raises, naming the reason.
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


