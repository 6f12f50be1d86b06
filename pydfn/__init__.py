"""pydfn: fast, reproducible training of deep feedforward networks on the CPU."""

from . import datasets, reference
from ._core import __version__, get_num_threads, set_num_threads
from .model import MLP
from .optim import Adam

__all__ = ["MLP", "Adam", "datasets", "reference", "get_num_threads", "set_num_threads", "__version__"]
