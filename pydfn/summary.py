"""A Keras-like text summary of a network: its layers, parameters, memory and how it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .system import info

if TYPE_CHECKING:
    from .model import MLP

_BYTES_PER_PARAM = 4  # float32
# The core keeps four float32 values per parameter: the parameter, its gradient and two
# optimizer buffers (Adam's moments; SGD and RMSProp use one or both).
_TRAINING_COPIES = 4


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _precision(precision: str, kernels: str) -> str:
    if precision == "fp32":
        return "float32"
    how = {"avx512bf16": "", "amx": ", AMX tiles"}.get(kernels, ", emulated")
    return f"bf16 products (float32 sums{how})"


def format_summary(model: MLP) -> str:
    """The table :meth:`MLP.summary` prints, as a string."""
    sizes = model.layer_sizes
    n_layers = len(sizes) - 1
    rows = [("Layer", "In -> Out", "Activation", "Dropout", "Params")]
    total = 0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        params = fan_in * fan_out + fan_out
        total += params
        hidden = i + 1 < n_layers
        activation = model.activation if hidden else ("logits" if model.is_classifier else "linear")
        dropout = f"{model.dropout[i]:g}" if hidden and model.dropout[i] else "-"
        rows.append((f"dense_{i + 1}", f"{fan_in} -> {fan_out}", activation, dropout, f"{params:,}"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    right = {4}  # numbers align right

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                         for c, (cell, w) in enumerate(zip(row, widths))).rstrip()

    rule = "-" * len(line(rows[0]))
    machine = info()
    out = [f"Model: {model!r}", rule, line(rows[0]), rule, *map(line, rows[1:]), rule,
           f"Total params: {total:,} ({_size(total * _BYTES_PER_PARAM)} as float32), all trainable",
           f"Training memory: {_size(total * _BYTES_PER_PARAM * _TRAINING_COPIES)} (weights, gradients,"
           f" optimizer state) + activations",
           f"Loss: {model.loss}; penalties: l1 {model.l1:g}, l2 {model.l2:g}",
           f"Runs in {_precision(model.precision, machine['kernels'])} on the {machine['kernels']} kernels "
           f"with {machine['threads']} thread{'s' if machine['threads'] != 1 else ''}"]
    return "\n".join(out)
