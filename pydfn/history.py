"""What a fit recorded: the History it returns and keeps as ``model.history``."""

from __future__ import annotations

from typing import Any

import numpy as np


class History:
    """What a fit recorded, one entry per completed epoch.

    Attributes
    ----------
    history : dict of str to list of float
        ``loss`` and ``accuracy``: training loss and accuracy over the epoch's
        minibatches, each measured just before its update (as Keras does);
        ``val_loss`` and ``val_accuracy``: on the validation data after the epoch
        (present only when there is validation data); ``time``: seconds of the
        epoch's training pass.
    epoch : list of int
        Epoch indices, counted from 0 in each fit (as Keras's ``History.epoch`` and the
        ``epoch`` argument of callbacks). Where an epoch is *named* — ``best_epoch()``,
        ``EarlyStopping.best_epoch``, the printed lines, the plots — it is numbered from
        1: the 9th epoch is epoch 9, its values ``history[metric][8]``.
    params : dict
        ``epochs``, ``batch_size``, ``samples``, ``val_samples``, ``metrics``.
    stop_reason : str or None
        Why the fit ended before its last epoch (early stopping, Ctrl-C, a
        diverged loss), else None.
    """

    def __init__(self, params: dict[str, Any] | None = None):
        self.params = dict(params or {})
        self.history: dict[str, list[float]] = {k: [] for k in self.params.get("metrics", ())}
        self.epoch: list[int] = []
        self.stop_reason: str | None = None

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        """Add epoch ``epoch``'s ``logs`` (what the fit loop does after each epoch)."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def best_epoch(self, monitor: str = "val_loss") -> int | None:
        """Number (from 1, as printed: "Epoch 9/20" is 9) of the epoch with the lowest
        ``monitor`` (highest if it is an accuracy); None if not recorded. Its value is
        ``history[monitor][best_epoch - 1]``."""
        values = self.history.get(monitor)
        if not values:
            return None
        pick = np.nanargmax if "acc" in monitor else np.nanargmin
        return self.epoch[int(pick(values))] + 1

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History({len(self)} epochs, last={last})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_dict` reads back (what checkpoints store)."""
        return {"params": self.params, "history": self.history, "epoch": self.epoch, "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, d: Any) -> History:
        """The History :meth:`to_dict` described; ValueError naming the field that does not fit."""
        # Checked field by field: a hostile checkpoint must not plant a History that breaks later.
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
        history = cls(d["params"])
        history.history, history.epoch, history.stop_reason = values, epoch, reason
        return history


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
