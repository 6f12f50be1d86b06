"""scikit-learn estimators on pydfn's core: drop-in for ``sklearn.neural_network``.

Needs the optional extra: ``pip install pydfn[sklearn]``. ``import pydfn`` does not
import this module or scikit-learn.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Iterable, TypeVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils._param_validation import InvalidParameterError  # scikit-learn's own kind of error
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._validation import as_sample_weight, nonnegative_real, positive_int, real
from .model import MLP
from .optim import Adam

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names -> the core's ("identity" has no counterpart there)
_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}

_Estimator = TypeVar("_Estimator", bound="_BaseMLP")


def _hidden_sizes(hidden: Any) -> list[int]:
    """``hidden_layer_sizes`` as a list of ints >= 1 (an int is one layer), else TypeError/ValueError naming it."""
    if isinstance(hidden, numbers.Integral):
        hidden = [hidden]
    elif isinstance(hidden, (str, bytes)) or not isinstance(hidden, Iterable):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got {type(hidden).__name__}")
    return [positive_int(h, f"hidden_layer_sizes[{i}]") for i, h in enumerate(hidden)]


def _mixed_types(labels: Any, name: str) -> TypeError:
    """The error for ``labels`` whose types do not sort together (NumPy says only "'<' not supported")."""
    kinds = sorted({type(v).__name__ for v in np.asarray(labels, dtype=object).ravel()})
    return TypeError(f"{name} mixes labels of types that do not sort together ({', '.join(kinds)}): "
                     "give every label the same type")


def _docstring(summary: str, *, loss: str, alpha: str, score: str, loss_curve: str, extra_attributes: str,
               n_outputs: str, out_activation: str) -> str:
    """The numpydoc docstring of an estimator: the parts they share, around the parts given."""
    return f"""{summary}

    Hidden layers of the chosen activation, {loss},
    Adam. The parameters mean what they mean in scikit-learn's estimator of the
    same name (only ``solver="adam"`` and ``learning_rate="constant"`` exist here).
    Every epoch runs in one C++ call; computations are float32.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer; ``()`` gives a model without hidden layers.
    activation : {{"relu", "tanh", "logistic"}}, default "relu"
        The hidden layers' activation (pydfn's "relu", "tanh", "sigmoid").
    solver : {{"adam"}}, default "adam"
        Taken for scikit-learn compatibility; other solvers raise scikit-learn's
        ``InvalidParameterError`` (a ValueError) in ``fit``.
    learning_rate : {{"constant"}}, default "constant"
        Taken for scikit-learn compatibility: Adam's rate is ``learning_rate_init``
        throughout; "invscaling" and "adaptive" are refused as ``solver`` is.
    alpha : float, default 1e-4
        Strength of the L2 penalty on the weights (not the biases), as in
        scikit-learn: a minibatch of ``n_b`` rows adds ``alpha / (2 * n_b) * ΣW²``
        to its loss. pydfn's core minimises ``mean loss + l2 * ΣW²``, with
        {alpha}
        A cost multiplied by a constant has the same minimum, and Adam takes the
        same steps on it (but for ``epsilon``). One difference: an epoch's last,
        smaller batch is penalised as a full one.
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
        the validation {score} rises) by more than ``tol``.
    verbose : bool, default False
        Print the loss of each epoch.
    warm_start : bool, default False
        ``fit`` continues from the previous fit's weights and Adam state, with the
        other parameters as they are now (``alpha``, ``learning_rate_init``, ...); a
        change of ``hidden_layer_sizes`` or ``activation`` refits from scratch.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data, stop when its
        {score} stops improving and keep the best epoch's weights.
    validation_fraction : float, default 0.1
        Share of the training data held out for early stopping, in (0, 1).
    beta_1, beta_2 : float, default 0.9 and 0.999
        Adam's moment decay rates, in [0, 1).
    epsilon : float, default 1e-8
        Adam's denominator term.
    n_iter_no_change : int, default 10
        Stop after this many epochs without improvement by ``tol``.

    Attributes
    ----------{extra_attributes}
    loss_ : float
        Training loss of the last epoch (``loss_curve_[-1]``).
    loss_curve_ : list of float
        Training loss of each epoch: {loss_curve}
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float or None
        Validation {score} of each epoch (with early stopping, else None).
    best_validation_score_ : float or None
        Best validation {score} (with early stopping, else None).
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
        {n_outputs}
    out_activation_ : str
        {out_activation}
    model_ : pydfn.MLP
        The trained network.

    Notes
    -----
    Pickling stores the weights, the Adam state and the shuffling generator's
    state, so an unpickled estimator predicts and continues training exactly as
    the original would.
    """


class _BaseMLP(BaseEstimator):
    """What the two estimators share: parameters, their checks, the epoch loop, weights, pickling."""

    _loss = ""  # pydfn's loss
    _loss_scale = 1.0  # pydfn's cost times this is the loss as scikit-learn reports it
    _stratify = False  # split off the early-stopping set class by class

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 1e-4, batch_size: Any = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 1e-3, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
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

    # --- what each estimator defines ---------------------------------------------

    def _check_xy(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` validated: X float32 (n_samples, n_features), y as the estimator takes it."""
        raise NotImplementedError

    def _initialize(self, n_features: int, y: np.ndarray) -> None:
        """Set the output-related attributes from ``y`` (or the classes) and ``_build`` the network."""
        raise NotImplementedError

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """``y`` as the core's targets."""
        raise NotImplementedError

    def _l2(self, batch_size: int) -> float:
        """pydfn's l2 that gives ``alpha`` its scikit-learn meaning for minibatches of ``batch_size``."""
        raise NotImplementedError

    def _validation_score(self, X: np.ndarray, y: np.ndarray) -> float:
        """The early-stopping score on validated X and encoded y: higher is better."""
        raise NotImplementedError

    # --- fitting -----------------------------------------------------------------

    def fit(self: _Estimator, X: Any, y: Any, sample_weight: Any = None) -> _Estimator:
        """Train on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels of any type ``np.unique`` can sort (classifier), or
            regression targets.
        sample_weight : array-like of shape (n_samples,), optional
            Each sample's loss weight (finite, >= 0, not all 0): a minibatch's loss is
            ``Σ w_i·l_i / B`` (Keras's ``sum_over_batch_size``, see :meth:`pydfn.MLP.fit`).
            With ``early_stopping`` the weights are split with the samples and the
            validation score is unweighted. Unlike scikit-learn 1.9's MLP, which divides
            by the batch's Σ w_i (loss and alpha's penalty) and weights the validation
            score: under Adam that rescales each batch's gradient, not its direction.

        Returns
        -------
        self
        """
        return self._train(X, y, epochs=self.max_iter, keep=self.warm_start, early_stopping=self.early_stopping,
                           sample_weight=sample_weight)

    def _train(self: _Estimator, X: Any, y: Any, *, epochs: int, keep: bool, early_stopping: bool,
               classes: np.ndarray | None = None, sample_weight: Any = None) -> _Estimator:
        """Check everything, make a new network unless ``keep`` and one exists (its
        outputs from ``classes``, else from ``y``), train ``epochs`` epochs."""
        optimizer = self._check_hyperparameters()
        keep = keep and hasattr(self, "model_") and self._same_architecture()
        X, y = self._check_xy(X, y, reset=not keep)
        weights = None if sample_weight is None else as_sample_weight(sample_weight, X.shape[0])
        if not keep:
            self._initialize(X.shape[1], y if classes is None else classes)
        return self._fit_epochs(X, self._encode(y), optimizer, epochs, early_stopping=early_stopping,
                                sample_weight=weights)

    def _same_architecture(self) -> bool:
        """Whether model_ has the hidden layers and activation the parameters now ask for: a warm
        start continues it only then, and otherwise refits from scratch (the old weights do not fit)."""
        return (self.model_.layer_sizes[1:-1] == _hidden_sizes(self.hidden_layer_sizes)
                and self.model_.activation == _ACTIVATIONS[self.activation])

    def _check_hyperparameters(self) -> Adam:
        """Check the parameters that are not the data's; return the Adam they describe."""
        _hidden_sizes(self.hidden_layer_sizes)
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        for name, allowed in (("solver", "adam"), ("learning_rate", "constant")):
            if not (isinstance(getattr(self, name), str) and getattr(self, name) == allowed):
                raise InvalidParameterError(f"The {name!r} parameter of {type(self).__name__} must be a str among "
                                            f"{{{allowed!r}}} (pydfn trains with Adam at a constant learning "
                                            f"rate). Got {getattr(self, name)!r} instead.")
        nonnegative_real(self.alpha, "alpha")
        positive_int(self.max_iter, "max_iter")
        positive_int(self.n_iter_no_change, "n_iter_no_change")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            positive_int(self.batch_size, "batch_size")
        if not 0 < real(self.validation_fraction, "validation_fraction") < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        if not real(self.tol, "tol") >= 0:  # NaN fails
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        if isinstance(self.learning_rate_init, (int, float)) and not self.learning_rate_init > 0:
            # scikit-learn's rule (its MLP's learning_rate_init is in (0, inf)); Adam takes 0
            raise ValueError(f"learning_rate_init must be a finite number > 0, got {self.learning_rate_init!r}")
        try:
            return Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)
        except (TypeError, ValueError) as exc:  # say it with this class's names
            names = {"lr": "learning_rate_init", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon"}
            message = str(exc)
            for adam_name, name in names.items():
                message = message.replace(f"{adam_name} must", f"{name} must")
            raise type(exc)(message) from None

    def _build(self, n_features: int, n_outputs: int, out_activation: str) -> None:
        """A new network and fresh training state."""
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        self.model_ = MLP([n_features, *hidden, n_outputs], seed=int(seed), activation=_ACTIVATIONS[self.activation],
                          loss=self._loss)
        self.n_layers_ = len(hidden) + 2
        self.n_outputs_ = n_outputs
        self.out_activation_ = out_activation
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []

    def _fit_epochs(self: _Estimator, X: np.ndarray, y: np.ndarray, optimizer: Adam, epochs: int, *,
                    early_stopping: bool, sample_weight: np.ndarray | None = None) -> _Estimator:
        X_val = y_val = None
        if early_stopping:
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(*arrays, test_size=self.validation_fraction,
                                     stratify=y if self._stratify else None,
                                     random_state=check_random_state(self.random_state))
            X, X_val, y, y_val = parts[:4]
            if sample_weight is not None:
                sample_weight = parts[4]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small: increase validation_fraction or "
                                 "the size of the data set.")
        n = X.shape[0]
        batch_size = min(200 if self.batch_size == "auto" else self.batch_size, n)
        self.model_.set_penalty(l2=self._l2(batch_size))  # alpha and the batch size may change between fits
        best = -np.inf if early_stopping else np.inf  # validation score, else training loss
        scores: list[float] = []
        best_weights = None
        no_improvement = 0
        for _ in range(epochs):
            loss = self._loss_scale * self.model_.train_epoch(X, y, optimizer, batch_size=batch_size,
                                                              shuffle=self.shuffle, sample_weight=sample_weight,
                                                              check_finite=False)  # validate_data checked X
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if X_val is not None and y_val is not None:
                score = self._validation_score(X_val, y_val)
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
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
        if best_weights is not None:
            self.model_.set_weights(best_weights)
        self.loss_ = self.loss_curve_[-1]
        self.best_loss_ = None if early_stopping else float(best)
        self.validation_scores_ = scores if early_stopping else None
        self.best_validation_score_ = float(best) if early_stopping else None
        return self

    # --- inference ---------------------------------------------------------------

    def _outputs(self, X: Any) -> np.ndarray:
        """The output layer (logits or predictions), ndarray of shape (n_samples, n_outputs), float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        return self.model_.predict_logits(X).astype(np.float64)

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

    def to_onnx(self, path: Any, *, probabilities: bool = False) -> None:
        """Write the fitted network to ``path`` as an ONNX graph (see :meth:`pydfn.MLP.to_onnx`):
        output ``logits`` (the classifier's columns in ``classes_`` order, whose labels the
        metadata holds as ``class_names``; the regressor's predictions, shape (batch,
        n_outputs)) or, for the classifier, ``probabilities``. Needs ``pip install 'pydfn[onnx]'``."""
        check_is_fitted(self)
        classes = getattr(self, "classes_", None)
        self.model_.to_onnx(path, probabilities=probabilities, class_names=None if classes is None else list(classes))


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = _docstring(
        "Multi-layer perceptron classifier trained by pydfn's C++ core.",
        loss="a softmax output, the mean cross-entropy loss",
        alpha="``l2 = alpha / (2 * batch_size)`` here: both libraries' loss is the mean\n"
              "        cross-entropy, so the cost is scikit-learn's.",
        score="accuracy",
        loss_curve="mean cross-entropy + penalty, as\n        scikit-learn's.",
        extra_attributes="\n    classes_ : ndarray of shape (n_classes,)\n"
                         "        The class labels (any values ``np.unique`` sorts).",
        n_outputs="Number of output units: ``n_classes`` (two for a binary problem, unlike\n"
                  "        scikit-learn's single logistic unit).",
        out_activation='``"softmax"``.')

    _loss = "softmax_xent"
    _stratify = True

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
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if classes is not None:
            try:
                classes = np.unique(column_or_1d(classes))
            except TypeError:
                raise _mixed_types(classes, "classes") from None
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as classes_={self.classes_!r} "
                                 "of the first call")
        return self._train(X, y, epochs=1, keep=True, early_stopping=False, classes=classes)

    def _check_xy(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float32, order="C")
        try:
            check_classification_targets(y)
        except TypeError:  # it sorts y
            raise _mixed_types(y, "y") from None
        return X, y

    def _initialize(self, n_features: int, y: np.ndarray) -> None:
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes in y, got one class: {classes}")
        self.classes_ = classes
        self._build(n_features, int(classes.size), "softmax")

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels as indices into ``classes_``, int32 of shape (n_samples,)."""
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown} that are not in classes_ {self.classes_}")
        return np.searchsorted(self.classes_, y).astype(np.int32)

    def _l2(self, batch_size: int) -> float:
        return float(self.alpha) / (2 * batch_size)

    def _validation_score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.model_.predict(X) == y))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ndarray of shape (n_samples, n_classes), float64, columns in ``classes_`` order."""
        z = self._outputs(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, ndarray of shape (n_samples, n_classes)."""
        with np.errstate(divide="ignore"):
            log: np.ndarray = np.log(self.predict_proba(X))
        return log

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, ndarray of shape (n_samples,), of ``classes_``'s dtype."""
        best = self._outputs(X).argmax(axis=1)  # first: it raises NotFittedError
        labels: np.ndarray = self.classes_[best]
        return labels

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = _docstring(
        "Multi-layer perceptron regressor trained by pydfn's C++ core.",
        loss="a linear output, the mean squared-error loss",
        alpha="``l2 = alpha / (n_outputs * batch_size)`` here: scikit-learn's squared\n"
              "        error is ½·Σ over the outputs of (y − ŷ)², averaged over the rows (so its\n"
              "        gradient says), and pydfn's ``mse``, (y − ŷ)² averaged over rows and\n"
              "        outputs, is 2 / n_outputs times that; with l2 2 / n_outputs times\n"
              "        ``alpha / (2 * batch_size)``, the cost is 2 / n_outputs times scikit-learn's.",
        score="R²",
        loss_curve="½·mean squared error (over rows and\n"
                   "        outputs) + penalty, half pydfn's cost. With one output this is\n"
                   "        scikit-learn's loss; with more, scikit-learn reports its penalty\n"
                   "        n_outputs times as large (its gradient does not).",
        extra_attributes="",
        n_outputs="Number of targets.",
        out_activation='``"identity"``.')

    _loss = "mse"
    _loss_scale = 0.5  # scikit-learn halves the squared error

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            With the first call's number of outputs.

        Returns
        -------
        self
        """
        return self._train(X, y, epochs=1, keep=True, early_stopping=False)

    def _check_xy(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float32, order="C", multi_output=True,
                             y_numeric=True)
        return X, y

    def _initialize(self, n_features: int, y: np.ndarray) -> None:
        # predictions take y's shape: (n_samples,) for a 1-D y, else (n_samples, n_outputs)
        self._flat_y = y.ndim == 1
        self._build(n_features, 1 if self._flat_y else int(y.shape[1]), "identity")

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Targets as float32 of shape (n_samples, n_outputs)."""
        y = y.reshape(len(y), -1)
        if y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} outputs but this model has {self.n_outputs_}")
        return np.ascontiguousarray(y, dtype=np.float32)

    def _l2(self, batch_size: int) -> float:
        return float(self.alpha) / (self.n_outputs_ * batch_size)

    def _validation_score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(r2_score(y.astype(np.float64), self.model_.predict_logits(X).astype(np.float64)))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, float64 ndarray of y's shape at the first fit: (n_samples,) for a
        1-D y, else (n_samples, n_outputs), even with one output (which scikit-learn's
        MLPRegressor flattens, warning)."""
        out = self._outputs(X)
        return out.ravel() if self._flat_y else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
