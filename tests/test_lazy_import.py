"""`import pydfn` loads only the core API: the optional submodules (and matplotlib,
scikit-learn, mpi4py, the download machinery) load on first use, and still work as
attributes of the package."""

from __future__ import annotations

import json

import pytest

import pydfn
from _subprocess import run_python

LAZY = ["pydfn.datafile", "pydfn.datasets", "pydfn.distributed", "pydfn.plot", "pydfn.reference", "pydfn.sklearn"]
HEAVY = ["matplotlib", "sklearn", "mpi4py", "urllib.request", "http.client", "pydfn.cli"]


def test_a_fresh_import_loads_none_of_the_lazy_modules():
    loaded = json.loads(run_python(f"""
import json, sys
import pydfn
model = pydfn.MLP([4, 3, 2])
print(json.dumps(sorted(m for m in {LAZY + HEAVY!r} if m in sys.modules)))
"""))
    assert loaded == []


def test_lazy_submodules_load_on_first_use_and_are_listed():
    report = json.loads(run_python("""
import json, sys
import pydfn
listed = all(n in dir(pydfn) for n in ("datasets", "plot", "reference", "sklearn", "distributed", "datafile"))
before = "pydfn.reference" in sys.modules
ref = pydfn.reference
from pydfn import plot
print(json.dumps({"listed": listed, "before": before, "after": "pydfn.reference" in sys.modules,
                  "same": ref is sys.modules["pydfn.reference"] and plot is sys.modules["pydfn.plot"],
                  "star": sorted(set(pydfn.__all__) - set(vars(pydfn)) - {"datasets", "plot", "reference"})}))
"""))
    assert report == {"listed": True, "before": False, "after": True, "same": True, "star": []}


def test_every_name_in_all_exists_once():
    assert len(pydfn.__all__) == len(set(pydfn.__all__))
    missing = [name for name in pydfn.__all__ if not hasattr(pydfn, name)]
    assert missing == []


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pydfn.nope  # noqa: B018
