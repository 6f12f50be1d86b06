"""The MLP: a thin facade on its engine (the C++ network, generator and optimizer state)."""

from __future__ import annotations

import numbers
import os
from typing import Any, Iterable, Sequence

import numpy as np

from . import _checkpoint, training
from ._engine import Engine
from ._validation import (MAX_DIM, as_features, as_inputs, as_y, batch_size_for, check_bool,
                          check_network_size, nonnegative_int, nonnegative_real, positive_int, printable, real)
from .augment import Augment
from .history import History
from .initializers import glorot_uniform
from .optim import Optimizer
from .schedules import Schedule
from .summary import format_summary

ACTIVATIONS = ("relu", "tanh", "sigmoid")
PRECISIONS = ("fp32", "bf16")
LOSSES = ("softmax_xent", "mse", "mae")


def _dropout_rates(dropout: Any, n_hidden: int) -> tuple[float, ...]:
    """One rate in [0, 1) per hidden layer, from a number (the same for each) or a sequence."""
    if isinstance(dropout, numbers.Real) and not isinstance(dropout, bool):
        if dropout and not n_hidden:
            raise ValueError("dropout needs hidden layers; this network has none")
        rates = [dropout] * n_hidden
    elif isinstance(dropout, (str, bytes)) or not isinstance(dropout, Iterable):
        raise TypeError(f"dropout must be a number or a sequence of numbers, got {type(dropout).__name__}")
    else:
        rates = list(dropout)
        if len(rates) != n_hidden:
            raise ValueError(f"dropout needs one rate per hidden layer ({n_hidden}), got {len(rates)}")
    for i, r in enumerate(rates):
        if not 0.0 <= real(r, f"dropout[{i}]") < 1.0:  # also refuses NaN
            raise ValueError(f"dropout rates must be in [0, 1), got {r}")
    return tuple(float(r) for r in rates)


def _inference_batch(batch_size: Any) -> int:
    """Rows per core call at inference: any int >= 1 (beyond the data, all of it in one call)."""
    return min(positive_int(batch_size, "batch_size"), MAX_DIM)


def _fixed(name: str) -> Any:
    """A constructor option as a read-only attribute: the core network was built with it, so
    assigning it (which would change repr and save but not what the model computes) is refused."""
    def get(self: MLP) -> Any:
        return getattr(self, f"_{name}")

    def refuse(self: MLP, value: Any) -> None:
        raise AttributeError(f"{name} is fixed when the model is built: make a new MLP(..., {name}=...) "
                             "(set_weights copies the weights into it)")
    return property(get, refuse, doc=f"The constructor's {name} (read-only).")


class MLP:
    """A deep feedforward network: dense layers with a hidden activation between
    them and a linear output, trained on a mean loss plus optional weight penalties.

    Parameters
    ----------
    layer_sizes : sequence of int
        Input size, hidden sizes, number of classes (or of regression outputs),
        e.g. ``[784, 256, 128, 10]``.
    seed : int, default 0
        Seeds the Glorot-uniform weights (biases start at zero) and the shuffling
        of epochs that are given no seed of their own.
    activation : {"relu", "tanh", "sigmoid"}, default "relu"
        The hidden layers' activation.
    loss : {"softmax_xent", "mse", "mae"}, default "softmax_xent"
        ``softmax_xent``: classification, the output is logits and ``y`` holds
        integer labels. ``mse`` (mean of (z − t)²) and ``mae`` (mean of |z − t|),
        over all B·n_outputs elements: regression, the output is linear and ``y``
        holds float targets of shape (n_samples, n_outputs). MAE's gradient uses
        sign(0) = 0 where the output equals the target (PyTorch's subgradient).
    l1, l2 : float, default 0
        Penalties on the weights (never the biases). The cost minimised, and the
        training loss reported, is ``mean loss + l1·Σ|W| + l2·ΣW²`` over every
        weight matrix W (the tutorial's definition; note l2 is not halved, so
        its gradient is ``2·l2·W``).
    dropout : float or sequence of float, default 0
        Inverted dropout on the hidden layers' outputs, in training only
        (``fit``, ``train_step``, ``train_epoch``, ``loss_and_gradients``): each
        unit is zeroed with probability ``rate`` (in [0, 1)) and the kept ones scaled
        by 1/(1 − rate). One number applies to every hidden layer; a sequence gives
        one rate per hidden layer. The masks are a hash of (``seed``, optimizer
        step, layer, row in the batch, unit): bitwise identical for any thread
        count, reproducible, and resumed checkpoints draw the same ones.
    precision : {"fp32", "bf16"}, default "fp32"
        Of the matrix products, in training and inference. ``bf16``: their inputs
        (activations, weights, the gradients they multiply) are rounded to bfloat16
        (to nearest even) and multiplied with AVX512_BF16 dot products; the sums,
        the weights kept between steps, the optimizer state, the loss and softmax
        stay float32. On a CPU without AVX512_BF16 the same rounding runs on float
        instructions (slower). Saved in checkpoints.
    label_smoothing : float in [0, 1], default 0
        For ``softmax_xent`` only: PyTorch's ``CrossEntropyLoss(label_smoothing=)``.
        Each row's target is ``(1 − eps)·onehot(y) + eps/C`` (C classes) and its loss
        ``−Σ_j t_j·log softmax(z)_j``, with the exact gradient ``softmax(z) − t``;
        at 1 every target is uniform, so the labels no longer matter.
        The losses reported (``fit``'s, ``evaluate``'s) are this smoothed loss, as
        PyTorch reports it; accuracy is unaffected. Saved in checkpoints.
    """

    history: History | None = None  # the last fit's, kept even when it was interrupted
    _class_names: list[str] | None = None
    activation: str = _fixed("activation")
    loss: str = _fixed("loss")
    precision: str = _fixed("precision")
    dropout: tuple[float, ...] = _fixed("dropout")
    seed: int = _fixed("seed")
    label_smoothing: float = _fixed("label_smoothing")

    def __init__(self, layer_sizes: Sequence[int], *, seed: int = 0, activation: str = "relu",
                 loss: str = "softmax_xent", l1: float = 0.0, l2: float = 0.0,
                 dropout: float | Sequence[float] = 0.0, precision: str = "fp32", label_smoothing: float = 0.0):
        sizes = list(layer_sizes) if not isinstance(layer_sizes, (str, bytes)) else None
        if sizes is None or len(sizes) < 2:
            raise ValueError(f"layer_sizes must list at least an input and an output size, got {layer_sizes!r}")
        sizes = check_network_size(sizes)  # before the core allocates anything
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if loss == "softmax_xent" and sizes[-1] < 2:
            raise ValueError(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        seed = nonnegative_int(seed, "seed")
        label_smoothing = nonnegative_real(label_smoothing, "label_smoothing")
        if label_smoothing > 1:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        if label_smoothing and loss != "softmax_xent":
            raise ValueError(f"label_smoothing applies to the softmax_xent loss, not {loss!r}")
        rates = _dropout_rates(dropout, len(sizes) - 2)
        self._engine = Engine(sizes, activation=activation, loss=loss, precision=precision, dropout=rates,
                              seed=seed, label_smoothing=label_smoothing)
        self.set_penalty(l1, l2)
        self._activation, self._loss, self._precision = activation, loss, precision
        self._dropout, self._seed, self._label_smoothing = rates, seed, label_smoothing
        self.set_weights(glorot_uniform(sizes, seed))

    def set_penalty(self, l1: float = 0.0, l2: float = 0.0) -> None:
        """Set the weight penalties (see the class's ``l1``, ``l2``), e.g. between fits."""
        l1, l2 = nonnegative_real(l1, "l1"), nonnegative_real(l2, "l2")
        self._engine.set_penalty(l1, l2)
        self._l1, self._l2 = l1, l2

    @property
    def l1(self) -> float:
        """The l1 weight penalty; assigning it sets the penalty the next training uses."""
        return self._l1

    @l1.setter
    def l1(self, value: float) -> None:
        self.set_penalty(value, self._l2)

    @property
    def l2(self) -> float:
        """The l2 weight penalty; assigning it sets the penalty the next training uses."""
        return self._l2

    @l2.setter
    def l2(self, value: float) -> None:
        self.set_penalty(self._l1, value)

    @property
    def class_names(self) -> list[str] | None:
        """The label each output class stands for (e.g. from a data file), saved in checkpoints;
        None (the default) when the classes have no names beyond their ids."""
        return self._class_names

    @class_names.setter
    def class_names(self, names: Sequence[str] | None) -> None:
        if names is not None:
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise TypeError(f"class_names must be a sequence of str, got {names!r}")
            if not self.is_classifier or len(names) != self.layer_sizes[-1]:
                raise ValueError(f"class_names must name the {self.layer_sizes[-1]} outputs of a classifier, "
                                 f"got {len(names)} names for a {self.loss} model")
            names = list(names)
        self._class_names = names

    @property
    def engine(self) -> Engine:
        """What trains this model: the one owner of its C++ network, shuffling generator and
        optimizer state (:class:`pydfn._engine.Engine`). The fit loops, checkpoints and the
        scikit-learn estimators work through it."""
        return self._engine

    def options(self) -> dict[str, Any]:
        """The constructor's keyword arguments: ``MLP(model.layer_sizes, **model.options())``
        is the same network before training."""
        return {"activation": self.activation, "loss": self.loss, "l1": self.l1, "l2": self.l2,
                "dropout": list(self.dropout), "seed": self.seed, "precision": self.precision,
                "label_smoothing": self.label_smoothing}

    @property
    def is_classifier(self) -> bool:
        """True for the softmax cross-entropy loss, False for regression."""
        return self.loss == "softmax_xent"

    @property
    def layer_sizes(self) -> list[int]:
        """Sizes of the input, hidden and output layers."""
        return self._engine.sizes

    @property
    def optimizer(self) -> Optimizer | None:
        """The optimizer whose state (moments, step count) the model holds: the one
        last trained with, or the one restored by :func:`pydfn.load`. Training with it,
        or with an equal one (same kind and hyper-parameters), continues that state;
        another optimizer starts from fresh state (see :mod:`pydfn.optim`)."""
        return self._engine.optimizer

    @property
    def optimizer_step(self) -> int:
        """Optimizer steps taken since the optimizer state was last started afresh."""
        return self._engine.step

    def reset_optimizer(self) -> None:
        """Start the optimizer state afresh (zero moments, step 0), keeping the optimizer."""
        self._engine.reset_optimizer()

    def __repr__(self) -> str:
        extra = "".join(f", {k}={getattr(self, k)!r}" for k, default in
                        (("activation", "relu"), ("loss", "softmax_xent"), ("l1", 0.0), ("l2", 0.0),
                         ("precision", "fp32"), ("label_smoothing", 0.0))
                        if getattr(self, k) != default)
        if any(self.dropout):
            extra += f", dropout={list(self.dropout)!r}"
        return f"MLP({self.layer_sizes}{extra})"

    def summary(self) -> None:
        """Print a Keras-like table: each layer's sizes, activation, dropout and parameters,
        the totals and memory, and the precision, kernels and threads it runs with."""
        print(format_summary(self))

    # --- weights -----------------------------------------------------------------

    def _shapes(self) -> list[tuple[int, ...]]:
        sizes = self.layer_sizes
        shapes: list[tuple[int, ...]] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            shapes += [(fan_in, fan_out), (fan_out,)]
        return shapes

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters: ``[W1, b1, W2, b2, ...]``, each W of shape (in, out)."""
        return self._unflatten(self._engine.get_params())

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
            w = w.astype(np.float32)
            if not np.isfinite(w).all():  # after the cast: 1e39 becomes inf in float32
                raise ValueError(f"weights[{i}] contains NaN or infinity (in float32)")
            parts.append(w.ravel())
        self._engine.set_params(np.concatenate(parts))

    # --- training ----------------------------------------------------------------

    def _check_xy(self, x: Any, y: Any, check_finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
        x = as_features(x, self.layer_sizes[0], check_finite=check_finite)
        return x, as_y(y, self.is_classifier, self.layer_sizes[-1], x.shape[0])

    def loss_and_gradients(self, x: Any, y: Any) -> tuple[float, list[np.ndarray]]:
        """Cost (mean loss + penalty) on ``(x, y)`` and its gradients, without updating anything.

        Returns
        -------
        loss : float
        gradients : list of ndarray
            ``[dW1, db1, dW2, db2, ...]``, shaped like ``get_weights()``.
        """
        x, y = self._check_xy(x, y)
        with self._engine.exclusive():  # no other thread's gradients in between
            loss = self._engine.compute_gradients(x, y)
            return loss, self._unflatten(self._engine.get_grads())

    def train_step(self, x: Any, y: Any, optimizer: Optimizer) -> float:
        """One optimizer update on the minibatch ``(x, y)``.

        Parameters
        ----------
        x : array-like of shape (batch_size, n_features)
            Floating-point features.
        y : array-like of shape (batch_size,) or (batch_size, n_outputs)
            Integer class labels in ``[0, n_classes)``, or float regression targets.
        optimizer : Adam, AdamW, SGD or RMSProp

        Returns
        -------
        float
            The minibatch's cost (mean loss + penalty), computed before the update.

        Raises
        ------
        FloatingPointError
            If the loss is not finite, or the update would make the weights or the
            optimizer state non-finite; the model is then left unchanged.
        """
        x, y = self._check_xy(x, y)
        with self._engine.exclusive():  # another thread's steps wait: steps never interleave
            self._engine.bind(optimizer)
            loss = self._engine.compute_gradients(x, y)
            if not np.isfinite(loss):
                raise FloatingPointError(f"the loss is {loss}: update skipped, weights unchanged (try a smaller "
                                         "learning rate or scale the inputs)")
            self._engine.apply_update()
        return loss

    def train_epoch(self, x: Any, y: Any, optimizer: Optimizer, *, batch_size: int = 64, shuffle: bool = True,
                    seed: int | None = None, check_finite: bool = True, sample_weight: Any = None) -> float:
        """One pass over ``(x, y)`` in minibatches, run entirely in C++.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        optimizer : Adam, AdamW, SGD or RMSProp
        batch_size : int, default 64
            Rows per update; the last batch holds the remainder. ``len(x)`` is batch
            gradient descent, 1 stochastic, n minibatch.
        shuffle : bool, default True
            Visit rows in a random order (else in order).
        seed : int, optional
            Seed of this epoch's order; by default the model's own generator
            (seeded at construction) is used, so runs are reproducible.
        check_finite : bool, default True
            Reject NaN/infinite features up front; False skips the pass over x.
        sample_weight : array-like of shape (n_samples,), optional
            Each sample's loss weight, as in :meth:`fit`.

        Returns
        -------
        float
            Mean over the samples of the cost of the minibatch each belonged to.
        """
        x, y = self._check_xy(x, y, check_finite)
        weights = training.sample_weights(self, y, sample_weight, None)
        batch_size = batch_size_for(batch_size, x.shape[0])
        check_bool(shuffle, "shuffle")
        if seed is not None:
            seed = nonnegative_int(seed, "seed")
        with self._engine.exclusive():
            self._engine.bind(optimizer)
            rng_state = self._engine.rng.bit_generator.state
            try:
                return self._engine.train(x, y, self._engine.epoch_order(x.shape[0], shuffle, seed),
                                          batch_size, weights).mean_loss()
            except FloatingPointError:  # the epoch was undone: its order's draw too
                self._engine.rng.bit_generator.state = rng_state
                raise

    def fit(self, x: Any, y: Any, optimizer: Optimizer, *, epochs: int = 10, batch_size: int = 64,
            validation_data: Any = None, validation_split: float = 0.0, shuffle: bool = True,
            seed: int | None = None, callbacks: Iterable[Any] = (), verbose: int = 1,
            distributed: bool = False, augment: Augment | None = None, class_weight: Any = None,
            sample_weight: Any = None, lr_schedule: Schedule | None = None) -> History:
        """Train for a number of epochs, validating after each; each epoch runs in C++.

        Parameters
        ----------
        x : array-like of shape (n_samples, height, width) or (n_samples, n_features)
            uint8 images (scaled to [0, 1] and flattened for you) or float features.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Integer class labels in ``[0, n_classes)``, or float regression targets.
        optimizer : Adam, AdamW, SGD or RMSProp
            ``model.optimizer``, or an equal optimizer, continues a previous fit or a
            loaded checkpoint exactly; an optimizer of another kind or with other
            hyper-parameters starts from fresh state (see :mod:`pydfn.optim`).
        epochs : int, default 10
            Number of passes over the training data (0 trains nothing).
        batch_size : int, default 64
            Rows per optimizer step; the last batch of an epoch holds the remainder.
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
        distributed : bool, default False
            Data-parallel training over MPI: run the script on every rank
            (``mpiexec -n N ...``); each global batch is split across the ranks and
            their gradients averaged before one identical Adam step. Only rank 0
            runs the callbacks. Needs ``pip install 'pydfn[mpi]'``; see
            :mod:`pydfn.distributed`.
        augment : pydfn.Augment, optional
            Train on randomly shifted and mirrored copies of the images, drawn anew
            each epoch from the model's generator (so ``seed`` and checkpoints
            reproduce them); validation data is never augmented. The rows of ``x``
            must be images (``Augment.image_shape``, or square by default). The
            transform runs in Cython between the C++ calls, on each call's rows (a
            buffer of about 8 MB): on two idle cores it adds about 12% to an epoch
            of the tutorial network.
        class_weight : dict of int to float, optional
            Keras's meaning: each sample's loss is multiplied by the weight of its
            class (keys are labels in ``[0, n_classes)``; a class left out weighs 1).
            Classification only.
        sample_weight : array-like of shape (n_samples,), optional
            Keras's meaning: each sample's loss is multiplied by its weight (finite,
            >= 0, not all 0); with ``class_weight`` too, by both. A minibatch's loss
            is then ``Σ w_i·l_i / B`` (Keras's ``sum_over_batch_size``), reported as
            ``loss``; validation losses are unweighted. With ``validation_split``, the
            weights of the rows kept for training apply. Weights of all ones give
            bit for bit the unweighted run. Not yet with ``distributed``.
        lr_schedule : pydfn.schedules.CosineDecay, StepDecay or OneCycle, optional
            Set the learning rate of every batch from its optimizer step (counted over
            the model's life, so a resumed fit continues the schedule), in place of the
            optimizer's ``lr`` (so an optimizer equal to ``model.optimizer`` but for
            ``lr`` continues its state); applied in C++, no Python call per batch. Not
            with a ``ReduceLROnPlateau`` callback (ValueError). See :mod:`pydfn.schedules`.

        Returns
        -------
        History
            Per epoch ``loss`` (the cost: mean loss + penalty), ``accuracy`` (over
            the epoch's minibatches; classification only), ``val_loss`` (also with the
            penalty, as Keras reports it), ``val_accuracy`` (with validation data),
            ``lr`` (with ``lr_schedule``: the rate of the epoch's last batch) and
            ``time``; also kept as ``model.history``.

        Raises
        ------
        ValueError, TypeError
            For a bad argument, before any training, naming it.
        KeyboardInterrupt
            On Ctrl-C. Training runs as a few C++ calls per epoch (each about
            0.2 s); the interrupt takes effect when the current call returns. The
            model keeps the weights and optimizer state after the last batch that call
            trained, ``model.history`` the completed epochs, and
            ``history.stop_reason`` says where it stopped; callbacks' ``on_train_end``
            runs (EarlyStopping restores nothing), then the exception propagates.
        FloatingPointError
            If the loss or, after an overflow, the weights or the optimizer state
            stop being finite; the C++ call it happened in is undone, so the model
            is as after the last chunk of batches (about 0.2 s) that stayed finite,
            and ``model.history`` holds the completed epochs.

        Notes
        -----
        A callback that stops training (e.g. ``EarlyStopping``) sets
        ``history.stop_reason``, printed when ``verbose`` > 0.
        """
        return training.fit(self, x, y, optimizer, epochs=epochs, batch_size=batch_size,
                            validation_data=validation_data, validation_split=validation_split,
                            shuffle=shuffle, seed=seed, callbacks=callbacks, verbose=verbose,
                            distributed=distributed, augment=augment, class_weight=class_weight,
                            sample_weight=sample_weight, lr_schedule=lr_schedule)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to ``path`` (.npz) atomically: architecture, loss, activation, penalties, dropout,
        weights, optimizer state and hyper-parameters, shuffling state, history. Read it with :func:`pydfn.load`."""
        _checkpoint.save(self._describe(), path)

    # --- state: checkpoints, pickling, copying --------------------------------------

    def _describe(self) -> _checkpoint.ModelState:
        return _checkpoint.ModelState(self.layer_sizes, self.options(), self._engine.state(), self.history,
                                      self.class_names)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> MLP:
        """The model a checkpoint's arrays describe (ValueError, TypeError, KeyError... if they do not fit)."""
        model = cls.__new__(cls)
        model.__setstate__(arrays)
        return model

    def __getstate__(self) -> dict[str, np.ndarray]:
        # The checkpoint's arrays: pickle, deepcopy, joblib and multiprocessing copy the model
        # as a checkpoint holds it, so a copy predicts and trains on bit for bit as the original.
        return _checkpoint.to_arrays(self._describe())

    def __setstate__(self, arrays: dict[str, np.ndarray]) -> None:
        state = _checkpoint.from_arrays(arrays)
        MLP.__init__(self, state.layer_sizes, **state.options)
        self._engine.set_state(state.engine)
        self.history = state.history
        self.class_names = state.class_names

    def to_onnx(self, path: str | os.PathLike[str], *, probabilities: bool = False,
                class_names: Sequence[Any] | None = None) -> None:
        """Write the network to ``path`` as an ONNX graph (opset 13; ``logits``, or with
        ``probabilities`` the softmax, of float32 ``input`` (batch, n_features)), for
        onnxruntime and other ONNX runtimes. Needs ``pip install 'pydfn[onnx]'``;
        see :func:`pydfn.export.to_onnx`."""
        from . import export  # the onnx package loads only when used

        export.to_onnx(self, path, probabilities=probabilities, class_names=class_names)

    # --- inference ---------------------------------------------------------------

    def predict_logits(self, x: Any, *, batch_size: int = 1024) -> np.ndarray:
        """The output layer (logits, or regression predictions), computed in batches.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or (n_samples, height, width)
            Float features or uint8 images (scaled to [0, 1] and flattened, as ``fit``
            does); or one sample: a row (n_features,) or an image (height, width) with
            height * width == n_features (a 2-D array whose last axis is n_features is
            always n_samples rows).

        Returns
        -------
        ndarray of float32 of shape (n_samples, n_outputs), or (n_outputs,) for one sample

        Raises
        ------
        ValueError
            If x holds NaN or infinity (the message names the first one's row and column).
        FloatingPointError
            If finite inputs overflow float32 inside the network (large inputs, or weights
            that diverged in training): outputs are never NaN or infinite.
        """
        # The core raises both errors, the ValueError for x up front (one pass over
        # x in C++: a one-row call is a few microseconds of arithmetic, and NumPy's check cost as much).
        features, one = as_inputs(x, self.layer_sizes[0], check_finite=False)
        z = self._engine.predict_logits(features, _inference_batch(batch_size))
        return z[0] if one else z

    def predict_proba(self, x: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (softmax of the logits), ndarray of shape (n_samples, n_classes),
        or (n_classes,) for one sample; ``x`` as :meth:`predict_logits` takes it. Computed by
        the core, bit for bit as the C API's ``pydfn_predict_proba``."""
        if not self.is_classifier:
            raise ValueError(f"predict_proba needs a classifier; this model's loss is {self.loss!r}")
        features, one = as_inputs(x, self.layer_sizes[0], check_finite=False)  # the core checks (predict_logits)
        p = self._engine.predict_proba(features, _inference_batch(batch_size))
        return p[0] if one else p

    def predict(self, x: Any, *, batch_size: int = 1024) -> Any:
        """Predicted class ids, ndarray of shape (n_samples,), int64 (one ``np.int64`` for one
        sample); for regression the predictions, ndarray of shape (n_samples, n_outputs) (or
        (n_outputs,)), float32. ``x`` as :meth:`predict_logits` takes it."""
        out = self.predict_logits(x, batch_size=batch_size)
        return out.argmax(axis=-1) if self.is_classifier else out

    def evaluate(self, x: Any, y: Any, *, batch_size: int = 1024) -> tuple[float, float]:
        """``(cost, metric)`` of the model on ``(x, y)``.

        ``x`` holds n_samples as ``fit`` takes them: float features (n_samples, n_features)
        or uint8 images (n_samples, height, width), scaled to [0, 1] for you.

        The cost is the mean loss plus the l1/l2 penalty (the same quantity as the
        training loss). The metric is the accuracy for classification, and the
        mean absolute error (over all outputs) for regression.
        """
        x, y = self._check_xy(x, y)
        batch_size = _inference_batch(batch_size)
        with self._engine.shared():  # every part from the same weights
            loss_sum, correct = self._engine.evaluate(x, y, batch_size)
            loss, penalty = loss_sum / x.shape[0], self._engine.penalty()
            if not np.isfinite(loss + penalty):
                self._engine.predict_logits(x, batch_size)  # if the outputs overflowed, its error says why
                raise FloatingPointError(f"the cost overflowed float32 though the outputs are finite (mean loss "
                                         f"{loss:.3g}, penalty {penalty:.3g}): scale the targets, or lower l1/l2")
            cost = loss + penalty
            if self.is_classifier:
                return cost, correct / x.shape[0]
            return cost, float(np.abs(self._engine.predict_logits(x, batch_size) - y).mean(dtype=np.float64))


def load(path: str | os.PathLike[str]) -> MLP:
    """Read a model written by :meth:`MLP.save` (format: :mod:`pydfn.checkpoint`).

    Returns
    -------
    MLP
        With its weights, its optimizer and that optimizer's state (continue with
        ``model.optimizer`` or an equal optimizer to resume exactly), its shuffling
        generator and its ``history``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` names no file.
    ValueError
        If the file is truncated or corrupt, is not a pydfn checkpoint, its
        contents do not fit together, or it is not a regular file (a FIFO or device).
    """
    arrays = _checkpoint.read_arrays(path)
    try:
        return MLP._from_arrays(arrays)
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{printable(os.fsdecode(path))} is not a valid pydfn checkpoint: {exc}") from None
