"""Checkpoints: save a model to one ``.npz`` file and load it back, to continue training exactly.

``model.save(path)`` writes, atomically, everything a fit needs to continue where it
was: architecture and options, weights, the optimizer (kind, hyper-parameters, its
state buffers by name and step count), the shuffling generator's state and the last
fit's history. :func:`load` reads it without pickle (a checkpoint cannot run code)
and refuses truncated, corrupt or hostile files with a ValueError naming the file.
Training the loaded model with ``model.optimizer``, or an equal optimizer, gives
bit for bit the weights an uninterrupted run would have. The format is described in
:mod:`pydfn._checkpoint`; files of every earlier version are read.
"""

from __future__ import annotations

import os

from ._checkpoint import FORMAT, VERSION
from .model import MLP, load

__all__ = ["FORMAT", "VERSION", "load", "save"]


def save(model: MLP, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path``: the same as ``model.save(path)``."""
    model.save(path)
