"""Checkpoints: a model in one ``.npz`` file, written atomically, read without pickle.

A checkpoint holds everything a fit needs to continue exactly where it was: the
architecture, the weights, the Adam moments, step count and hyper-parameters, the
state of the generator that shuffles the epochs, and the last fit's history.
Training a loaded model with ``model.optimizer`` then gives bit for bit the weights
an uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from . import model as _model  # a cycle: model.py calls save(); resolved at call time
from .optim import Adam
from .training import History

if TYPE_CHECKING:
    from .model import MLP

FORMAT = "pydfn-checkpoint"
VERSION = 1


def save(model: MLP, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` (an ``.npz`` file, written as named) atomically.

    The file is written beside its destination under a temporary name, flushed to
    disk, then renamed over ``path``: a crash mid-save leaves the previous file whole.
    """
    path = os.fspath(path)
    arrays: dict[str, Any] = to_arrays(model)  # Any: numpy's stub takes **kwds for allow_pickle
    tmp = f"{path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"  # same folder, so the rename is atomic
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_arrays(model: MLP) -> dict[str, np.ndarray]:
    """The checkpoint's contents as named arrays (what :func:`save` writes and
    :func:`from_arrays` reads): also the pickled state of the scikit-learn estimators."""
    m, v, step = model._net.get_adam_state()
    history = getattr(model, "history", None)
    return {
        "format": np.array(FORMAT), "version": np.array(VERSION), "pydfn_version": np.array(_core.__version__),
        "layer_sizes": np.array(model.layer_sizes, dtype=np.int64),
        "params": model._net.get_params(),
        "adam_m": m, "adam_v": v, "adam_step": np.array(step, dtype=np.int64),
        # empty when the model was never trained: loading then sets no optimizer
        "adam_hyperparameters": np.array(model._optimizer.hyperparameters() if model._optimizer else [],
                                         dtype=np.float64),
        "rng_state": np.array(json.dumps(model._rng.bit_generator.state)),  # 128-bit ints: JSON keeps them
        "history": np.array(json.dumps(_history_to_dict(history)) if history is not None else ""),
    }


def load(path: str | os.PathLike[str]) -> MLP:
    """Read a model written by :meth:`pydfn.MLP.save`.

    Returns
    -------
    MLP
        With its weights, its Adam state (continue training with ``model.optimizer``
        to resume exactly), its shuffling generator and its ``history``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated or corrupt, is not a pydfn checkpoint, or its
        contents do not fit together.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:  # ours to close: np.load leaks the file it opened when the zip is bad
        try:
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            arrays = {key: data[key] for key in data.files}
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"{path} is not a readable pydfn checkpoint (truncated or not an .npz file: {exc})"
                             ) from None
    try:
        return from_arrays(arrays)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path} is not a valid pydfn checkpoint: {exc}") from None


def from_arrays(arrays: dict[str, np.ndarray]) -> MLP:
    """The model that :func:`to_arrays` described (ValueError, TypeError or KeyError if it does not fit)."""
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise ValueError(f"an .npz file without pydfn's format tag (it holds {sorted(arrays)})")
    if int(arrays["version"]) != VERSION:
        raise ValueError(f"format version {int(arrays['version'])} (from pydfn {arrays['pydfn_version']}); "
                         f"this pydfn reads version {VERSION}")
    sizes = arrays["layer_sizes"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise ValueError(f"layer_sizes must be a 1-D integer array, got {sizes.dtype} of shape {sizes.shape}")
    model = _model.MLP([int(s) for s in sizes])
    n = model._net.num_params
    for key in ("params", "adam_m", "adam_v"):
        a = arrays[key]
        if a.dtype != np.float32 or a.shape != (n,):
            raise ValueError(f"{key} must be float32 of shape ({n},) for layers {model.layer_sizes}, "
                             f"got {a.dtype} of shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{key} contains NaN or infinity")
    step = int(arrays["adam_step"])
    if step < 0:
        raise ValueError(f"adam_step must be >= 0, got {step}")
    model._net.set_params(arrays["params"])
    model._net.set_adam_state(arrays["adam_m"], arrays["adam_v"], step)
    hyper = arrays["adam_hyperparameters"]
    if hyper.size:
        model._optimizer = Adam(*(float(h) for h in hyper))  # the state above belongs to it
    model._rng.bit_generator.state = json.loads(str(arrays["rng_state"]))
    text = str(arrays["history"])
    model.history = _history_from_dict(json.loads(text)) if text else None
    return model


def _history_to_dict(history: History) -> dict[str, Any]:
    return {"params": history.params, "history": history.history, "epoch": history.epoch,
            "stop_reason": history.stop_reason}


def _history_from_dict(d: dict[str, Any]) -> History:
    history = History(d["params"])
    history.history, history.epoch, history.stop_reason = d["history"], d["epoch"], d["stop_reason"]
    return history
