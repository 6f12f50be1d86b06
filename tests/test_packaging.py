"""What `pip install` put on disk: numpy as the only runtime dependency, the typing files,
the compiled modules, the C API (header, library, CMake package), and nothing else (no tests, data, sources or build leftovers).
Building the sdist and wheel themselves takes minutes: .ci/packaging does that."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

try:
    FILES = [str(f) for f in metadata.files("pydfn") or []]
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    FILES = []

pytestmark = pytest.mark.skipif(not FILES, reason="pydfn is not installed with its metadata")

# Installed, unpacked: the core is in it twice, in _core (for Python) and in libpydfn.so (the C
# API, usable without Python). The wheel itself, compressed, stays under 2 MB (.ci/packaging).
INSTALLED_LIMIT = 3 * 1024 * 1024


def package_files() -> list[str]:
    return [f for f in FILES if f.startswith("pydfn/")]


def test_numpy_is_the_only_runtime_dependency():
    requires = metadata.requires("pydfn") or []
    runtime = [r for r in requires if "extra ==" not in r]
    assert [re.split(r"[ <>=!~;\[]", r)[0] for r in runtime] == ["numpy"]
    extras = metadata.metadata("pydfn").get_all("Provides-Extra") or []
    assert {"sklearn", "onnx"} <= set(extras)


def test_the_installed_package_holds_only_the_package():
    files = package_files()
    names = {f.rsplit("/", 1)[-1] for f in files}
    assert {"__init__.py", "py.typed", "_core.pyi", "sklearn.py"} <= names
    assert any(re.match(r"_core\..*(so|pyd)$", n) for n in names)
    assert any(re.match(r"_data\..*(so|pyd)$", n) for n in names)
    c_api = {"pydfn/include/pydfn.h", "pydfn/lib/libpydfn.so"} | {
        f"pydfn/lib/cmake/pydfn/{name}.cmake"
        for name in ("pydfnConfig", "pydfnConfigVersion", "pydfnTargets", "pydfnTargets-release")}
    assert c_api <= set(files)
    leftovers = [f for f in set(files) - c_api if not re.search(r"(\.py|\.pyi|py\.typed|\.so|\.pyd|\.pyc)$", f)
                 or "/tests/" in f or f.endswith(".pyx")]
    assert leftovers == []
    others = [f for f in FILES if not f.startswith(("pydfn/", "pydfn-")) and not f.startswith("../")]
    assert others == []  # e.g. no top-level tests/ or benchmarks/ package


def test_the_installed_package_is_small():
    size = sum(f.size or 0 for f in metadata.files("pydfn") or [] if str(f).startswith("pydfn/"))
    assert 0 < size < INSTALLED_LIMIT, f"{size} bytes"
