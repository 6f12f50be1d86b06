"""pytest-benchmark: pydfn's kernels, step, epoch and inference next to NumPy.

Run with ``pytest benchmarks`` (not part of the unit tests). Each pydfn case has a
NumPy twin in the same group, so ``--benchmark-group-by=group`` shows them side by side.
"""

import numpy as np
import pytest

import pydfn
from pydfn._core import testing
from pydfn.reference import ReferenceAdam, ReferenceMLP, softmax_xent
from pydfn.reference import train_epoch as reference_epoch

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

    def numpy_xent():
        losses, probs = softmax_xent(logits, y)
        probs[np.arange(batch), y] -= 1
        return probs / batch
    benchmark(pydfn_xent if impl == "pydfn" else numpy_xent)


@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_adam_update(benchmark, impl):
    benchmark.group = "Adam update, 235,146 parameters"
    n = sum(a * b + b for a, b in LAYERS)
    g = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    p, m, v = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
    if impl == "pydfn":
        benchmark(testing.adam_update, p, m, v, g, 1, 1e-3, 0.9, 0.999, 1e-8)
    else:
        adam = ReferenceAdam([p])
        benchmark(adam.step, [p], [g])


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_train_step(benchmark, impl, batch, data):
    benchmark.group = f"one train step, batch {batch}"
    x, y = data[0][:batch], data[1][:batch]
    if impl == "pydfn":
        model, adam = pydfn.MLP(SIZES), pydfn.Adam()
        benchmark(model.train_step, x, y, adam)
    else:
        ref = ReferenceMLP(SIZES)
        adam = ReferenceAdam(ref.params)
        benchmark(lambda: adam.step(ref.params, ref.loss_and_grads(x, y)[1]))


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_train_epoch(benchmark, impl, batch, data):
    benchmark.group = f"one epoch of 54,000 samples, batch {batch}"
    x, y = data
    if impl == "pydfn":
        model, adam = pydfn.MLP(SIZES), pydfn.Adam()
        benchmark.pedantic(model.train_epoch, (x, y, adam), {"batch_size": batch}, rounds=3)
    else:
        ref = ReferenceMLP(SIZES)
        adam, order = ReferenceAdam(ref.params), np.random.default_rng(0).permutation(len(x))
        benchmark.pedantic(reference_epoch, (ref, adam, x, y, order, batch), rounds=3)


@pytest.mark.parametrize("impl", ["pydfn", "numpy"])
def test_inference_10000(benchmark, impl, data):
    benchmark.group = "inference, 10,000 images"
    x = data[0][:10_000]
    if impl == "pydfn":
        benchmark(pydfn.MLP(SIZES).predict, x)
    else:
        ref = ReferenceMLP(SIZES)
        benchmark(lambda: ref.forward(x)[-1].argmax(axis=1))
