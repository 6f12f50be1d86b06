"""What pydfn runs on: its version, the CPU kernels it picked, its threads."""

from __future__ import annotations

import os
from typing import Any

from . import _core
from ._validation import positive_int

MAX_THREADS = 1024  # far beyond the cores of any machine pydfn targets: more only oversubscribes


def set_num_threads(n: int) -> None:
    """Set the core's thread count, 1 <= n <= 1024; it overrides ``OMP_NUM_THREADS``.

    Results are bitwise the same for any count.
    """
    _core.set_num_threads(positive_int(n, "threads", maximum=MAX_THREADS))


def get_num_threads() -> int:
    """The core's thread count: set_num_threads()'s, else ``OMP_NUM_THREADS``, else all cores."""
    return _core.get_num_threads()


def info() -> dict[str, Any]:
    """The build and the machine as pydfn sees them.

    Returns
    -------
    dict
        ``version``; ``kernels``: the instruction set of the kernels in use
        (``"avx512bf16"`` (AVX-512 with bf16 dot products), ``"avx512"``, ``"avx2"`` or
        ``"generic"``); ``cpu_kernels``: the best this CPU
        could run; ``max_isa``: the ``PYDFN_MAX_ISA`` cap, or None; ``threads``: the
        core's thread count; ``openmp``: whether the core was built with OpenMP.
    """
    return {"version": _core.__version__, "kernels": _core.isa(), "cpu_kernels": _core.hardware_isa(),
            "max_isa": os.environ.get("PYDFN_MAX_ISA") or None, "threads": get_num_threads(),
            "openmp": _core.has_openmp()}
