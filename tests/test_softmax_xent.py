"""Softmax cross-entropy from logits against NumPy in float64."""

import numpy as np
import pytest

from pydfn._core import testing


def exact(logits, y):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logsum = np.log(np.exp(z).sum(axis=1))
    return logsum - z[np.arange(len(y)), y], np.exp(z - logsum[:, None])


@pytest.mark.parametrize("batch,classes", [(1, 2), (3, 10), (17, 1), (64, 10), (65, 257)])
def test_forward_and_backward(batch, classes, rng):
    logits = (rng.standard_normal((batch, classes)) * 5).astype(np.float32)
    y = rng.integers(0, classes, batch).astype(np.int32)
    losses, probs = testing.softmax_xent_forward(logits, y)
    want_losses, want_probs = exact(logits, y)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs, want_probs, rtol=1e-5, atol=1e-7)
    d = testing.softmax_xent_backward(probs, y, 1.0 / batch)
    onehot = np.eye(classes)[y]
    np.testing.assert_allclose(d, (want_probs - onehot) / batch, rtol=1e-5, atol=1e-7)


def test_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e38, 1e38, 0.0]], dtype=np.float32)
    losses, probs = testing.softmax_xent_forward(logits, np.array([0, 0], dtype=np.int32))
    assert np.isfinite(losses).all() and np.isfinite(probs).all()
    np.testing.assert_allclose(losses, [0.0, 2e38], rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got 3 at index 1"):
        testing.softmax_xent_forward(np.zeros((2, 3), np.float32), np.array([0, 3], np.int32))
