"""The training figures: training_curves and confusion_matrix."""

import sys

import numpy as np
import pytest

import pydfn
from pydfn import plot
from pydfn.history import History

from _subprocess import run_python

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def needs_matplotlib():
    return pytest.importorskip("matplotlib", reason='the plots need matplotlib: pip install "pydfn[plot]"')


def fake_history(val_loss):
    history = History({"metrics": ["loss", "accuracy", "val_loss", "val_accuracy", "time"]})
    for epoch, v in enumerate(val_loss):
        history.record(epoch, {"loss": 1 / (epoch + 1), "accuracy": 0.5 + epoch / 100,
                                "val_loss": v, "val_accuracy": 0.6, "time": 1.0})
    return history


def test_training_curves_plot_both_metrics_and_mark_the_best_epoch(tmp_path):
    needs_matplotlib()
    fig = plot.training_curves(fake_history([0.9, 0.5, 0.4, 0.45, 0.6]))
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title().startswith("Loss") and acc_ax.get_title() == "Accuracy"
    train, val, best = loss_ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(val.get_ydata(), [0.9, 0.5, 0.4, 0.45, 0.6])
    assert list(best.get_xdata()) == [3, 3] and best.get_label() == "best val_loss: epoch 3"
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == [
        "training", "validation", "best val_loss: epoch 3"]
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC


def test_training_curves_from_a_dict_without_validation():
    needs_matplotlib()
    fig = plot.training_curves({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]})
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]


def test_training_curves_of_a_real_fit():
    needs_matplotlib()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 5)).astype(np.float32), rng.integers(0, 3, 200)
    history = pydfn.MLP([5, 8, 3]).fit(x, y, pydfn.Adam(), epochs=3, validation_split=0.2, verbose=0)
    fig = plot.training_curves(history)
    assert list(fig.axes[0].get_lines()[1].get_ydata()) == history.history["val_loss"]


@pytest.mark.parametrize("history, error, match", [
    ([0.5, 0.4], TypeError, "history must be a pydfn History or its .history dict"),
    ({}, ValueError, "history holds no epochs"),
    (History(), ValueError, "history holds no epochs"),
])
def test_training_curves_bad_input(history, error, match):
    needs_matplotlib()
    with pytest.raises(error, match=match):
        plot.training_curves(history)


def test_confusion_matrix_figure_shows_row_fractions_and_class_names(tmp_path):
    needs_matplotlib()
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 2, 2]
    fig = plot.confusion_matrix(y_true, y_pred, class_names=["cat", "dog", "cow"])
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.get_images()[0].get_array(),
                               [[0.5, 0.5, 0], [0, 2 / 3, 1 / 3], [0, 0, 1]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "cow"]
    assert [t.get_text() for t in ax.texts][:3] == ["0.50", "0.50", "0.00"]
    assert ax.get_title().endswith("accuracy 0.6667")
    counts = plot.confusion_matrix(y_true, y_pred, normalize=False)
    assert [t.get_text() for t in counts.axes[0].texts][3:6] == ["0", "2", "1"]
    fig.savefig(tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == PNG_MAGIC


def test_without_matplotlib_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(ImportError, match=r'pip install "pydfn\[plot\]"'):
        plot.training_curves({"loss": [1.0], "accuracy": [0.5]})


def test_plots_leave_the_users_backend_and_pyplot_alone(tmp_path):
    """A notebook's (here: a custom) backend survives every plot function, and pyplot does not
    track pydfn's figures: a notebook shows a returned figure once, and plt.show() shows only
    the user's own figures."""
    needs_matplotlib()
    (tmp_path / "users_backend.py").write_text(
        "from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas\n")
    out = run_python(
        "import matplotlib\n"
        "matplotlib.use('module://users_backend')\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "from pydfn import plot\n"
        "mine = plt.figure()\n"
        "figs = [plot.training_curves({'loss': [1.0, 0.5], 'accuracy': [0.5, 0.7]}),\n"
        "        plot.confusion_matrix([0, 1, 1], [0, 1, 0]),\n"
        "        plot.sample_grid(np.zeros((2, 28, 28), np.uint8), [0, 1])]\n"
        "print(matplotlib.get_backend(), plt.get_fignums(), [len(f.axes) > 0 for f in figs])\n",
        PYTHONPATH=str(tmp_path))
    assert out.split("\n")[0] == "module://users_backend [1] [True, True, True]"
