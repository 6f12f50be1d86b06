"""Hostile dataset files: a gzip bomb in place of a Fashion-MNIST file (or sent by a
mirror) is refused after inflating only as many bytes as the real file has."""

from __future__ import annotations

import gzip
import zlib

import pytest

from pydfn import datasets


def bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes (a few kB for megabytes)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [z.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + z.flush()


def test_a_gzip_bomb_in_the_data_folder_is_refused_without_inflating_it(fake_fashion, tmp_path):
    folder = fake_fashion.write(tmp_path / "data")
    labels = fake_fashion.specs["train_labels"].name
    raw = bomb(64 << 20)  # 64 MiB of zeros for a file of 14 bytes
    assert len(raw) < 100_000
    (folder / f"{labels}.gz").write_bytes(raw)
    with pytest.raises(FileNotFoundError, match=rf"{labels}.gz: decompresses to more than the 14 bytes"):
        datasets.load_fashion_mnist(folder, download=False)


@pytest.mark.parametrize("raw, message", [
    (gzip.compress(b"\0" * 14)[:-9], "bad gzip stream: it ends before its end-of-stream marker"),
    (gzip.compress(b"\0" * 14) + b"junk", "bad gzip stream: 4 bytes after its end"),
    (b"\x1f\x8b" + b"\xff" * 30, "bad gzip stream: Error"),
])
def test_a_damaged_gzip_file_of_known_size_is_a_clear_error(fake_fashion, tmp_path, raw, message):
    folder = fake_fashion.write(tmp_path / "data")
    labels = fake_fashion.specs["train_labels"].name
    (folder / f"{labels}.gz").write_bytes(raw)
    with pytest.raises(FileNotFoundError, match=f"{labels}.gz: {message}"):
        datasets.load_fashion_mnist(folder, download=False)


def test_the_bound_is_the_exact_size_of_the_file(fake_fashion, tmp_path):
    # A gzip stream of exactly the expected size still loads (the bound is not off by one).
    folder = fake_fashion.write(tmp_path / "data")
    (x, y), _ = datasets.load_fashion_mnist(folder, download=False)
    assert x.shape == (6, 4, 4) and y.shape == (6,)
