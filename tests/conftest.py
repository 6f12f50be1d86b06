"""Shared fixtures and helpers: kernel shape sweeps, thread settings, IDX bytes and a tiny fake
Fashion-MNIST."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

import pydfn
from pydfn import _core, datasets, training

BATCHES = [1, 3, 17, 63, 64, 65]
WIDTHS = [1, 10, 17, 128, 257, 784]
# The fast kernel sets this build can run here (the reference is the oracle).
FAST_KERNELS = [k for k in _core.kernel_names() if k != "reference"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def threads():
    """Restore the thread count a test changes."""
    before = pydfn.get_num_threads()
    yield
    pydfn.set_num_threads(before)


def one_batch_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make fit cut every epoch into one-batch C++ calls."""
    monkeypatch.setattr(training, "FIRST_CHUNK", 1)
    monkeypatch.setattr(training, "CHUNK_SECONDS", 1e-12)


@pytest.fixture
def tiny_chunks(monkeypatch):
    one_batch_calls(monkeypatch)


def product_error_bound(a_abs_b_abs, k):
    """Worst-case rounding bound of a float32 dot product of length k (plus slack)."""
    return 2 * k * np.finfo(np.float32).eps * a_abs_b_abs + 1e-30


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 00 00 08 <ndim>, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@pytest.fixture
def isolated_data_env(tmp_path, monkeypatch):
    """No real cache, env var, system dir or mirror: every place the loader looks is ours."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("PYDFN_DATA", raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", [])  # a test never reaches the internet


class FakeFashion:
    """A tiny dataset of the same four files, with FASHION_MNIST_FILES patched to match it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        rng = np.random.default_rng(0)
        self.arrays = {"train_images": rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
                       "train_labels": rng.integers(0, 10, 6, dtype=np.uint8),
                       "test_images": rng.integers(0, 256, (3, 4, 4), dtype=np.uint8),
                       "test_labels": rng.integers(0, 10, 3, dtype=np.uint8)}
        specs = {}
        for role, spec in datasets.FASHION_MNIST_FILES.items():
            content = idx_bytes(self.arrays[role])
            specs[role] = datasets.IdxSpec(spec.name, self.arrays[role].shape,
                                           hashlib.sha256(content).hexdigest())
        monkeypatch.setattr(datasets, "FASHION_MNIST_FILES", specs)
        self.specs = specs

    def gz(self, role: str) -> bytes:
        return gzip.compress(idx_bytes(self.arrays[role]))

    def write(self, directory: Path, *, gz: bool = True) -> Path:
        """Write the four files into ``directory`` (gzipped, or gunzipped copies)."""
        directory.mkdir(parents=True, exist_ok=True)
        for role, spec in self.specs.items():
            if gz:
                (directory / f"{spec.name}.gz").write_bytes(self.gz(role))
            else:
                (directory / spec.name).write_bytes(idx_bytes(self.arrays[role]))
        return directory


@pytest.fixture
def fake_fashion(isolated_data_env, monkeypatch) -> FakeFashion:
    return FakeFashion(monkeypatch)
