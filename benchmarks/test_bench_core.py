"""pytest-benchmark: pydfn's kernels, step, epoch and inference next to NumPy.

Run with ``pytest benchmarks`` (not part of the unit tests). Each pydfn case has a
NumPy twin in the same group, written as systems.py's lean NumPy loop writes it, so
``--benchmark-group-by=group`` shows them side by side; the epoch also has PyTorch and
JAX twins when they are installed (skipped otherwise). These all run in one process,
where thread pools disturb each other: compare.py's per-process table is the honest one.
"""

import numpy as np
import pytest

import pydfn
from pydfn._core import testing
import systems
from workload import SIZES, synthetic_data

LAYERS = list(zip(SIZES[:-1], SIZES[1:]))


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


def layer_arrays(batch, n_in, n_out):
    rng = np.random.default_rng(0)
    return (rng.random((batch, n_in), dtype=np.float32), rng.random((n_in, n_out), dtype=np.float32) - 0.5,
            rng.random(n_out, dtype=np.float32), rng.random((batch, n_out), dtype=np.float32))


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("n_in,n_out", LAYERS)
@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_forward_bias_relu(benchmark, impl, batch, n_in, n_out):
    benchmark.group = f"forward x·W+b, ReLU ({batch}x{n_in}x{n_out})"
    x, W, b, _ = layer_arrays(batch, n_in, n_out)
    if impl == "pydfn":
        benchmark(testing.sgemm_nn, x, W, b, True)
    else:
        benchmark(lambda: np.maximum(x @ W + b, 0))


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("n_in,n_out", LAYERS[1:])
@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_backward_dx(benchmark, impl, batch, n_in, n_out):
    benchmark.group = f"backward dY·Wᵀ, ReLU mask ({batch}x{n_out}x{n_in})"
    x, W, _, dy = layer_arrays(batch, n_in, n_out)
    if impl == "pydfn":
        benchmark(testing.sgemm_nt, dy, W, x)
    else:
        benchmark(lambda: (dy @ W.T) * (x > 0))


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("n_in,n_out", LAYERS)
@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_backward_dw(benchmark, impl, batch, n_in, n_out):
    benchmark.group = f"backward Xᵀ·dY ({n_in}x{batch}x{n_out})"
    x, _, _, dy = layer_arrays(batch, n_in, n_out)
    if impl == "pydfn":
        benchmark(testing.sgemm_tn, x, dy)
    else:
        benchmark(lambda: x.T @ dy)


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_softmax_xent(benchmark, impl, batch):
    benchmark.group = f"softmax cross-entropy forward+backward ({batch}x10)"
    rng = np.random.default_rng(0)
    logits, y = rng.standard_normal((batch, 10)).astype(np.float32), rng.integers(0, 10, batch).astype(np.int32)

    def pydfn_xent():
        losses, probs = testing.softmax_xent_forward(logits, y)
        return testing.softmax_xent_backward(probs, y, 1.0 / batch)

    benchmark(pydfn_xent if impl == "pydfn" else lambda: systems.softmax_xent_grad(logits.copy(), y))


@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_adam_update(benchmark, impl):
    benchmark.group = "Adam update, 235,146 parameters"
    n = sum(a * b + b for a, b in LAYERS)
    g = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    p, m, v = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
    if impl == "pydfn":
        benchmark(testing.opt_update, p, m, v, g, 1, pydfn._core.OptimizerConfig(kind="adam", lr=1e-3))
    else:
        benchmark(systems.adam_update, p, m, v, g, np.empty_like(p), 1)


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_train_step(benchmark, impl, batch, data):
    benchmark.group = f"one train step, batch {batch}"
    x, y = data[0][:batch], data[1][:batch]
    if impl == "pydfn":
        model, adam = pydfn.MLP(SIZES), pydfn.Adam()
        benchmark(model.train_step, x, y, adam)
    else:
        benchmark(systems.LeanMLP().step, x, y)


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("impl", ["pydfn", "numpy", "torch", "jax"])
def test_train_epoch(benchmark, impl, batch, data):
    benchmark.group = f"one epoch of 54,000 samples, batch {batch}"
    reason = systems.unavailable(impl)
    if reason:
        pytest.skip(reason)
    epoch = systems.build_epoch(impl, *data, batch)
    epoch()  # the warm-up epoch: JAX compiles here
    loss = benchmark.pedantic(epoch, rounds=3)
    assert 0 < loss < 10  # random labels: about log(10)


@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_inference_10000(benchmark, impl, data):
    benchmark.group = "inference, 10,000 images"
    x = data[0][:10_000]
    if impl == "pydfn":
        benchmark(pydfn.MLP(SIZES).predict, x)
    else:
        model = systems.LeanMLP()
        benchmark(lambda: model.forward(x)[-1].argmax(axis=1))
