"""The core's Adam against the NumPy reference and PyTorch's formula written out in float64."""

import numpy as np
import pytest

import pydfn
from pydfn._core import testing
from pydfn.reference import ReferenceAdam

from conftest import FAST_KERNELS


def adam_step(p, m, v, g, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, kernels="best"):
    """One Adam step of the core's optimizer kernel, in place."""
    config = pydfn._core.OptimizerConfig(kind="adam", lr=lr, beta1=b1, beta2=b2, eps=eps)
    testing.opt_update(p, m, v, g, t, config, kernels=kernels)


def torch_adam_float64(p, grads_per_step, lr, b1, b2, eps):
    p, m, v = p.astype(np.float64), np.zeros_like(p, np.float64), np.zeros_like(p, np.float64)
    for t, g in enumerate(grads_per_step, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - (lr / (1 - b1 ** t)) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
    return p


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("n", [1, 3, 17, 1000, 65537])
@pytest.mark.parametrize("hyper", [(1e-3, 0.9, 0.999, 1e-8), (0.05, 0.0, 0.5, 1e-3)])
def test_matches_pytorch_formula_and_reference(kernels, n, hyper, rng):
    lr, b1, b2, eps = hyper
    p0 = rng.standard_normal(n).astype(np.float32)
    grads = [rng.standard_normal(n).astype(np.float32) * 10 ** rng.uniform(-4, 1) for _ in range(20)]
    p, m, v = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    ref_p, ref = [p0.copy()], ReferenceAdam([p0], lr, b1, b2, eps)
    for t, g in enumerate(grads, start=1):
        adam_step(p, m, v, g, t, lr, b1, b2, eps, kernels=kernels)
        ref.step(ref_p, [g])
    np.testing.assert_allclose(p, torch_adam_float64(p0, grads, lr, b1, b2, eps), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p, ref_p[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m, ref.m[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kernels", FAST_KERNELS)
def test_bitwise_thread_count_invariant(kernels, rng, threads):
    n = 3 * 4096 + 77  # blocks split unevenly between threads
    g = rng.standard_normal(n).astype(np.float32)
    results = []
    for count in (1, 2, 3):
        pydfn.set_num_threads(count)
        p, m, v = np.ones(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
        for t in (1, 2):
            adam_step(p, m, v, g, t, kernels=kernels)
        results.append(p)
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_first_step_moves_each_parameter_by_lr():
    # With m̂ = g and v̂ = g², the first step is lr·sign(g) (eps aside).
    p = np.zeros(4, np.float32)
    adam_step(p, np.zeros(4, np.float32), np.zeros(4, np.float32),
              np.array([3.0, -2.0, 1e-3, -1e-3], np.float32), 1, lr=0.01)
    np.testing.assert_allclose(p, [-0.01, 0.01, -0.01, 0.01], rtol=1e-4)


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": -1e-3}, "lr must be"), ({"lr": float("nan")}, "lr must be"),
    ({"beta1": 1.0}, r"beta1 must be in \[0, 1\)"), ({"beta2": -0.1}, r"beta2 must be in \[0, 1\)"),
    ({"eps": 0.0}, "eps must be"),
])
def test_bad_hyperparameters_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pydfn.Adam(**kwargs)


def test_non_numeric_lr_is_a_type_error():
    with pytest.raises(TypeError, match="lr must be a real number"):
        pydfn.Adam(lr="0.001")
