"""Checkpoints: save a model to one ``.npz`` file and load it back, to continue training exactly.

``model.save(path)`` writes, atomically, everything a fit needs to continue where it
was: architecture and options, weights, the optimizer (kind, hyper-parameters, its
state buffers by name and step count), the shuffling generator's state and the last
fit's history. :func:`pydfn.load` reads it without pickle (a checkpoint cannot run code)
and refuses truncated, corrupt or hostile files with a ValueError naming the file.
Training the loaded model with ``model.optimizer``, or an equal optimizer, gives
bit for bit the weights an uninterrupted run would have. The format is described in
:mod:`pydfn._checkpoint`; it also reads version 2, which pydfn 0.1.0 wrote.
Save with ``model.save(path)`` (or pickle the model), load with :func:`pydfn.load`.
"""

from ._checkpoint import FORMAT, VERSION

__all__ = ["FORMAT", "VERSION"]
