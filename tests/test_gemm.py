"""Every matmul kernel against NumPy in float64 and the naive C++ reference, on awkward shapes."""

import itertools

import numpy as np
import pytest

from pydfn._core import testing

from conftest import BATCHES, FAST_KERNELS, WIDTHS, product_error_bound

SHAPES = [(m, n, k) for m in BATCHES for n, k in itertools.product(WIDTHS, WIDTHS)
          if n * k <= 257 * 784 and (m in (1, 17, 65) or n in (10, 257))]


def rand(rng, *shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def assert_product(C, exact, bound):
    assert C.dtype == np.float32 and C.shape == exact.shape
    err = np.abs(C.astype(np.float64) - exact)
    assert (err <= bound).all(), f"max error {err.max():.3g} over bound {bound.ravel()[err.argmax()]:.3g}"


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_nn_bias_relu(kernels, m, n, k, rng):
    A, B, bias = rand(rng, m, k), rand(rng, k, n), rand(rng, n)
    exact = A.astype(np.float64) @ B + bias
    bound = product_error_bound(np.abs(A) @ np.abs(B) + np.abs(bias), k + 1)
    assert_product(testing.sgemm_nn(A, B, kernels=kernels), exact - bias, bound)
    C = testing.sgemm_nn(A, B, bias, relu=True, kernels=kernels)
    assert_product(C, np.maximum(exact, 0), bound)
    assert (C >= 0).all()


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_nt_mask(kernels, m, n, k, rng):
    A, B = rand(rng, m, k), rand(rng, n, k)
    mask = rand(rng, m, n) * (rng.random((m, n)) < 0.5)  # half zero, some negative
    exact = A.astype(np.float64) @ B.T
    bound = product_error_bound(np.abs(A) @ np.abs(B).T, k)
    assert_product(testing.sgemm_nt(A, B, kernels=kernels), exact, bound)
    assert_product(testing.sgemm_nt(A, B, mask, kernels=kernels), np.where(mask > 0, exact, 0), bound)


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_tn(kernels, m, n, k, rng):
    # dW(in,out) = X(B,in)ᵀ·dY(B,out): here k plays the batch.
    A, B = rand(rng, k, m), rand(rng, k, n)
    exact = A.astype(np.float64).T @ B
    assert_product(testing.sgemm_tn(A, B, kernels=kernels), exact,
                   product_error_bound(np.abs(A).T @ np.abs(B), k))


@pytest.mark.parametrize("kernels", FAST_KERNELS)
def test_how_b_is_read_does_not_change_the_bits(kernels, rng):
    # sgemm_tn copies all of B (dY, batch x out) into panels while it holds at most
    # 2^18 floats, else reads it in place; a 1024-wide B is packed panel by panel in
    # the forward product. A column's sums are the same either way.
    A, B = rand(rng, 1100, 13), rand(rng, 1100, 256)  # 1100 x 256 floats: read in place
    C = testing.sgemm_tn(A, B, kernels=kernels)
    assert_product(C, A.astype(np.float64).T @ B, product_error_bound(np.abs(A).T @ np.abs(B), 1100))
    assert np.array_equal(C[:, :150], testing.sgemm_tn(A, B[:, :150].copy(), kernels=kernels))  # packed
    X, W = rand(rng, 7, 300), rand(rng, 300, 1024)
    Y = testing.sgemm_nn(X, W, kernels=kernels)
    assert_product(Y, X.astype(np.float64) @ W, product_error_bound(np.abs(X) @ np.abs(W), 300))
    assert np.array_equal(Y[:, 512:], testing.sgemm_nn(X, W[:, 512:].copy(), kernels=kernels))


@pytest.mark.parametrize("kernels", FAST_KERNELS)
def test_fast_kernels_match_reference_kernels_closely(kernels, rng):
    A, B = rand(rng, 65, 784), rand(rng, 784, 257)
    ref = testing.sgemm_nn(A, B, kernels="reference")
    np.testing.assert_allclose(testing.sgemm_nn(A, B, kernels=kernels), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(testing.sgemm_nt(A, B.T.copy(), kernels=kernels),
                               testing.sgemm_nt(A, B.T.copy(), kernels="reference"), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(testing.sgemm_tn(A, B[:65].copy(), kernels=kernels),
                               testing.sgemm_tn(A, B[:65].copy(), kernels="reference"),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernels", FAST_KERNELS)
def test_kernels_are_bitwise_thread_count_invariant(kernels, rng, threads):
    import pydfn
    A, B, bias = rand(rng, 65, 784), rand(rng, 784, 257), rand(rng, 257)
    results = []
    for n in (1, 2, 3):
        pydfn.set_num_threads(n)
        results.append((testing.sgemm_nn(A, B, bias, True, kernels=kernels),
                        testing.sgemm_nt(A, B.T.copy(), kernels=kernels),
                        testing.sgemm_tn(A, B[:65].copy(), kernels=kernels)))
    for other in results[1:]:
        for x, y in zip(results[0], other):
            assert np.array_equal(x, y)


@pytest.mark.parametrize("kernels", FAST_KERNELS)
def test_every_tile_height_gives_each_row_the_bits_it_gets_in_a_full_batch(kernels, rng):
    # Tiles come in every height up to the register tile's (4 or 6 rows): rows
    # 1..13 use each at least once, alone and after full tiles. A row's result
    # must not depend on which rows share its tile: predict_logits relies on it.
    A, B, bias = rand(rng, 13, 70), rand(rng, 70, 35), rand(rng, 35)
    X, dY = rand(rng, 20, 13), rand(rng, 20, 35)  # tn: C's rows are X's columns
    full = (testing.sgemm_nn(A, B, bias, True, kernels=kernels),
            testing.sgemm_nt(A, B.T.copy(), kernels=kernels),
            testing.sgemm_tn(X, dY, kernels=kernels))
    exact_nn = np.maximum(A.astype(np.float64) @ B + bias, 0)
    assert_product(full[0], exact_nn, product_error_bound(np.abs(A) @ np.abs(B) + np.abs(bias), 71))
    for m in range(1, 14):
        assert np.array_equal(testing.sgemm_nn(A[:m], B, bias, True, kernels=kernels), full[0][:m])
        assert np.array_equal(testing.sgemm_nt(A[:m], B.T.copy(), kernels=kernels), full[1][:m])
        assert np.array_equal(testing.sgemm_tn(X[:, :m].copy(), dY, kernels=kernels), full[2][:m])


def test_shape_mismatch_is_a_value_error(rng):
    with pytest.raises(ValueError, match=r"B must have shape \(5, any\), got \(4, 3\)"):
        testing.sgemm_nn(rand(rng, 2, 5), rand(rng, 4, 3))
    with pytest.raises(ValueError, match="unknown kernels 'fastest'"):
        testing.sgemm_nn(rand(rng, 2, 5), rand(rng, 5, 3), kernels="fastest")


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("batch,n", [(1, 1), (3, 17), (64, 10), (65, 257)])
def test_column_sums(kernels, batch, n, rng):
    dy = rand(rng, batch, n)
    exact = dy.astype(np.float64).sum(axis=0)
    assert_product(testing.column_sums(dy, kernels=kernels), exact,
                   product_error_bound(np.abs(dy).sum(axis=0), batch))
