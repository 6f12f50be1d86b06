"""Figures with matplotlib (the optional ``plot`` extra: ``pip install "pydfn[plot]"``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import as_labels, positive_int


def new_figure(**kwargs: Any) -> Any:
    """A new matplotlib Figure that pyplot does not track, or a clear ImportError.

    The backend is left as the user has it. pyplot is imported only so that Jupyter's inline
    display is set up; the figure is not registered with it, so a notebook shows the returned
    figure once, and figures made in a loop are freed like any object (no "too many figures").
    """
    try:
        import matplotlib.pyplot  # noqa: F401  (sets up Jupyter's display of figures)
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            'pydfn.plot needs matplotlib: install it with  pip install "pydfn[plot]"  '
            "(or  pip install matplotlib)") from exc
    return Figure(**kwargs)


def sample_grid(images: Any, labels: Any, rows: int = 2, cols: int = 2) -> Any:
    """A grid of the first ``rows * cols`` images, each titled with its class name.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width), or (n_images, height * width) for square images
        uint8 in [0, 255] or floats in [0, 1].
    labels : array-like of int of shape (n_images,)
        Indices into :data:`pydfn.datasets.FASHION_MNIST_CLASSES`.
    rows, cols : int, default 2

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .datasets import FASHION_MNIST_CLASSES

    images = np.asarray(images)
    if images.ndim == 2:  # flattened rows, e.g. the output of datasets.prepare_images
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"cannot show flattened images of {images.shape[1]} pixels as squares")
        images = images.reshape(-1, side, side)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n_images, height, width), got {images.shape}")
    labels = as_labels(labels, len(FASHION_MNIST_CLASSES), len(images), name="labels")
    rows, cols = positive_int(rows, "rows"), positive_int(cols, "cols")
    count = min(len(images), rows * cols)
    vmax = 255 if images.dtype == np.uint8 else 1.0
    fig = new_figure(figsize=(2.2 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(FASHION_MNIST_CLASSES[labels[i]])
    fig.tight_layout()
    return fig


def training_curves(history: Any, *, monitor: str = "val_loss", figsize: tuple[float, float] = (10, 4)) -> Any:
    """Loss and accuracy per epoch, training against validation, with the best epoch marked.

    The tutorial's early-stopping picture: where the validation loss turns up
    while the training loss keeps falling, the network starts to overfit.

    Parameters
    ----------
    history : History or dict of str to list of float
        ``model.fit``'s result (or its ``.history`` dict): ``loss``, ``accuracy``
        and, if present, ``val_loss``, ``val_accuracy``.
    monitor : str, default "val_loss"
        The metric whose best epoch (lowest; highest for an accuracy) is marked.
    figsize : (float, float), default (10, 4)

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: loss (left) and accuracy (right). Save it with ``fig.savefig("curves.png")``.
    """
    from .history import History

    if isinstance(history, History):
        logs, epochs = history.history, [e + 1 for e in history.epoch]
    elif isinstance(history, dict):
        logs, epochs = history, list(range(1, len(history.get("loss", ())) + 1))
    else:
        raise TypeError(f"history must be a pydfn History or its .history dict, got {type(history).__name__}")
    if not epochs or "loss" not in logs:
        raise ValueError("history holds no epochs: train with fit first")
    values = logs.get(monitor)
    best = None
    if values:  # numbered from 1, as History.best_epoch() counts
        best = epochs[int((np.nanargmax if "acc" in monitor else np.nanargmin)(values))]
    fig = new_figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric, title in zip(axes, ("loss", "accuracy"), ("Loss (softmax cross-entropy)", "Accuracy")):
        ax.plot(epochs, logs[metric], "o-", ms=3, label="training")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "o-", ms=3, label="validation")
        if best is not None:
            ax.axvline(best, color="gray", ls="--", lw=1, label=f"best {monitor}: epoch {best}")
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def confusion_matrix(y_true: Any, y_pred: Any, *, class_names: Any = None, normalize: bool = True,
                     figsize: tuple[float, float] = (7, 6)) -> Any:
    """Heat map of the confusion matrix, true classes in rows, predictions in columns.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Integer class labels.
    class_names : sequence of str, optional
        Tick labels, one per class (e.g. ``pydfn.datasets.FASHION_MNIST_CLASSES``).
    normalize : bool, default True
        Show each row as fractions of that class (the diagonal is the per-class
        accuracy); else counts.
    figsize : (float, float), default (7, 6)

    Returns
    -------
    matplotlib.figure.Figure
    """
    from . import metrics

    n_classes = None if class_names is None else len(class_names)
    cm = metrics.confusion_matrix(y_true, y_pred, n_classes)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(cm))]
    fig = new_figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = np.arange(len(cm))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted", ylabel="true",
           title=f"Confusion matrix ({'fraction of each class' if normalize else 'counts'}), "
                 f"accuracy {np.trace(cm) / max(cm.sum(), 1):.4f}")
    threshold = shown.max() / 2
    for i, j in np.ndindex(cm.shape):
        text = f"{shown[i, j]:.2f}" if normalize else str(cm[i, j])
        ax.text(j, i, text, ha="center", va="center", fontsize=7,
                color="white" if shown[i, j] > threshold else "black")
    return fig
