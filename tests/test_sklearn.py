"""pydfn.sklearn: scikit-learn's own estimator checks, equivalence with pydfn.MLP, alpha's meaning
against scikit-learn's, pipelines, grid search on Fashion-MNIST, pickling, and the thread pool seen
by threadpoolctl."""

import pickle
import subprocess
import sys
import tempfile

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import pydfn  # noqa: E402
from pydfn.sklearn import MLPClassifier  # noqa: E402

from _training_data import blobs  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread(threads):
    # These problems are tiny: one thread runs them ~10x faster on a busy machine,
    # and results do not depend on the thread count.
    pydfn.set_num_threads(1)


def run_python(code, timeout=120):
    """Run code in a fresh interpreter outside the repository (so it imports the installed pydfn)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                         cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    return out.stdout


def small_problem(n=300, n_classes=3):
    x, y = blobs(n=n, n_features=8, n_classes=n_classes, seed=3)
    return x, y


def smooth_function(n=300):
    """x float32 (n, 3) uniform in [-2, 2]; y = sin(x0) + x1² − x2/2, float64 of shape (n,)."""
    x = np.random.default_rng(0).uniform(-2, 2, size=(n, 3)).astype(np.float32)
    x0, x1, x2 = x.T.astype(np.float64)
    return x, np.sin(x0) + x1 ** 2 - 0.5 * x2


def squared_weights(estimator):
    return sum(float(np.square(w, dtype=np.float64).sum()) for w in estimator.coefs_)


# The checks' datasets are tiny, so the default max_iter ends without convergence and
# warns, as scikit-learn's own MLPClassifier does: that warning is expected here.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([MLPClassifier(random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_importing_pydfn_does_not_import_sklearn():
    out = run_python("import sys, pydfn; print('sklearn' in sys.modules, 'threadpoolctl' in sys.modules)")
    assert out.split() == ["False", "False"]


def test_fit_is_pydfn_mlp_trained_epoch_by_epoch():
    x, y = small_problem()
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), activation="logistic", alpha=0.3, max_iter=3, random_state=7,
                        learning_rate_init=3e-3, batch_size=32)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        clf.fit(x, y)
    seed = np.random.RandomState(7).randint(np.iinfo(np.int32).max)
    model = pydfn.MLP([8, 16, 8, 3], seed=int(seed), activation="sigmoid", l2=0.3 / (2 * 32))
    adam = pydfn.Adam(lr=3e-3)
    losses = [model.train_epoch(x, y, adam, batch_size=32) for _ in range(3)]
    assert clf.loss_curve_ == losses
    weights = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(clf.coefs_, weights[0::2]))
    assert all(np.array_equal(a, b) for a, b in zip(clf.intercepts_, weights[1::2]))
    assert [c.shape for c in clf.coefs_] == [(8, 16), (16, 8), (8, 3)]
    assert (clf.n_iter_, clf.t_, clf.n_layers_, clf.n_outputs_) == (3, 900, 4, 3)
    np.testing.assert_allclose(clf.predict_proba(x), model.predict_proba(x), rtol=1e-5, atol=1e-7)


def sklearn_cost_and_gradients(x, labels, w, b, alpha):
    """scikit-learn's objective and its gradient for a linear model on one batch of B rows, from
    its _backprop and _compute_loss_grad: with ŷ the softmax output, dW = (xᵀ(ŷ − y) + alpha·W) / B
    and db = Σ(ŷ − y) / B, the gradient of mean cross-entropy plus alpha / (2B)·ΣW²."""
    x, w, b = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    z = x @ w + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    out = p / p.sum(axis=1, keepdims=True)
    data = -np.log(out[np.arange(len(x)), labels]).mean()
    error = out - np.eye(w.shape[1])[labels]
    cost = data + alpha / (2 * len(x)) * np.square(w).sum()
    return cost, (x.T @ error + alpha * w) / len(x), error.sum(axis=0) / len(x)


def test_the_cost_is_sklearns():
    x, y = small_problem(n=32)
    clf = MLPClassifier(hidden_layer_sizes=(), alpha=0.7, batch_size=32, max_iter=2, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(x, y)
    cost, (dw, db) = clf.model_.loss_and_gradients(x, y)
    expected = sklearn_cost_and_gradients(x, y, clf.coefs_[0], clf.intercepts_[0], alpha=0.7)
    np.testing.assert_allclose(cost, expected[0], rtol=1e-5)
    np.testing.assert_allclose(dw, expected[1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(db, expected[2], rtol=1e-4, atol=1e-6)


@pytest.fixture
def one_blas_thread():
    """scikit-learn's MLPs on small problems: several times faster on one BLAS thread."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


def three_classes_of_smooth_function():
    x, y = smooth_function()
    return x, np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_alpha_shrinks_the_weights_as_much_as_in_sklearn(one_blas_thread):
    x, y = smooth_function()
    y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))  # three classes
    kwargs = dict(hidden_layer_sizes=(32,), max_iter=200, batch_size=50, learning_rate_init=0.01, random_state=0)
    norms = [squared_weights(MLPClassifier(alpha=alpha, **kwargs).fit(x, y)) for alpha in (0, 0.1, 1, 10, 100)]
    assert all(a > b for a, b in zip(norms, norms[1:])), norms
    # Same alpha, same ΣW² as scikit-learn's to within 10% (measured: 0.99 to 1.02 over three seeds),
    # where an alpha off by a factor 2 moves the ratio to 0.55-0.8 or 1.15-1.6.
    for alpha in (1, 3):
        ratio = squared_weights(MLPClassifier(alpha=alpha, **kwargs).fit(x, y)) / \
            squared_weights(SklearnMLPClassifier(alpha=alpha, **kwargs).fit(x, y))
        assert 0.9 < ratio < 1.1, (alpha, ratio)


@pytest.mark.parametrize("labels", [np.array([-3, 7, 100]), np.array(["cat", "dog", "emu"]),
                                    np.array([2.0, 4.0, 8.0])])
def test_any_label_values_train_as_their_sorted_indices(labels):
    x, y = small_problem()
    kwargs = dict(hidden_layer_sizes=(10,), max_iter=20, random_state=0, n_iter_no_change=50, learning_rate_init=0.01)
    with pytest.warns(ConvergenceWarning):
        by_index = MLPClassifier(**kwargs).fit(x, y)
    with pytest.warns(ConvergenceWarning):
        by_label = MLPClassifier(**kwargs).fit(x, labels[y])
    np.testing.assert_array_equal(by_label.classes_, labels)
    assert all(np.array_equal(a, b) for a, b in zip(by_label.coefs_, by_index.coefs_))
    np.testing.assert_array_equal(by_label.predict(x), labels[by_index.predict(x)])
    assert by_label.score(x, labels[y]) == by_index.score(x, y) > 0.9


def test_binary_problem_gives_two_probability_columns():
    x, y = small_problem(n_classes=2)
    clf = MLPClassifier(hidden_layer_sizes=(8,), tol=1e-3, random_state=0).fit(x, y == 1)
    proba = clf.predict_proba(x)
    assert proba.shape == (300, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_, [False, True])
    np.testing.assert_array_equal(clf.predict(x), proba.argmax(axis=1) == 1)


def test_tol_stops_after_n_iter_no_change_epochs_without_warning():
    x, y = small_problem()
    # With a huge tol only the first epoch improves; it stops after n_iter_no_change + 1 more.
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, tol=10.0, n_iter_no_change=2, random_state=0)
    clf.fit(x, y)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.validation_scores_ is None


def test_early_stopping_keeps_the_best_validation_epoch():
    x, y = blobs(n=400, n_features=8, n_classes=3, seed=5, noise=4.0)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, early_stopping=True, validation_fraction=0.25,
                        n_iter_no_change=3, random_state=1, learning_rate_init=0.01).fit(x, y)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_) and clf.best_loss_ is None
    # the split the estimator made, remade: its weights are those of the best epoch
    _, x_val, _, y_val = train_test_split(x, y, test_size=0.25, stratify=y, random_state=np.random.RandomState(1))
    assert clf.score(x_val, y_val) == clf.best_validation_score_


def test_partial_fit_epochs_equal_one_fit_and_warm_start_continues_exactly():
    x, y = small_problem()
    kwargs = dict(hidden_layer_sizes=(12,), random_state=2, batch_size=50, n_iter_no_change=50)
    with pytest.warns(ConvergenceWarning):
        whole = MLPClassifier(max_iter=4, **kwargs).fit(x, y)
    parts = MLPClassifier(**kwargs)
    for _ in range(4):
        parts.partial_fit(x, y, classes=[0, 1, 2])
    warm = MLPClassifier(max_iter=2, warm_start=True, **kwargs)
    for _ in range(2):
        with pytest.warns(ConvergenceWarning):
            warm.fit(x, y)
    for other in (parts, warm):
        assert other.loss_curve_ == whole.loss_curve_ and other.n_iter_ == 4
        assert all(np.array_equal(a, b) for a, b in zip(other.coefs_, whole.coefs_))


def test_partial_fit_errors():
    x, y = small_problem()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(x, y)
    clf = MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(x, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"y holds labels \[7\] that are not in classes_"):
        clf.partial_fit(x, np.where(y == 0, 7, y))
    with pytest.raises(ValueError, match="is not the same as classes_"):
        clf.partial_fit(x, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="X has 5 features"):
        clf.partial_fit(x[:, :5], y)


@pytest.mark.parametrize("params, error, match", [
    (dict(activation="identity"), ValueError, r"activation must be one of \['logistic', 'relu', 'tanh'\], got 'iden"),
    (dict(alpha=-1e-4), ValueError, "alpha must be a finite number >= 0, got -0.0001"),
    (dict(alpha=float("inf")), ValueError, "alpha must be a finite number >= 0, got inf"),
    (dict(alpha="strong"), TypeError, "alpha must be a real number, got str"),
    (dict(hidden_layer_sizes=(10, 0)), ValueError, r"hidden_layer_sizes\[1\] must be >= 1"),
    (dict(hidden_layer_sizes=(10.5,)), TypeError, r"hidden_layer_sizes\[0\] must be an integer"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(batch_size="big"), TypeError, "batch_size must be an integer"),
    (dict(max_iter=0), ValueError, "max_iter must be >= 1"),
    (dict(validation_fraction=1.0), ValueError, r"validation_fraction must be in \(0, 1\)"),
    (dict(tol=-1.0), ValueError, "tol must be >= 0"),
    (dict(learning_rate_init=0.0), ValueError, "learning_rate_init must be a finite number > 0"),
    (dict(beta_2=1.0), ValueError, r"beta_2 must be in \[0, 1\)"),
    (dict(epsilon="small"), TypeError, "epsilon must be a real number"),
])
def test_bad_hyperparameters_name_themselves(params, error, match):
    x, y = small_problem()
    with pytest.raises(error, match=match):
        MLPClassifier(**params).fit(x, y)


def test_pickle_round_trip_predicts_and_continues_identically():
    x, y = small_problem()
    clf = MLPClassifier(hidden_layer_sizes=(12,), max_iter=3, random_state=0, batch_size=64, alpha=0.1)
    with pytest.warns(ConvergenceWarning):
        clf.fit(x, y)
    copy = pickle.loads(pickle.dumps(clf))
    assert isinstance(clf.model_, pydfn.MLP)  # pickling left the original whole
    np.testing.assert_array_equal(copy.predict_proba(x), clf.predict_proba(x))
    assert copy.get_params() == clf.get_params() and copy.loss_curve_ == clf.loss_curve_
    # the Adam moments and step count, the shuffling generator and the penalty came along
    for est in (clf, copy):
        est.partial_fit(x, y)
    assert copy.loss_curve_ == clf.loss_curve_
    assert all(np.array_equal(a, b) for a, b in zip(copy.coefs_, clf.coefs_))
    unfitted = pickle.loads(pickle.dumps(MLPClassifier(alpha=0.0, max_iter=7)))
    assert unfitted.max_iter == 7 and not hasattr(unfitted, "model_")


@pytest.fixture(scope="module")
def fashion_subset(tmp_path_factory):
    """600 training and 500 test images of Fashion-MNIST, float32 in [0, 1]."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        try:
            (x, y), (x_test, y_test) = pydfn.datasets.load_fashion_mnist(download=False)
        except FileNotFoundError:
            pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    prep = pydfn.datasets.prepare_images
    return prep(x[:600]), y[:600], prep(x_test[:500]), y_test[:500]


def test_grid_search_over_a_pipeline_on_fashion_mnist(fashion_subset):
    x, y, x_test, y_test = fashion_subset
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=8, batch_size=32, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(32,), (64, 32)],
                               "mlpclassifier__learning_rate_init": [1e-3, 3e-3]}, cv=2)
    with pytest.warns(ConvergenceWarning):
        grid.fit(x, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_score_ == grid.cv_results_["mean_test_score"].max() > 0.6
    assert grid.score(x_test, y_test) > 0.65  # ten classes: chance is 0.1
    np.testing.assert_array_equal(grid.best_estimator_[-1].classes_, np.arange(10))


THREADPOOLCTL = """
import threadpoolctl, pydfn
pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]
print(any("gomp" in p["filepath"] or "omp" in p["prefix"] for p in pools))
before = pydfn.get_num_threads()
with threadpoolctl.threadpool_limits(1, user_api="openmp"):
    limited = pydfn.get_num_threads()
after = pydfn.get_num_threads()
pydfn.set_num_threads(2)
with threadpoolctl.threadpool_limits(1, user_api="openmp"):
    explicit = pydfn.get_num_threads()
print(before, limited, after, explicit)
"""


def test_threadpoolctl_sees_and_limits_the_openmp_pool():
    pytest.importorskip("threadpoolctl")
    if not pydfn._core.has_openmp():
        pytest.skip("built without OpenMP")
    found, numbers = run_python(THREADPOOLCTL).splitlines()
    before, limited, after, explicit = map(int, numbers.split())
    assert found == "True"
    # threadpoolctl limits OpenMP's default, which pydfn follows unless set_num_threads was called
    assert (limited, after, explicit) == (1, before, 2)
