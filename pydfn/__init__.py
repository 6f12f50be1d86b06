"""pydfn: fast, reproducible training of deep feedforward networks on the CPU."""

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from . import callbacks, checkpoint, metrics, schedules
from ._core import __version__
from .augment import Augment
from .history import History
from .model import MLP, load
from .optim import SGD, Adam, AdamW, Optimizer, RMSProp
from .system import get_cmake_dir, get_include, get_library_dir, get_num_threads, info, set_num_threads

if TYPE_CHECKING:  # for type checkers; at run time they load on first use
    from . import datafile, datasets, distributed, plot, reference, sklearn

# Submodules a user of the core API does not need, loaded on first use: the download
# machinery, the NumPy oracle, plotting (matplotlib), scikit-learn and MPI.
_LAZY = ("datafile", "datasets", "distributed", "plot", "reference", "sklearn")

__all__ = ["MLP", "Augment", "Adam", "AdamW", "SGD", "RMSProp", "Optimizer", "History", "load", "callbacks",
           "schedules", "datasets", "metrics", "plot", "reference", "get_num_threads", "set_num_threads", "info",
           "get_include", "get_library_dir", "get_cmake_dir", "__version__"]


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)  # also binds it in this module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
