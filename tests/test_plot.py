"""pydfn.plot.sample_grid: the tutorial's preview of a few images with their class names."""

from __future__ import annotations

import numpy as np
import pytest

plt = pytest.importorskip("matplotlib.pyplot", reason='matplotlib not installed: pip install "pydfn[plot]"')

from pydfn.plot import sample_grid  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_grid_titles_are_class_names(images):
    fig = sample_grid(images, np.array([9, 0, 3, 8, 1]))
    assert titles(fig) == ["Ankle boot", "T-shirt/top", "Dress", "Bag"]
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), images[2])


def test_grid_of_flattened_floats_with_spare_cells(images):
    flat = images.reshape(5, 784).astype(np.float32) / 255
    fig = sample_grid(flat, [1, 2, 3, 4, 5], rows=2, cols=3)
    assert titles(fig) == ["Trouser", "Pullover", "Dress", "Coat", "Sandal", ""]
    assert fig.axes[0].images[0].get_array().shape == (28, 28)
    assert not fig.axes[5].images  # nothing left to show in the last cell


@pytest.mark.parametrize("labels, kwargs, message", [
    ([0, 10, 0, 0, 0], {}, r"labels in \[0, 10\), found 10"),
    ([0, 1], {}, "labels has 2 labels but x has 5 rows"),
    ([0] * 5, {"rows": 0}, "rows must be >= 1"),
])
def test_grid_rejects_bad_input(images, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_grid(images, np.array(labels), **kwargs)


def test_grid_rejects_non_square_flat_images():
    with pytest.raises(ValueError, match="cannot show flattened images of 10 pixels as squares"):
        sample_grid(np.zeros((2, 10)), [0, 1])
