"""What pydfn runs on: its version, the CPU kernels it picked, its threads; where its C API is."""

from __future__ import annotations

import os
import warnings
from typing import Any

from . import _core
from ._validation import positive_int

MAX_THREADS = _core.MAX_THREADS  # far beyond the cores of any machine pydfn targets

# An OMP_NUM_THREADS or PYDFN_MAX_ISA pydfn cannot follow is said once, at import.
for _problem in _core.environment_problems():
    warnings.warn(_problem, RuntimeWarning, stacklevel=2)


def set_num_threads(n: int) -> None:
    """Set pydfn's thread count, 1 <= n <= 1024; it overrides ``OMP_NUM_THREADS``.

    The count is pydfn's own: other libraries setting OpenMP's count
    (``torch.set_num_threads``, ``omp_set_num_threads``) do not change it, nor
    does it change theirs. Results are bitwise the same for any count.
    """
    _core.set_num_threads(positive_int(n, "threads", maximum=MAX_THREADS))


def get_num_threads() -> int:
    """pydfn's thread count.

    set_num_threads()'s count; until it is called, OpenMP's (``OMP_NUM_THREADS``,
    threadpoolctl's limits, else all cores), at most 4 per core. Never more than
    ``OMP_THREAD_LIMIT``, and fewer when the system cannot start that many threads
    (``ulimit -u``, ``OMP_STACKSIZE`` too large): pydfn then runs with those it could
    start instead of failing.
    """
    return _core.get_num_threads()


def info() -> dict[str, Any]:
    """The build and the machine as pydfn sees them.

    Returns
    -------
    dict
        ``version``; ``kernels``: the instruction set of the kernels in use
        (``"amx"`` (AVX-512 and AVX512_BF16, with the bf16 products on AMX tiles),
        ``"avx512bf16"`` (AVX-512 with bf16 dot products), ``"avx512"``, ``"avx2"`` or
        ``"generic"``); ``cpu_kernels``: the best this CPU could run; ``isa_note``: why this
        CPU's AMX tiles go unused (this build has no tile kernels, the OS does not enable
        them, or refused them to this process), else None; ``max_isa``: the ISA ``PYDFN_MAX_ISA`` names, or None when it
        is unset or names none (an unknown value is ignored, with a warning at import);
        ``threads``: the core's thread count; ``openmp``: whether the core was built with
        OpenMP.
    """
    return {"version": _core.__version__, "kernels": _core.isa(), "cpu_kernels": _core.hardware_isa(),
            "isa_note": _core.isa_note(), "max_isa": _core.max_isa(), "threads": get_num_threads(), "openmp": _core.has_openmp()}


_HERE = os.path.dirname(os.path.abspath(__file__))


def get_include() -> str:
    """The folder of ``pydfn.h``, the C API's header (as ``numpy.get_include()``)."""
    return os.path.join(_HERE, "include")


def get_library_dir() -> str:
    """The folder of ``libpydfn.so``, the C API's library: link with ``-L`` it and ``-lpydfn``,
    and let the program find it at run time (an rpath, or ``LD_LIBRARY_PATH``)."""
    return os.path.join(_HERE, "lib")


def get_cmake_dir() -> str:
    """The folder of pydfn's CMake package: ``cmake -Dpydfn_DIR=<it>``, then
    ``find_package(pydfn CONFIG REQUIRED)`` and ``target_link_libraries(app PRIVATE pydfn::pydfn)``."""
    return os.path.join(_HERE, "lib", "cmake", "pydfn")
