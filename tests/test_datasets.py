"""Finding Fashion-MNIST: the lookup order, verification, its cache, and the final error."""

from __future__ import annotations

import gzip
import os
import re

import numpy as np
import pytest
from conftest import idx_bytes

from pydfn import datasets
from pydfn.datasets import find_fashion_mnist, load_fashion_mnist

pytestmark = pytest.mark.usefixtures("fake_fashion")


def assert_loads(fake, loaded):
    (x_train, y_train), (x_test, y_test) = loaded
    for role, array in zip(fake.arrays, (x_train, y_train, x_test, y_test)):
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, fake.arrays[role])


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "gunzipped"])
def test_loads_from_path(fake_fashion, tmp_path, gz):
    directory = fake_fashion.write(tmp_path / "data", gz=gz)
    assert_loads(fake_fashion, load_fashion_mnist(directory, download=False))
    assert find_fashion_mnist(str(directory), download=False) == directory


@pytest.fixture
def everywhere(fake_fashion, tmp_path, monkeypatch):
    """A copy of the data in each place the loader looks, by label."""
    places = {"path": fake_fashion.write(tmp_path / "arg"),
              "env": fake_fashion.write(tmp_path / "env"),
              "cache": fake_fashion.write(datasets.fashion_mnist_cache_dir()),
              "system": fake_fashion.write(datasets.SYSTEM_DIR)}
    monkeypatch.setenv("PYDFN_DATA", str(places["env"]))
    return places


def test_lookup_order(everywhere, monkeypatch):
    assert find_fashion_mnist(everywhere["path"], download=False) == everywhere["path"]
    assert find_fashion_mnist(download=False) == everywhere["env"]
    monkeypatch.delenv("PYDFN_DATA")
    assert find_fashion_mnist(download=False) == everywhere["cache"]
    for path in everywhere["cache"].iterdir():
        path.unlink()
    assert find_fashion_mnist(download=False) == everywhere["system"]


def test_xdg_cache_home_and_home_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.fashion_mnist_cache_dir() == tmp_path / "xdg" / "pydfn" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.fashion_mnist_cache_dir() == tmp_path / "home" / ".cache" / "pydfn" / "fashion-mnist"


def test_bad_or_incomplete_places_are_skipped(everywhere, fake_fashion):
    spec = fake_fashion.specs["train_images"]
    (everywhere["env"] / f"{spec.name}.gz").write_bytes(b"\x1f\x8b broken")
    assert find_fashion_mnist(download=False) == everywhere["cache"]
    (everywhere["cache"] / f"{spec.name}.gz").unlink()
    assert find_fashion_mnist(download=False) == everywhere["system"]


@pytest.mark.parametrize("damage", ["corrupt", "missing", "no folder"])
def test_an_explicit_path_is_used_or_refused_never_replaced(everywhere, fake_fashion, damage):
    spec = fake_fashion.specs["train_images"]
    path = everywhere["path"]
    if damage == "corrupt":
        (path / f"{spec.name}.gz").write_bytes(b"\x1f\x8b broken")
    elif damage == "missing":
        (path / f"{spec.name}.gz").unlink()
    else:
        path = path / "nope"
    reason = {"corrupt": "bad gzip stream", "missing": f"{spec.name}.gz (or {spec.name}) missing",
              "no folder": "does not exist"}[damage]
    for call in (find_fashion_mnist, load_fashion_mnist):  # other places hold good copies
        with pytest.raises(FileNotFoundError, match=f"no verified Fashion-MNIST in {path}, the path given: .*"
                                                    + re.escape(reason)):
            call(path, download=False)


BROKEN = {
    "corrupt content": (lambda fake: gzip.compress(idx_bytes(fake.arrays["train_images"] ^ 1)), "content SHA-256 is"),
    "wrong shape": (lambda fake: gzip.compress(idx_bytes(fake.arrays["train_images"][:2])), "shape (2, 4, 4), expected"),
    "truncated": (lambda fake: fake.gz("train_images")[:-9], "bad gzip stream"),
    "empty": (lambda fake: b"", "empty file"),
}


@pytest.mark.parametrize("make, reason", BROKEN.values(), ids=BROKEN.keys())
def test_not_found_lists_every_place_and_the_fixes(fake_fashion, tmp_path, monkeypatch, make, reason):
    directory = fake_fashion.write(tmp_path / "env")
    broken = directory / f"{fake_fashion.specs['train_images'].name}.gz"
    broken.write_bytes(make(fake_fashion))
    monkeypatch.setenv("PYDFN_DATA", str(directory))
    fake_fashion.write(datasets.SYSTEM_DIR)
    (datasets.SYSTEM_DIR / f"{fake_fashion.specs['test_labels'].name}.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(download=False)
    message = str(info.value)
    for expected in ["path argument: not set", f"$PYDFN_DATA {directory}: {broken}: ", reason,
                     f"user cache {datasets.fashion_mnist_cache_dir()}: does not exist",
                     f"system package {datasets.SYSTEM_DIR}: t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte) missing",
                     "download: not attempted (download=False)",
                     "apt-get install dataset-fashion-mnist", "set PYDFN_DATA to a directory",
                     "download those files from"]:
        assert expected in message


def test_not_found_without_any_place_mentions_the_mirror(monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", ["http://mirror.invalid/fm/"])
    with pytest.raises(FileNotFoundError, match=r"(?s)path argument: not set.*\$PYDFN_DATA: not set.*"
                                                r"download those files from http://mirror.invalid/fm/"):
        load_fashion_mnist(download=False)


def test_no_mirror_left_is_reported_when_downloading():
    with pytest.raises(FileNotFoundError, match="could not download train-images-idx3-ubyte.gz: no mirrors"):
        load_fashion_mnist()


@pytest.fixture
def hash_calls(monkeypatch):
    """Counts content hashes: the verification cache should make repeated loads skip them."""
    calls = []
    real = datasets._content_sha256
    monkeypatch.setattr(datasets, "_content_sha256", lambda content: calls.append(1) or real(content))
    return calls


def test_verification_is_cached_until_a_file_changes(fake_fashion, tmp_path, hash_calls):
    directory = fake_fashion.write(tmp_path / "data")
    assert_loads(fake_fashion, load_fashion_mnist(directory))
    assert len(hash_calls) == 4
    assert_loads(fake_fashion, load_fashion_mnist(directory))
    assert len(hash_calls) == 4  # second load: size and mtime match, nothing hashed
    labels = directory / f"{fake_fashion.specs['test_labels'].name}.gz"
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))
    assert_loads(fake_fashion, load_fashion_mnist(directory))
    assert len(hash_calls) == 5  # only the touched file is verified again


def test_a_modified_file_is_caught_despite_the_cache(fake_fashion, tmp_path):
    directory = fake_fashion.write(tmp_path / "data")
    load_fashion_mnist(directory)
    images = directory / f"{fake_fashion.specs['train_images'].name}.gz"
    images.write_bytes(gzip.compress(idx_bytes(fake_fashion.arrays["train_images"] ^ 1)))
    os.utime(images, ns=(0, images.stat().st_mtime_ns + 10**9))  # even within the mtime granularity
    with pytest.raises(FileNotFoundError, match=f"{images}: content SHA-256 is"):
        load_fashion_mnist(directory, download=False)


def test_unreadable_verification_cache_is_ignored(fake_fashion, tmp_path, hash_calls):
    directory = fake_fashion.write(tmp_path / "data")
    registry = datasets.fashion_mnist_cache_dir().parent / "verified.json"
    registry.parent.mkdir(parents=True)
    registry.write_text("{not json")
    assert_loads(fake_fashion, load_fashion_mnist(directory))
    assert len(hash_calls) == 4
