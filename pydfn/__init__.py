"""pydfn: fast, reproducible training of deep feedforward networks on the CPU."""

from . import callbacks, checkpoint, datasets, metrics, plot, reference
from ._core import __version__
from .augment import Augment
from .history import History
from .model import MLP, load
from .optim import SGD, Adam, AdamW, Optimizer, RMSProp
from .system import get_num_threads, info, set_num_threads

__all__ = ["MLP", "Augment", "Adam", "AdamW", "SGD", "RMSProp", "Optimizer", "History", "load", "callbacks",
           "datasets", "metrics", "plot", "reference", "get_num_threads", "set_num_threads", "info", "__version__"]
