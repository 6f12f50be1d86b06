import numpy as np
import pytest

from pydfn import metrics


def test_confusion_matrix_counts_each_pair_truth_in_rows():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    expected = np.array([[1, 1, 0],
                         [0, 1, 0],
                         [1, 0, 2]])
    cm = metrics.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64


def test_confusion_matrix_matches_a_plain_count_on_random_labels():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 7, 1000), rng.integers(0, 7, 1000).astype(np.uint8)
    cm = metrics.confusion_matrix(y_true, y_pred, n_classes=10)
    expected = np.zeros((10, 10), np.int64)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)


def test_per_class_accuracy_is_the_diagonal_over_the_row_and_nan_for_absent_classes():
    acc = metrics.per_class_accuracy([0, 0, 0, 1, 1, 3], [0, 2, 0, 1, 0, 3], n_classes=4)
    np.testing.assert_array_equal(acc[[0, 1, 3]], [2 / 3, 1 / 2, 1.0])
    assert np.isnan(acc[2])


def test_accuracy():
    assert metrics.accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert np.isnan(metrics.accuracy(np.array([], int), np.array([], int)))


@pytest.mark.parametrize("y_true, y_pred, n_classes, error, match", [
    ([0, 1], [0], None, ValueError, "y_pred has 1 labels but x has 2 rows"),
    ([0, -1], [0, 1], None, ValueError, r"y_true must hold labels in \[0, 2\), found -1"),
    ([0, 5], [0, 1], 3, ValueError, r"y_true must hold labels in \[0, 3\), found 5"),
    ([0.0, 1.0], [0, 1], None, TypeError, "y_true must hold integer class labels"),
    ([[0, 1]], [[0, 1]], None, ValueError, "y_true must be 1-D"),
    ([0, 1], [0, 1], 0, ValueError, "n_classes must be >= 1"),
])
def test_bad_labels(y_true, y_pred, n_classes, error, match):
    with pytest.raises(error, match=match):
        metrics.confusion_matrix(y_true, y_pred, n_classes)
