"""The dense layer's backward pass against NumPy in float64."""

import numpy as np
import pytest

from pydfn._core import testing

from conftest import FAST_KERNELS, product_error_bound


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("batch,n_in,n_out", [(1, 1, 1), (3, 17, 10), (17, 784, 257), (63, 128, 10),
                                              (64, 257, 128), (65, 10, 17)])
def test_dense_backward(kernels, batch, n_in, n_out, rng):
    dy = rng.standard_normal((batch, n_out)).astype(np.float32)
    x = np.maximum(rng.standard_normal((batch, n_in)), 0).astype(np.float32)  # a ReLU output
    W = rng.standard_normal((n_in, n_out)).astype(np.float32)
    dx, dW, db = testing.dense_backward(dy, x, W, mask_relu=True, kernels=kernels)
    d64, x64 = dy.astype(np.float64), x.astype(np.float64)
    bound = product_error_bound(np.abs(dy) @ np.abs(W).T, n_out)
    assert (np.abs(dx - (d64 @ W.T) * (x > 0)) <= bound).all()
    assert (dx[x <= 0] == 0).all()
    assert (np.abs(dW - x64.T @ d64) <= product_error_bound(np.abs(x).T @ np.abs(dy), batch)).all()
    assert (np.abs(db - d64.sum(axis=0)) <= product_error_bound(np.abs(dy).sum(axis=0), batch)).all()
    dx_unmasked, _, _ = testing.dense_backward(dy, x, W, mask_relu=False, kernels=kernels)
    assert (np.abs(dx_unmasked - d64 @ W.T) <= bound).all()
