"""ONNX export: a trained network as a standard ONNX graph, to run without pydfn.

The graph is what :meth:`pydfn.MLP.predict_logits` computes: one ``Gemm`` per dense
layer (``Y = X·W + b``, W of shape (in, out) as ``get_weights()`` gives it), the hidden
activation (``Relu``, ``Tanh`` or ``Sigmoid``) after each but the last, and optionally a
``Softmax`` over the classes. Input ``input``: float32 of shape (batch, n_features), the
batch dimension left free; output ``logits`` or ``probabilities`` (batch, n_outputs).
The model's metadata holds the pydfn version, the activation, the loss, what the output
is and, when known, the class names (as a JSON list). Opset 13, so any onnxruntime from
1.6 on runs it. Needs the ``onnx`` package: ``pip install 'pydfn[onnx]'``.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import _core
from ._atomic import write_atomically

if TYPE_CHECKING:
    from .model import MLP

OPSET = 13
IR_VERSION = 7  # the IR version that opset 13 came with: readers that old accept the file
_ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'pydfn[onnx]'") from None
    return onnx


def onnx_model(model: MLP, *, probabilities: bool = False, class_names: Sequence[Any] | None = None) -> Any:
    """The network of ``model`` as an ``onnx.ModelProto`` (checked by ``onnx.checker``).

    Parameters
    ----------
    model : pydfn.MLP
    probabilities : bool, default False
        End the graph with a softmax over the classes (output ``probabilities``);
        classifiers only. Otherwise the output is the last layer (``logits``).
    class_names : sequence of length n_classes, optional
        Stored in the metadata (``class_names``, a JSON list of strings).

    Raises
    ------
    ValueError
        If ``probabilities`` is asked of a regression model, or ``class_names`` does
        not have one name per output.
    ImportError
        If the onnx package is missing.

    Warns
    -----
    UserWarning
        For a ``precision="bf16"`` model: the graph multiplies in float32, so its outputs
        differ from ``predict_*``'s by the bf16 rounding of the products' inputs (about 1e-2
        relative), not the float32 rounding (about 1e-6) of an fp32 model's export.
    """
    if model.precision == "bf16":
        warnings.warn("this model multiplies in bf16; the ONNX graph multiplies in float32, so its outputs differ "
                      "from predict_*'s by bf16 rounding (about 1e-2 relative)", UserWarning, stacklevel=3)
    sizes, n_out = model.layer_sizes, model.layer_sizes[-1]
    if probabilities and not model.is_classifier:
        raise ValueError(f"probabilities=True needs a classifier; this model's loss is {model.loss!r} "
                         "(export its outputs with probabilities=False)")
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(class_names) != n_out:
            raise ValueError(f"class_names has {len(class_names)} names; the model has {n_out} outputs")
    onnx = _onnx()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper

    weights = model.get_weights()
    initializers, nodes = [], []
    x, n_layers = "input", len(sizes) - 1
    for i in range(1, n_layers + 1):  # layer i: x·W{i} + b{i}, then the activation but after the last
        w, b = (np.ascontiguousarray(a, dtype=np.float32) for a in weights[2 * i - 2:2 * i])
        initializers += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        y = "logits" if i == n_layers else f"dense{i}"
        nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [y], name=f"dense{i}"))
        if i < n_layers:
            nodes.append(helper.make_node(_ACTIVATION_OPS[model.activation], [y], [f"act{i}"], name=f"act{i}"))
            y = f"act{i}"
        x = y
    output = "probabilities" if probabilities else "logits"
    if probabilities:
        nodes.append(helper.make_node("Softmax", ["logits"], [output], axis=1, name="softmax"))

    float32 = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "pydfn_mlp",
        [helper.make_tensor_value_info("input", float32, ["batch", sizes[0]])],
        [helper.make_tensor_value_info(output, float32, ["batch", n_out])],
        initializers)
    proto = helper.make_model(graph, producer_name="pydfn", producer_version=_core.__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    proto.doc_string = f"pydfn MLP {'-'.join(map(str, sizes))}, {model.activation}, loss {model.loss}"
    metadata = {"pydfn_version": _core.__version__, "layer_sizes": json.dumps(sizes),
                "activation": model.activation, "loss": model.loss, "output": output}
    if class_names is not None:
        metadata["class_names"] = json.dumps(class_names)
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    return proto


def to_onnx(model: MLP, path: str | os.PathLike[str], *, probabilities: bool = False,
            class_names: Sequence[Any] | None = None) -> None:
    """Write ``model`` to ``path`` as an ONNX file (see :func:`onnx_model`), atomically:
    on any error an existing file at ``path`` is left as it was.

    Raises
    ------
    OSError
        Naming ``path`` and the cause: ``FileNotFoundError`` if its folder does not exist,
        ``IsADirectoryError`` if it is a folder, ``PermissionError`` if it is read-only...
    ValueError, ImportError
        As :func:`onnx_model`.
    """
    data = onnx_model(model, probabilities=probabilities, class_names=class_names).SerializeToString()
    write_atomically(path, lambda f: f.write(data))
