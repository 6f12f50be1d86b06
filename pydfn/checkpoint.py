"""Checkpoints: a model in one ``.npz`` file, written atomically, read without pickle.

A checkpoint holds everything a fit needs to continue exactly where it was: the
architecture (sizes, activation, loss, penalties), the weights, the optimizer's kind,
hyper-parameters, state buffers and step count, the
state of the generator that shuffles the epochs, and the last fit's history.
Training a loaded model with ``model.optimizer`` then gives bit for bit the weights
an uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import zipfile
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from . import model as _model  # a cycle: model.py calls save(); resolved at call time
from ._validation import check_network_size, num_params
from .optim import Adam, from_config
from .training import History

if TYPE_CHECKING:
    from .model import MLP

FORMAT = "pydfn-checkpoint"
VERSION = 2  # 2 added the model's options and the optimizer's kind; 1 (Adam only) is still read


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
    s1, s2, step = model._net.get_optimizer_state()
    opt = model._optimizer
    history = getattr(model, "history", None)
    return {
        "format": np.array(FORMAT), "version": np.array(VERSION), "pydfn_version": np.array(_core.__version__),
        "layer_sizes": np.array(model.layer_sizes, dtype=np.int64),
        "options": np.array(json.dumps({"activation": model.activation, "loss": model.loss,
                                        "l1": model.l1, "l2": model.l2, "dropout": list(model.dropout),
                                        "seed": model.seed,  # of the dropout masks
                                        "precision": model.precision})),
        "params": model._net.get_params(),
        # the optimizer's state buffers s1, s2 (Adam's m and v) keep their version-1 names
        "adam_m": s1, "adam_v": s2, "adam_step": np.array(step, dtype=np.int64),
        # empty when the model was never trained: loading then sets no optimizer
        "optimizer": np.array(json.dumps({"kind": opt.kind, "config": opt.get_config()}) if opt else ""),
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
            if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:  # np.load would read the whole array, whatever its size
                raise ValueError("it holds a single array, not an .npz archive")
            f.seek(0)
            data = np.load(f, allow_pickle=False)  # never unpickle: a checkpoint cannot run code
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            _check_sizes(data)
            arrays = {key: data[key] for key in data.files}
        # What zipfile and np.load raise for hostile bytes (the fuzz tests found each kind):
        # encrypted or exotic zip members, corrupt headers and streams.
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError, OverflowError, KeyError, IndexError, struct.error) as exc:
            raise ValueError(f"{path} is not a readable pydfn checkpoint (truncated or not an .npz file: {exc})"
                             ) from None
    try:
        return from_arrays(arrays)
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{path} is not a valid pydfn checkpoint: {exc}") from None


_NPY_MAGIC = b"\x93NUMPY"
_SMALL_MEMBER = 64 << 20  # bytes: any entry that is not per-parameter (history, RNG state, ...)


def _check_sizes(data: np.lib.npyio.NpzFile) -> None:
    """Refuse, before decompressing anything big, an archive whose entries could not
    belong to a network that fits in RAM: a few-kB zip bomb must not take gigabytes."""
    assert data.zip is not None  # an NpzFile open for reading
    infos = {info.filename: info for info in data.zip.infolist()}
    info = infos.get("layer_sizes.npy")
    if info is None:
        return  # from_arrays names what is missing
    if info.file_size > 1 << 20:
        raise ValueError(f"layer_sizes takes {info.file_size} bytes")
    sizes = data["layer_sizes"]
    try:
        n = num_params(check_network_size([int(s) for s in sizes]))
    except (ValueError, TypeError, MemoryError):
        n = 0  # only small entries are read; from_arrays then says what is wrong with layer_sizes
    # Room for a few per-parameter arrays (float32 today; float64 allowed) beside the small entries.
    limit = _SMALL_MEMBER + 8 * n + 4096
    total = sum(i.file_size for i in infos.values())
    if total > 4 * limit:
        raise ValueError(f"its entries decompress to {total:,} bytes, far more than its layers need")
    for name, i in infos.items():
        if i.file_size > limit:
            raise ValueError(f"{name} decompresses to {i.file_size:,} bytes, more than its layers need")


def from_arrays(arrays: dict[str, np.ndarray]) -> MLP:
    """The model that :func:`to_arrays` described (ValueError, TypeError or KeyError if it does
    not fit; also OverflowError, RecursionError or MemoryError for hostile contents)."""
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise ValueError(f"an .npz file without pydfn's format tag (it holds {sorted(arrays)})")
    version = int(arrays["version"])
    if version not in (1, VERSION):
        raise ValueError(f"format version {version} (from pydfn {arrays['pydfn_version']}); "
                         f"this pydfn reads versions 1 and {VERSION}")
    stored = arrays["layer_sizes"]
    if stored.ndim != 1 or stored.dtype.kind not in "iu":
        raise ValueError(f"layer_sizes must be a 1-D integer array, got {stored.dtype} of shape {stored.shape}")
    options = _json_object(arrays["options"], "options") if version >= 2 else {}
    sizes = check_network_size([int(s) for s in stored])
    n = num_params(sizes)
    for key in ("params", "adam_m", "adam_v"):  # checked before the model allocates anything
        a = arrays[key]
        if a.dtype != np.float32 or a.shape != (n,):
            raise ValueError(f"{key} must be float32 of shape ({n},) for layers {sizes}, "
                             f"got {a.dtype} of shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{key} contains NaN or infinity")
    model = _model.MLP(sizes, **options)
    step = int(arrays["adam_step"])
    if step < 0:
        raise ValueError(f"adam_step must be >= 0, got {step}")
    model._net.set_params(arrays["params"])
    model._net.set_optimizer_state(arrays["adam_m"], arrays["adam_v"], step)
    # the state above belongs to this optimizer
    if version == 1:
        hyper = arrays["adam_hyperparameters"]
        model._optimizer = Adam(*(float(h) for h in hyper)) if hyper.size else None
    else:
        text = str(arrays["optimizer"])
        opt = _json_object(arrays["optimizer"], "optimizer") if text else None
        model._optimizer = from_config(opt["kind"], opt["config"]) if opt else None
    model._rng.bit_generator.state = json.loads(str(arrays["rng_state"]))
    text = str(arrays["history"])
    model.history = _history_from_dict(json.loads(text)) if text else None
    return model


def _json_object(entry: np.ndarray, name: str) -> dict[str, Any]:
    value = json.loads(str(entry))
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _history_to_dict(history: History) -> dict[str, Any]:
    return {"params": history.params, "history": history.history, "epoch": history.epoch,
            "stop_reason": history.stop_reason}


def _history_from_dict(d: Any) -> History:
    # Checked field by field: a hostile file must not plant a History that breaks later.
    if not isinstance(d, dict) or not isinstance(d.get("params"), dict):
        raise ValueError("history must be a JSON object with a params object")
    values, epoch, reason = d["history"], d["epoch"], d["stop_reason"]
    if not (isinstance(values, dict) and all(isinstance(v, list) and all(_is_number(x) for x in v)
                                             for v in values.values())):
        raise ValueError("history.history must map metric names to lists of numbers")
    if not (isinstance(epoch, list) and all(isinstance(e, int) and not isinstance(e, bool) for e in epoch)):
        raise ValueError("history.epoch must be a list of integers")
    if reason is not None and not isinstance(reason, str):
        raise ValueError("history.stop_reason must be a string or null")
    history = History(d["params"])
    history.history, history.epoch, history.stop_reason = values, epoch, reason
    return history


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
