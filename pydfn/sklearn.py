"""scikit-learn estimators on pydfn's core: drop-in for ``sklearn.neural_network``.

Needs the optional extra: ``pip install pydfn[sklearn]``. ``import pydfn`` does not
import this module or scikit-learn.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import checkpoint
from ._validation import positive_int
from .model import MLP
from .optim import Adam

__all__ = ["MLPClassifier"]

# scikit-learn's activation names -> the core's ("identity" has no counterpart there)
_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier trained by pydfn's C++ core.

    Hidden layers of the chosen activation, a softmax output, the mean
    cross-entropy loss, Adam. The parameters mean what they mean in
    :class:`sklearn.neural_network.MLPClassifier` (only ``solver="adam"`` and a
    constant learning rate exist here). Every epoch runs in one C++ call;
    computations are float32.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer; ``()`` gives a linear (softmax regression) model.
    activation : {"relu", "tanh", "logistic"}, default "relu"
        The hidden layers' activation (pydfn's "relu", "tanh", "sigmoid").
    alpha : float, default 1e-4
        Strength of the L2 penalty on the weights (not the biases), as in
        scikit-learn: a minibatch of ``n_b`` rows adds ``alpha / (2 * n_b) * ΣW²``
        to its loss. pydfn's core minimises ``mean loss + l2 * ΣW²``, with
        ``l2 = alpha / (2 * batch_size)`` here: both libraries' loss is the mean
        cross-entropy, so the cost is scikit-learn's. One difference: an epoch's
        last, smaller batch is penalised as a full one.
    batch_size : int or "auto", default "auto"
        Rows per Adam step; "auto" is ``min(200, n_samples)``. Clipped to the
        number of training samples.
    learning_rate_init : float, default 1e-3
        Adam's learning rate.
    max_iter : int, default 200
        Maximum number of epochs (``fit``).
    shuffle : bool, default True
        Visit the rows in a new random order each epoch.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the epochs' order and the validation split.
    tol : float, default 1e-4
        An epoch improves when the training loss falls (or, with early stopping,
        the validation accuracy rises) by more than ``tol``.
    verbose : bool, default False
        Print the loss of each epoch.
    warm_start : bool, default False
        ``fit`` continues from the previous fit's weights and Adam state.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified), stop
        when its accuracy stops improving and keep the best epoch's weights.
    validation_fraction : float, default 0.1
        Share of the training data held out for early stopping, in (0, 1).
    beta_1, beta_2 : float, default 0.9 and 0.999
        Adam's moment decay rates, in [0, 1).
    epsilon : float, default 1e-8
        Adam's denominator term.
    n_iter_no_change : int, default 10
        Stop after this many epochs without improvement by ``tol``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any values ``np.unique`` sorts).
    loss_curve_ : list of float
        Training loss of each epoch: mean cross-entropy + penalty, as
        scikit-learn's.
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float or None
        Validation accuracy of each epoch (with early stopping, else None).
    best_validation_score_ : float or None
        Best validation accuracy (with early stopping, else None).
    coefs_ : list of ndarray
        Weights, ``coefs_[i]`` of shape (n_units_in, n_units_out) of layer i.
    intercepts_ : list of ndarray
        Biases, ``intercepts_[i]`` of shape (n_units_out,).
    n_features_in_ : int
    n_iter_ : int
        Epochs run by the last ``fit`` (with warm start: all of them so far).
    t_ : int
        Training samples seen.
    n_layers_ : int
    n_outputs_ : int
        Number of output units: ``n_classes`` (two for a binary problem, unlike
        scikit-learn's single logistic unit).
    out_activation_ : str
        ``"softmax"``.
    model_ : pydfn.MLP
        The trained network.

    Notes
    -----
    Pickling stores the weights, the Adam state and the shuffling generator's
    state, so an unpickled estimator predicts and continues training exactly as
    the original would.
    """

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, alpha: float = 1e-4,
                 batch_size: Any = "auto", learning_rate_init: float = 1e-3, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # --- fitting -----------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels of any type ``np.unique`` can sort.

        Returns
        -------
        self
        """
        optimizer = self._check_hyperparameters()
        incremental = self.warm_start and hasattr(self, "model_")
        X, y = self._check_xy(X, y, reset=not incremental)
        if not incremental:
            self._initialize(X.shape[1], np.unique(y))
        return self._fit_epochs(X, self._encode(y), optimizer, self.max_iter, early_stopping=self.early_stopping)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """Train one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            Every class of the problem; required on the first call. Later calls
            may pass it again, unchanged.

        Returns
        -------
        self
        """
        optimizer = self._check_hyperparameters()
        first = not hasattr(self, "model_")
        X, y = self._check_xy(X, y, reset=first)
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if classes is not None:
            classes = np.unique(column_or_1d(classes))
            if first:
                self._initialize(X.shape[1], classes)
            elif not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as classes_={self.classes_!r} "
                                 "of the first call")
        return self._fit_epochs(X, self._encode(y), optimizer, 1, early_stopping=False)

    def _check_hyperparameters(self) -> Adam:
        """Check the parameters that are not the data's; return the Adam they describe."""
        hidden = self.hidden_layer_sizes
        hidden = [hidden] if isinstance(hidden, numbers.Integral) else list(hidden)
        for i, h in enumerate(hidden):
            positive_int(h, f"hidden_layer_sizes[{i}]")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real):
            raise TypeError(f"alpha must be a real number, got {type(self.alpha).__name__}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        positive_int(self.max_iter, "max_iter")
        positive_int(self.n_iter_no_change, "n_iter_no_change")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            positive_int(self.batch_size, "batch_size")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        try:
            return Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)
        except (TypeError, ValueError) as exc:  # say it with this class's names
            names = {"lr": "learning_rate_init", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon"}
            message = str(exc)
            for adam_name, name in names.items():
                message = message.replace(f"{adam_name} must", f"{name} must")
            raise type(exc)(message) from None

    def _check_xy(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float32, order="C")
        check_classification_targets(y)
        return X, y

    def _initialize(self, n_features: int, classes: np.ndarray) -> None:
        if classes.size < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes in y, got one class: {classes}")
        hidden = self.hidden_layer_sizes
        hidden = [int(hidden)] if isinstance(hidden, numbers.Integral) else [int(h) for h in hidden]
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        self.classes_ = classes
        self.model_ = MLP([n_features, *hidden, classes.size], seed=int(seed),
                          activation=_ACTIVATIONS[self.activation])
        self._optimizer: Adam | None = None
        self.n_layers_ = len(hidden) + 2
        self.n_outputs_ = int(classes.size)
        self.out_activation_ = "softmax"
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels as indices into ``classes_``, int32 of shape (n_samples,)."""
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown} that are not in classes_ {self.classes_}")
        return np.searchsorted(self.classes_, y).astype(np.int32)

    def _set_l2(self, l2: float) -> None:
        # alpha and the batch size may change between fits, and pydfn.MLP fixes its penalty when
        # it is made: set it as checkpoint.from_arrays sets a model's state, through the core
        self.model_._net.set_penalty(0.0, l2)
        self.model_.l2 = l2

    def _fit_epochs(self, X: np.ndarray, y: np.ndarray, optimizer: Adam, epochs: int, *,
                    early_stopping: bool) -> MLPClassifier:
        # Keep the Adam the model holds moments for while its hyper-parameters stay the same.
        if self._optimizer is None or self._optimizer.hyperparameters() != optimizer.hyperparameters():
            self._optimizer = optimizer
        X_val = y_val = None
        if early_stopping:
            X, X_val, y, y_val = train_test_split(X, y, test_size=self.validation_fraction, stratify=y,
                                                  random_state=check_random_state(self.random_state))
        n = X.shape[0]
        batch_size = min(200 if self.batch_size == "auto" else self.batch_size, n)
        self._set_l2(float(self.alpha) / (2 * batch_size))
        best = -np.inf if early_stopping else np.inf  # validation accuracy, else training loss
        scores: list[float] = []
        best_weights = None
        no_improvement = 0
        for _ in range(epochs):
            loss = self.model_.train_epoch(X, y, self._optimizer, batch_size=batch_size, shuffle=self.shuffle,
                                           check_finite=False)  # validate_data checked X
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if X_val is not None:
                score = float(np.mean(self.model_.predict(X_val) == y_val))
                scores.append(score)
                improved = score > best + self.tol
                if score > best:
                    best, best_weights = score, self.model_.get_weights()
            else:
                improved = loss < best - self.tol
                best = min(best, loss)
            no_improvement = 0 if improved else no_improvement + 1
            if no_improvement > self.n_iter_no_change:
                if self.verbose:
                    print(f"No improvement of more than tol={self.tol} for {self.n_iter_no_change} "
                          "consecutive epochs: stopping.")
                break
        else:
            if epochs > 1:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({epochs}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        if best_weights is not None:
            self.model_.set_weights(best_weights)
        self.best_loss_ = None if early_stopping else float(best)
        self.validation_scores_ = scores if early_stopping else None
        self.best_validation_score_ = float(best) if early_stopping else None
        return self

    # --- inference ---------------------------------------------------------------

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ndarray of shape (n_samples, n_classes), float64, columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        z = self.model_.predict_logits(X).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, ndarray of shape (n_samples, n_classes)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, ndarray of shape (n_samples,), of ``classes_``'s dtype."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        return self.classes_[self.model_.predict(X)]

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weights of each layer, shape (n_units_in, n_units_out)."""
        check_is_fitted(self)
        return self.model_.get_weights()[0::2]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Biases of each layer, shape (n_units_out,)."""
        check_is_fitted(self)
        return self.model_.get_weights()[1::2]

    # --- pickling: the C++ network travels as its checkpoint arrays ---------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # BaseEstimator's is self.__dict__ itself
        if "model_" in state:
            state["model_"] = checkpoint.to_arrays(state["model_"])
            # the optimizer whose moments the model holds is the one it restores
            state["_optimizer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "model_" in state:
            state = dict(state)
            state["model_"] = checkpoint.from_arrays(state["model_"])
            state["_optimizer"] = state["model_"].optimizer
        super().__setstate__(state)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags
