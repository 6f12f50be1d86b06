"""Classification metrics from true and predicted labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_array, as_labels, positive_int


def _check_pair(y_true: Any, y_pred: Any, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Both label arrays checked against each other; n_classes inferred when None."""
    y_true, y_pred = as_array(y_true, "y_true"), as_array(y_pred, "y_pred")
    if n_classes is None:
        # as_labels below reports non-integer or negative labels; here only the largest matters
        highest = [int(a.max()) for a in (y_true, y_pred) if a.size and a.dtype.kind in "iu"]
        n_classes = max(highest, default=0) + 1
    n_classes = positive_int(n_classes, "n_classes")
    y_true = as_labels(y_true, n_classes, len(y_true) if y_true.ndim else 0, name="y_true")
    return y_true, as_labels(y_pred, n_classes, len(y_true), name="y_pred"), n_classes


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Counts of each (true class, predicted class) pair.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Integer class labels.
    n_classes : int, optional
        Number of classes; by default one more than the largest label seen.

    Returns
    -------
    ndarray of shape (n_classes, n_classes), int64
        ``cm[i, j]``: samples of class i predicted as class j (rows are the truth,
        as in scikit-learn).
    """
    y_true, y_pred, n = _check_pair(y_true, y_pred, n_classes)
    return np.bincount(y_true.astype(np.int64) * n + y_pred, minlength=n * n).reshape(n, n)


def per_class_accuracy(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Fraction of each class's samples predicted correctly (the per-class recall).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Integer class labels.
    n_classes : int, optional
        Number of classes; by default one more than the largest label seen.

    Returns
    -------
    ndarray of shape (n_classes,), float64
        NaN for a class with no samples in ``y_true``.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / totals, np.nan)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose predicted label equals the true one."""
    y_true, y_pred, _ = _check_pair(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")
