"""Runtime ISA dispatch: every ISA this CPU runs trains correctly and deterministically.

Each ISA is forced with PYDFN_MAX_ISA in a fresh interpreter (the choice is made
once, at import), so a crash there fails the test rather than the run.
"""

import json
import os

import pytest

from pydfn import _core
from pydfn._core import testing

from _subprocess import run_python

ALL_ISAS = ["generic", "avx2", "avx512", "avx512bf16", "amx"]

CHILD = r"""
import json, numpy as np, pydfn
from pydfn import _core
from pydfn.reference import ReferenceAdam, ReferenceMLP, train_epoch
rng = np.random.default_rng(0)
x = rng.standard_normal((700, 60)).astype(np.float32); y = rng.integers(0, 10, 700)
runs = []
for threads in (1, 2):
    pydfn.set_num_threads(threads)
    model = pydfn.MLP([60, 33, 17, 10], seed=4)
    model.train_epoch(x, y, pydfn.Adam(), batch_size=64, seed=9)
    runs.append(model.get_weights())
ref = ReferenceMLP([60, 33, 17, 10], seed=4)
train_epoch(ref, ReferenceAdam(ref.params), x, y, np.random.default_rng(9).permutation(700), 64)
print(json.dumps({
    "isa": _core.isa(),
    "info": pydfn.info(),
    "bitwise_same_for_1_and_2_threads": all(np.array_equal(a, b) for a, b in zip(*runs)),
    "max_rel_diff_vs_reference": max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(runs[0], ref.params)),
}))
"""


def run_with_cap(cap):
    return json.loads(run_python(CHILD, PYDFN_MAX_ISA=cap))


def uncapped_isa():
    """The kernels pydfn picks without a cap: the hardware's, but avx512bf16 where a CPU with
    AMX was refused its tiles (amx is then not among the kernel sets it runs)."""
    hardware = _core.hardware_isa()
    return "avx512bf16" if hardware == "amx" and "amx" not in _core.kernel_names() else hardware


@pytest.mark.parametrize("isa", ALL_ISAS)
def test_each_isa_trains_like_the_reference_and_is_thread_invariant(isa):
    if isa not in _core.kernel_names():
        pytest.skip(f"this CPU cannot run {isa} (it runs {_core.hardware_isa()})")
    result = run_with_cap(isa)
    assert result["isa"] == isa
    info = result["info"]
    assert info.pop("threads") >= 1
    note = info.pop("isa_note")  # a refusal is not asked for (nor said) under a cap below amx
    assert note in (None, _core.isa_note())
    assert info == {"version": _core.__version__, "kernels": isa, "cpu_kernels": _core.hardware_isa(),
                    "max_isa": isa, "openmp": _core.has_openmp()}
    assert result["bitwise_same_for_1_and_2_threads"]
    assert result["max_rel_diff_vs_reference"] < 1e-4


def test_the_best_isa_is_chosen_without_a_cap():
    assert _core.isa() == uncapped_isa() or "PYDFN_MAX_ISA" in os.environ
    assert _core.kernel_names()[0] == "reference" and _core.isa() in _core.kernel_names()


UNKNOWN_CAP = """
import json, subprocess, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import pydfn
cli = subprocess.run([sys.executable, "-m", "pydfn", "info"], capture_output=True, text=True)
print(json.dumps({"info": pydfn.info(), "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
                  "cli": cli.stdout, "cli_stderr": cli.stderr}))
"""


@pytest.mark.parametrize("cap", ["sse9", "avx", "avx-512"])
def test_an_unknown_cap_is_ignored_with_a_warning_and_info_says_what_runs(cap):
    out = json.loads(run_python(UNKNOWN_CAP, PYDFN_MAX_ISA=cap))
    best = uncapped_isa()
    assert out["info"]["kernels"] == best and out["info"]["max_isa"] is None
    assert out["warnings"] == [f"RuntimeWarning: PYDFN_MAX_ISA='{cap}' is not one of generic, avx2, avx512, "
                               f"avx512bf16, amx: ignored, pydfn runs its {best} kernels"]
    assert f"CPU kernels: {best} (this CPU runs up to {_core.hardware_isa()})\n" in out["cli"]
    assert "PYDFN_MAX_ISA" in out["cli_stderr"]  # the CLI's own import warns too


def test_an_empty_cap_is_no_cap():
    out = json.loads(run_python(UNKNOWN_CAP, PYDFN_MAX_ISA=""))
    assert out["warnings"] == [] and out["info"]["kernels"] == uncapped_isa()
    assert out["info"]["max_isa"] is None


def test_a_cap_in_any_case_is_honoured_and_reported():
    out = json.loads(run_python(UNKNOWN_CAP, PYDFN_MAX_ISA="GENERIC"))
    assert out["warnings"] == [] and out["info"]["kernels"] == "generic" and out["info"]["max_isa"] == "generic"
    capped = _core.hardware_isa() != "generic"
    assert (f"CPU kernels: generic (this CPU runs up to {_core.hardware_isa()}"
            + ("; capped by PYDFN_MAX_ISA=generic)" if capped else ")")) in out["cli"]


def test_missing_isa_kernels_are_refused():
    missing = [isa for isa in ALL_ISAS if isa not in _core.kernel_names()]
    if not missing:
        pytest.skip("this CPU runs every ISA pydfn has")
    import numpy as np
    with pytest.raises(ValueError, match="cannot run on this CPU"):
        testing.sgemm_nn(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), kernels=missing[0])
