"""The MLP: a thin Python face on the C++ network."""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np

from . import _core, checkpoint, training
from ._validation import as_features, as_labels, positive_int
from .initializers import glorot_uniform
from .optim import Adam


class MLP:
    """A deep feedforward network: dense layers, ReLU between them, logits out,
    trained on the mean softmax cross-entropy.

    Parameters
    ----------
    layer_sizes : sequence of int
        Input size, hidden sizes, number of classes, e.g. ``[784, 256, 128, 10]``.
    seed : int, default 0
        Seeds the Glorot-uniform weights (biases start at zero) and the shuffling
        of epochs that are given no seed of their own.
    """

    history: training.History | None = None  # the last fit's, kept even when it was interrupted

    def __init__(self, layer_sizes: Sequence[int], *, seed: int = 0):
        sizes = list(layer_sizes) if not isinstance(layer_sizes, (str, bytes)) else None
        if sizes is None or len(sizes) < 2:
            raise ValueError(f"layer_sizes must list at least an input and an output size, got {layer_sizes!r}")
        sizes = [positive_int(s, f"layer_sizes[{i}]") for i, s in enumerate(sizes)]
        if len(sizes) and sizes[-1] < 2:
            raise ValueError(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        seed = positive_int(seed, "seed", minimum=0)
        self._net = _core.Network(sizes)
        self._rng = np.random.default_rng(seed)
        self._optimizer: Adam | None = None
        self.set_weights(glorot_uniform(sizes, seed))

    @property
    def layer_sizes(self) -> list[int]:
        """Sizes of the input, hidden and output layers."""
        return list(self._net.sizes)

    @property
    def optimizer(self) -> Adam | None:
        """The Adam whose state (moments, step count) the model holds: the one last
        trained with, or the one restored by :func:`pydfn.load`. Pass it to ``fit``
        to continue that optimization; another Adam starts from fresh moments."""
        return self._optimizer

    def __repr__(self) -> str:
        return f"MLP({self.layer_sizes})"

    # --- weights -----------------------------------------------------------------

    def _shapes(self) -> list[tuple[int, ...]]:
        sizes = self.layer_sizes
        shapes: list[tuple[int, ...]] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            shapes += [(fan_in, fan_out), (fan_out,)]
        return shapes

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters: ``[W1, b1, W2, b2, ...]``, each W of shape (in, out)."""
        return self._unflatten(self._net.get_params())

    def _unflatten(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of the flat parameter layout as ``[W1, b1, ...]``."""
        out, start = [], 0
        for shape in self._shapes():
            size = int(np.prod(shape))
            out.append(flat[start:start + size].reshape(shape))
            start += size
        return out

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the parameters from ``[W1, b1, W2, b2, ...]`` shaped as ``get_weights()`` returns."""
        shapes = self._shapes()
        weights = list(weights)
        if len(weights) != len(shapes):
            raise ValueError(f"expected {len(shapes)} arrays [W1, b1, ...], got {len(weights)}")
        parts = []
        for i, (w, shape) in enumerate(zip(weights, shapes)):
            w = np.asarray(w)
            if w.dtype.kind not in "fiu":
                raise TypeError(f"weights[{i}] must be numeric, got dtype {w.dtype}")
            if w.shape != shape:
                raise ValueError(f"weights[{i}] must have shape {shape}, got {w.shape}")
            if not np.isfinite(w).all():
                raise ValueError(f"weights[{i}] contains NaN or infinity")
            parts.append(w.astype(np.float32).ravel())
        self._net.set_params(np.concatenate(parts))

    # --- training ----------------------------------------------------------------

    def _use(self, optimizer: Adam) -> tuple[float, float, float, float]:
        if not isinstance(optimizer, Adam):
            raise TypeError(f"optimizer must be a pydfn.Adam, got {type(optimizer).__name__}")
        if optimizer is not self._optimizer:
            self._net.reset_adam()  # a new optimizer starts with fresh moments
            self._optimizer = optimizer
        return optimizer.hyperparameters()

    def _check_xy(self, x: Any, y: Any, check_finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
        sizes = self.layer_sizes
        x = as_features(x, sizes[0], check_finite=check_finite)
        return x, as_labels(y, sizes[-1], x.shape[0])

    def loss_and_gradients(self, x: Any, y: Any) -> tuple[float, list[np.ndarray]]:
        """Mean loss on ``(x, y)`` and its gradients, without updating anything.

        Returns
        -------
        loss : float
        gradients : list of ndarray
            ``[dW1, db1, dW2, db2, ...]``, shaped like ``get_weights()``.
        """
        x, y = self._check_xy(x, y)
        loss = self._net.compute_gradients(x, y)
        return float(loss), self._unflatten(self._net.get_grads())

    def train_step(self, x: Any, y: Any, optimizer: Adam) -> float:
        """One Adam update on the minibatch ``(x, y)``.

        Parameters
        ----------
        x : array-like of shape (batch_size, n_features)
            Floating-point features.
        y : array-like of shape (batch_size,)
            Integer class labels in ``[0, n_classes)``.
        optimizer : Adam

        Returns
        -------
        float
            The minibatch's mean loss, computed before the update.

        Raises
        ------
        FloatingPointError
            If the loss is not finite; the weights are then left unchanged.
        """
        x, y = self._check_xy(x, y)
        hyper = self._use(optimizer)
        loss = self._net.compute_gradients(x, y)
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss}: update skipped, weights unchanged")
        self._net.apply_adam(*hyper)
        return float(loss)

    def train_epoch(self, x: Any, y: Any, optimizer: Adam, *, batch_size: int = 64, shuffle: bool = True,
                    seed: int | None = None, check_finite: bool = True) -> float:
        """One pass over ``(x, y)`` in minibatches, run entirely in C++.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        optimizer : Adam
        batch_size : int, default 64
            Rows per update; the last batch holds the remainder.
        shuffle : bool, default True
            Visit rows in a random order (else in order).
        seed : int, optional
            Seed of this epoch's order; by default the model's own generator
            (seeded at construction) is used, so runs are reproducible.
        check_finite : bool, default True
            Reject NaN/infinite features up front; False skips the pass over x.

        Returns
        -------
        float
            Mean over the samples of the loss of the minibatch each belonged to.
        """
        x, y = self._check_xy(x, y, check_finite)
        batch_size = positive_int(batch_size, "batch_size")
        if batch_size > x.shape[0]:
            raise ValueError(f"batch_size ({batch_size}) is larger than the number of samples ({x.shape[0]})")
        stats = self._train_on_order(x, y, self._epoch_order(x.shape[0], shuffle, seed), batch_size, optimizer)
        return float(np.dot(stats[:, 0], stats[:, 2]) / x.shape[0])

    def _epoch_order(self, n: int, shuffle: bool, seed: int | None) -> np.ndarray:
        """The order of an epoch's rows: int64 array of shape (n,)."""
        if not shuffle:
            return np.arange(n, dtype=np.int64)
        rng = self._rng if seed is None else np.random.default_rng(positive_int(seed, "seed", minimum=0))
        return rng.permutation(n).astype(np.int64)

    def _train_on_order(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                        optimizer: Adam) -> np.ndarray:
        """Train on rows ``order`` of checked ``(x, y)`` in one C++ call.

        Calls on consecutive slices of one order, cut at multiples of
        ``batch_size``, give exactly the result of one call on the whole order.

        Returns
        -------
        ndarray of shape (n_batches, 3), float64
            Per batch: mean loss, number of correct predictions, number of rows.
        """
        hyper = self._use(optimizer)
        applied, batch_loss, batch_correct = self._net.train_epoch(x, y, order, batch_size, *hyper)
        sizes = np.minimum(batch_size, len(order) - batch_size * np.arange(len(batch_loss)))
        if applied < len(batch_loss):
            raise FloatingPointError(
                f"the loss became {batch_loss[applied]} at batch {applied} of {len(batch_loss)}: "
                "training stopped; the weights are those after the last finite step")
        return np.stack([batch_loss.astype(np.float64), batch_correct, sizes], axis=1)

    def fit(self, x: Any, y: Any, optimizer: Adam, *, epochs: int = 10, batch_size: int = 64,
            validation_data: Any = None, validation_split: float = 0.0, shuffle: bool = True,
            seed: int | None = None, callbacks: Iterable[Any] = (), verbose: int = 1) -> training.History:
        """Train for a number of epochs, validating after each; each epoch runs in C++.

        Parameters
        ----------
        x : array-like of shape (n_samples, height, width) or (n_samples, n_features)
            uint8 images (scaled to [0, 1] and flattened for you) or float features.
        y : array-like of shape (n_samples,)
            Integer class labels in ``[0, n_classes)``.
        optimizer : Adam
            Pass ``model.optimizer`` to continue a previous fit or a loaded checkpoint
            exactly; a new Adam starts from fresh moments.
        epochs : int, default 10
            Number of passes over the training data (0 trains nothing).
        batch_size : int, default 64
            Rows per Adam step; the last batch of an epoch holds the remainder.
        validation_data : (x_val, y_val), optional
            Evaluated after each epoch (``val_loss``, ``val_accuracy``).
        validation_split : float in [0, 1), default 0
            Hold out this fraction of ``(x, y)`` — its last rows, before any
            shuffling, as Keras does — as validation data.
        shuffle : bool, default True
            Visit the training rows in a new random order each epoch.
        seed : int, optional
            Reseed the model's shuffling generator first, so the call is reproducible
            on its own. By default the generator (seeded at construction, saved in
            checkpoints) continues, so consecutive fits continue one run.
        callbacks : list, default ()
            :mod:`pydfn.callbacks` objects (``EarlyStopping``, ``ModelCheckpoint``,
            ``Progress``) and plain callables ``hook(epoch, logs)`` run after each
            epoch; returning a str stops training, giving the reason.
        verbose : {0, 1, 2}, default 1
            0: silent. 1: a progress bar on stderr when it is a terminal, and one
            line per epoch on stdout. 2: also the tutorial's lines, the minibatch's
            loss and accuracy every 100 batches (``callbacks.Progress`` tunes this).

        Returns
        -------
        History
            Per epoch ``loss``, ``accuracy`` (over the epoch's minibatches),
            ``val_loss``, ``val_accuracy`` (with validation data) and ``time``; also
            kept as ``model.history``.

        Raises
        ------
        ValueError, TypeError
            For a bad argument, before any training, naming it.
        KeyboardInterrupt
            On Ctrl-C. Training runs as a few C++ calls per epoch (each about
            0.2 s); the interrupt takes effect when the current call returns. The
            model keeps the weights and Adam state after the last batch that call
            trained, ``model.history`` the completed epochs, and
            ``history.stop_reason`` says where it stopped; callbacks' ``on_train_end``
            runs (EarlyStopping restores nothing), then the exception propagates.
        FloatingPointError
            If the loss stops being finite; the weights are those after the last
            finite step and ``model.history`` holds the completed epochs.

        Notes
        -----
        A callback that stops training (e.g. ``EarlyStopping``) sets
        ``history.stop_reason``, printed when ``verbose`` > 0.
        """
        return training.fit(self, x, y, optimizer, epochs=epochs, batch_size=batch_size,
                            validation_data=validation_data, validation_split=validation_split,
                            shuffle=shuffle, seed=seed, callbacks=callbacks, verbose=verbose)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to ``path`` (.npz) atomically: architecture, weights, Adam
        state and hyper-parameters, shuffling state, history. Read it with :func:`pydfn.load`."""
        checkpoint.save(self, path)

    # --- inference ---------------------------------------------------------------

    def predict_logits(self, x: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Logits, ndarray of shape (n_samples, n_classes), float32, computed in batches."""
        x = as_features(x, self.layer_sizes[0])
        return self._net.predict_logits(x, positive_int(batch_size, "batch_size"))

    def predict_proba(self, x: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (softmax of the logits), ndarray of shape (n_samples, n_classes)."""
        z = self.predict_logits(x, batch_size=batch_size)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Predicted class ids, ndarray of shape (n_samples,), int64."""
        return self.predict_logits(x, batch_size=batch_size).argmax(axis=1)

    def evaluate(self, x: Any, y: Any, *, batch_size: int = 1024) -> tuple[float, float]:
        """``(mean_loss, accuracy)`` of the model on ``(x, y)``."""
        x, y = self._check_xy(x, y)
        loss_sum, correct = self._net.evaluate(x, y, positive_int(batch_size, "batch_size"))
        return loss_sum / x.shape[0], correct / x.shape[0]
