"""The checkpoint format: a model as named arrays in one ``.npz`` file, written atomically,
read without pickle (the public face is :mod:`pydfn.checkpoint`).

A checkpoint holds everything a fit needs to continue exactly where it was: the
architecture and options (sizes, activation, loss, penalties, dropout, seed), the
weights, the optimizer's kind and hyper-parameters, its state buffers under their
names (``optimizer.m``, ``optimizer.v``; ``optimizer.momentum``;
``optimizer.square_avg``) and step count (``optimizer.step``), the state of the
generator that shuffles the epochs, the last fit's history and, optionally, the
names of the classes (``class_names``, a JSON list; absent when they have none). Training a loaded
model with ``model.optimizer`` (or an equal optimizer) then gives bit for bit the
weights an uninterrupted run would have. Pickling a model stores the same arrays.

Versions: 3 (this one) names the optimizer's state; 2 (pydfn 0.1.0) stored any
optimizer's two buffers as ``adam_m``/``adam_v``. Both are read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from . import _core
from ._atomic import write_atomically
from ._engine import EngineState
from ._npz import open_npz
from ._validation import check_network_size, num_params, printable, regular_file
from .history import History
from .optim import Optimizer, from_config

FORMAT = "pydfn-checkpoint"
VERSION = 3
# Where version 2 kept each named buffer: the core's two state buffers.
_LEGACY_KEYS = {"m": "adam_m", "v": "adam_v", "momentum": "adam_m", "square_avg": "adam_v"}


@dataclasses.dataclass
class ModelState:
    """A model as a checkpoint describes it: architecture, engine state, history."""

    layer_sizes: list[int]
    options: dict[str, Any]  # MLP's keyword arguments: activation, loss, l1, l2, dropout, seed
    engine: EngineState
    history: History | None
    class_names: list[str] | None = None  # the label of each output, when the classes have names


def save(state: ModelState, path: str | os.PathLike[str]) -> None:
    """Write ``state`` (``MLP.save`` gives its own) to ``path`` (an ``.npz`` file, written as
    named) atomically.

    The file is written beside its destination under a temporary name, flushed to
    disk, then renamed over ``path``: a crash mid-save leaves the previous file whole.
    """
    arrays: dict[str, Any] = to_arrays(state)  # Any: numpy's stub takes **kwds for allow_pickle
    write_atomically(path, lambda f: np.savez(f, **arrays))


def to_arrays(state: ModelState) -> dict[str, np.ndarray]:
    """The checkpoint's contents as named arrays (what :func:`save` writes and
    :func:`from_arrays` reads; also a pickled model's state)."""
    engine, opt = state.engine, state.engine.optimizer
    arrays = {
        "format": np.array(FORMAT), "version": np.array(VERSION), "pydfn_version": np.array(_core.__version__),
        "layer_sizes": np.array(state.layer_sizes, dtype=np.int64),
        "options": np.array(json.dumps(state.options)),  # options["seed"] also seeds the dropout masks
        "params": engine.params,
        # empty when the model was never trained: loading then binds no optimizer
        "optimizer": np.array(json.dumps({"kind": opt.kind, "config": opt.get_config()}) if opt else ""),
        "optimizer.step": np.array(engine.step, dtype=np.int64),
        "rng_state": np.array(json.dumps(engine.rng_state)),  # 128-bit ints: JSON keeps them
        "history": np.array(json.dumps(state.history.to_dict()) if state.history is not None else ""),
    }
    if state.class_names is not None:  # optional: files without it (older ones too) have unnamed classes
        arrays["class_names"] = np.array(json.dumps(state.class_names))
    arrays.update({f"optimizer.{name}": buffer for name, buffer in engine.optimizer_state.items()})
    return arrays


def read_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The named arrays of the checkpoint at ``path``, read safely (no pickle, no zip bomb).

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` names no file.
    ValueError
        If the file is truncated or corrupt, not an ``.npz`` archive, or not a regular file
        (a FIFO or device).
    """
    path = regular_file(path)
    try:
        with open_npz(path) as data:  # never unpickling: a checkpoint cannot run code
            _check_sizes(data)
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        raise ValueError(f"{printable(path)} is not a readable pydfn checkpoint (truncated or not an .npz file: "
                         f"{exc})") from None


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


class _Entries(dict[str, np.ndarray]):
    """A checkpoint's arrays by name: a missing one is a ValueError naming it."""

    def __missing__(self, key: str) -> np.ndarray:
        raise ValueError(f"no entry {key!r} (the entries are {sorted(self)})")


def from_arrays(arrays: dict[str, np.ndarray]) -> ModelState:
    """The model that :func:`to_arrays` (of any version) described: ValueError or TypeError if
    it does not fit; also OverflowError or MemoryError for hostile contents. Building the
    model (``MLP(layer_sizes, **options)``) checks the options."""
    if not isinstance(arrays, dict):  # e.g. a hand-made pickle
        raise TypeError(f"a model's state must be a dict of named arrays, got {type(arrays).__name__}")
    arrays = _Entries({key: np.asarray(value) for key, value in arrays.items()})
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise ValueError(f"an .npz file without pydfn's format tag (it holds {sorted(arrays)})")
    version = _integer(arrays, "version")
    if version not in (2, VERSION):
        raise ValueError(f"format version {version} (from pydfn {arrays['pydfn_version']}); "
                         f"this pydfn reads versions 2 (pydfn 0.1.0's) and {VERSION}")
    stored = arrays["layer_sizes"]
    if stored.ndim != 1 or stored.dtype.kind not in "iu":
        raise ValueError(f"layer_sizes must be a 1-D integer array, got {stored.dtype} of shape {stored.shape}")
    options = _json_object(arrays, "options")
    sizes = check_network_size([int(s) for s in stored])
    optimizer = _optimizer(arrays)
    names = optimizer.state_names if optimizer else ()
    if version >= 3:
        keys = {name: f"optimizer.{name}" for name in names}
        step_key = "optimizer.step"
    else:  # both buffers were always written: check both, keep the optimizer's
        keys = {name: _LEGACY_KEYS[name] for name in names}
        _check_parameter_array(arrays, "adam_m", sizes)
        _check_parameter_array(arrays, "adam_v", sizes)
        step_key = "adam_step"
    params = _check_parameter_array(arrays, "params", sizes)  # checked before the model allocates anything
    buffers = {name: _check_parameter_array(arrays, key, sizes) for name, key in keys.items()}
    step = _integer(arrays, step_key)
    if not 0 <= step <= _core.MAX_OPT_STEP:  # the core's own limit, so the loaded model can train
        raise ValueError(f"{step_key} must be in [0, {_core.MAX_OPT_STEP}] (what training can reach), got {step}")
    if optimizer is None and step != 0:
        raise ValueError(f"{step_key} is {step} but the checkpoint has no optimizer (never trained)")
    rng_state = _rng_state(_json_object(arrays, "rng_state"))
    history = History.from_dict(_json(arrays, "history")) if str(arrays["history"]) else None
    class_names = _json(arrays, "class_names") if "class_names" in arrays else None
    if class_names is not None and (not isinstance(class_names, list)
                                    or not all(isinstance(n, str) for n in class_names)):
        raise ValueError("class_names must be a JSON list of strings")
    return ModelState(sizes, options, EngineState(params, optimizer, buffers, step, rng_state), history,
                      class_names)


def _integer(arrays: dict[str, np.ndarray], key: str) -> int:
    """A 0-d integer entry as int (a float or an array there is a corrupt file, not a value to round)."""
    a = arrays[key]
    if a.shape != () or a.dtype.kind not in "iu":
        raise ValueError(f"{key} must be a single integer, got {a.dtype} of shape {a.shape}")
    return int(a)


def _rng_state(state: dict[str, Any]) -> dict[str, Any]:
    """The shuffling generator's state, checked field by field: a PCG64 state as NumPy writes it."""
    inner = state.get("state")
    fields_ok = (state.get("bit_generator") == "PCG64" and isinstance(inner, dict)
                 and set(inner) == {"state", "inc"} and set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
                 and all(_int_in(inner[k], 2**128) for k in ("state", "inc"))
                 and _int_in(state["has_uint32"], 2) and _int_in(state["uinteger"], 2**32))
    if not fields_ok:
        raise ValueError(f"rng_state must be a PCG64 generator state as NumPy writes it, got {str(state)[:200]}")
    return state


def _int_in(value: Any, end: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < end


def _check_parameter_array(arrays: dict[str, np.ndarray], key: str, sizes: list[int]) -> np.ndarray:
    n = num_params(sizes)
    a = arrays[key]
    if a.dtype != np.float32 or a.shape != (n,):
        raise ValueError(f"{key} must be float32 of shape ({n},) for layers {sizes}, got {a.dtype} of shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{key} contains NaN or infinity")
    return a


def _optimizer(arrays: dict[str, np.ndarray]) -> Optimizer | None:
    if not str(arrays["optimizer"]):
        return None  # never trained
    opt = _json_object(arrays, "optimizer")
    if set(opt) != {"kind", "config"} or not isinstance(opt["kind"], str) or not isinstance(opt["config"], dict):
        raise ValueError(f"optimizer must be a JSON object with a kind (str) and a config (object), "
                         f"got {str(opt)[:200]}")
    return from_config(opt["kind"], opt["config"])


def _json(arrays: dict[str, np.ndarray], key: str) -> Any:
    """The entry ``key``, a JSON text, decoded."""
    text = str(arrays[key])
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ValueError(f"{key} is not valid JSON ({type(exc).__name__}: {exc})") from None


def _json_object(arrays: dict[str, np.ndarray], key: str) -> dict[str, Any]:
    value = _json(arrays, key)
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a JSON object, got {type(value).__name__}")
    return value
