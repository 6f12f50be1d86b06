"""bf16 mixed precision: the rounding, the bf16 products of every kernel set against NumPy
(inputs rounded to bf16 the same way, sums in float64), and bf16 training and inference."""

import json

import numpy as np
import pytest

import pydfn
from pydfn import _core
from pydfn._core import testing

from _subprocess import run_python
from conftest import FAST_KERNELS, product_error_bound

# Awkward shapes (odd K pads a pair; N not a multiple of any vector), and the tutorial's.
SHAPES = [(1, 1, 1), (3, 10, 17), (17, 257, 3), (63, 17, 128), (65, 128, 257), (64, 256, 784),
          (5, 33, 2), (7, 1, 65)]


def round_bf16(x):
    """x rounded to bf16 to nearest even (8 significant bits), written with frexp in float64:
    subnormals flushed to a signed zero, overflow to infinity, NaN kept."""
    x = np.asarray(x, np.float32)
    m, e = np.frexp(x.astype(np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.ldexp(np.rint(m * 256), e - 8).astype(np.float32)
    r = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.copysign(np.float32(0), x), r)
    return np.where(np.isnan(x), x, r).astype(np.float32)


def rand(rng, *shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def test_round_bf16_matches_numpy_bit_for_bit():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2**16, 64, dtype=np.uint32) << 16) | 0x8000  # exactly halfway
    special = np.array([0, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0xff7f8000,
                        0x7f800000, 0xff800000, 0x3f808000, 0x3f818000, 0x3f80ffff], np.uint32)
    x = np.concatenate([bits, ties, special]).view(np.float32)
    x = x[~np.isnan(x)]
    want = round_bf16(x).view(np.uint32)
    for kernels in ["reference"] + FAST_KERNELS:
        got = testing.round_bf16(x, kernels=kernels).view(np.uint32)
        assert np.array_equal(got, want), kernels
    # a NaN stays a NaN, made quiet
    nan = np.array([0x7f800001, 0xffc00000, 0x7fff0001], np.uint32).view(np.float32)
    assert np.array_equal(testing.round_bf16(nan).view(np.uint32), [0x7fc00000, 0xffc00000, 0x7fff0000])


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("layout", ["nn", "tn", "nt"])
def test_bf16gemm_against_numpy(kernels, m, n, k, layout, rng):
    A = rand(rng, k, m) if layout == "tn" else rand(rng, m, k)
    B = rand(rng, n, k) if layout == "nt" else rand(rng, k, n)
    Ar, Br = round_bf16(A).astype(np.float64), round_bf16(B).astype(np.float64)
    Ar, Br = (Ar.T if layout == "tn" else Ar), (Br.T if layout == "nt" else Br)
    bias, mask = rand(rng, n), rand(rng, m, n) * (rng.random((m, n)) < 0.5)
    exact = Ar @ Br
    bound = product_error_bound(np.abs(Ar) @ np.abs(Br) + np.abs(bias), k + 2)
    C = testing.bf16gemm(A, B, layout=layout, kernels=kernels)
    assert C.dtype == np.float32 and C.shape == (m, n)
    assert (np.abs(C - exact) <= bound).all()
    C = testing.bf16gemm(A, B, bias, relu=True, layout=layout, kernels=kernels)
    assert (np.abs(C - np.maximum(exact + bias, 0)) <= bound).all() and (C >= 0).all()
    C = testing.bf16gemm(A, B, mask=mask, layout=layout, kernels=kernels)
    assert (np.abs(C - np.where(mask > 0, exact, 0)) <= bound).all()


def test_bf16gemm_rounds_its_inputs(rng):
    """Not a float32 product in disguise: the rounding of the inputs shows."""
    A, B = rand(rng, 9, 300), rand(rng, 300, 20)
    C = testing.bf16gemm(A, B)
    fp32_error = np.abs(C - A.astype(np.float64) @ B).max()
    bf16_error = np.abs(C - round_bf16(A).astype(np.float64) @ round_bf16(B)).max()
    assert bf16_error < 1e-5 < fp32_error


def test_bf16gemm_repeated_gives_the_same_product(rng):
    """repeat= (for timing the product alone) runs the same product again on the same packing."""
    A, B, bias = rand(rng, 33, 70), rand(rng, 70, 20), rand(rng, 20)
    once = testing.bf16gemm(A, B, bias, relu=True)
    assert np.array_equal(testing.bf16gemm(A, B, bias, relu=True, repeat=3), once)


def test_bf16gemm_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="repeat must be at least 1"):
        testing.bf16gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), repeat=0)
    with pytest.raises(ValueError, match="layout"):
        testing.bf16gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), layout="tt")
    with pytest.raises(ValueError, match="B must have shape"):
        testing.bf16gemm(np.ones((2, 3), np.float32), np.ones((2, 2), np.float32))


def bf16_forward(weights, x):
    """The network's logits with every product's inputs rounded to bf16, sums in float64."""
    h = x
    for i in range(0, len(weights), 2):
        z = round_bf16(h).astype(np.float64) @ round_bf16(weights[i]) + weights[i + 1]
        h = (np.maximum(z, 0) if i + 2 < len(weights) else z).astype(np.float32)
    return h


def data(rows=700, features=60, seed=0):
    """Rows and labels a network can learn: the argmax of a random linear map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features)).astype(np.float32)
    return x, (x @ rng.standard_normal((features, 10))).argmax(1)


def test_bf16_inference_rounds_products_like_numpy():
    x, _ = data(300)
    model = pydfn.MLP([60, 33, 17, 10], seed=4, precision="bf16")
    want = bf16_forward(model.get_weights(), x)
    got = model.predict_logits(x, batch_size=64)
    fp32 = pydfn.MLP([60, 33, 17, 10], seed=4).predict_logits(x)
    assert np.abs(got - want).max() < 1e-4 < np.abs(fp32 - want).max()
    assert np.array_equal(model.predict(x), got.argmax(1))
    loss, _ = model.evaluate(x, np.zeros(300, np.int64))
    shifted = want - want.max(1, keepdims=True)
    want_loss = np.mean(np.log(np.exp(shifted).sum(1)) - shifted[:, 0])
    assert loss == pytest.approx(want_loss, rel=1e-4)


def bf16_gradients(weights, x, y):
    """The mean softmax cross-entropy's gradients with every product's inputs rounded to bf16
    (forward, dW = xᵀ·dy and dx = dy·Wᵀ), sums in float64, float32 between the layers."""
    def r(a):
        return round_bf16(a).astype(np.float64)
    hs = [x]
    for i in range(0, len(weights), 2):
        z = r(hs[-1]) @ r(weights[i]) + weights[i + 1]
        hs.append((np.maximum(z, 0) if i + 2 < len(weights) else z).astype(np.float32))
    z = hs.pop().astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    dy = (p / len(y)).astype(np.float32)
    grads = []
    for i in range(len(weights) - 2, -1, -2):
        h = hs.pop()
        grads = [(r(h).T @ r(dy)).astype(np.float32), dy.sum(0, dtype=np.float64).astype(np.float32)] + grads
        if i:
            dy = np.where(h > 0, r(dy) @ r(weights[i]).T, 0).astype(np.float32)
    return grads


def test_bf16_gradients_like_numpy():
    x, y = data(64)
    model = pydfn.MLP([60, 33, 17, 10], seed=4, precision="bf16")
    _, grads = model.loss_and_gradients(x, y)
    _, fp32_grads = pydfn.MLP([60, 33, 17, 10], seed=4).loss_and_gradients(x, y)
    for got, want, fp32 in zip(grads, bf16_gradients(model.get_weights(), x, y), fp32_grads):
        scale = np.abs(want).max()
        assert np.abs(got - want).max() < 1e-4 * scale < np.abs(fp32 - want).max()


def train(precision, threads, x, y, epochs=3):
    pydfn.set_num_threads(threads)
    model = pydfn.MLP([60, 33, 17, 10], seed=4, precision=precision)
    opt = pydfn.Adam(lr=0.01)
    for epoch in range(epochs):
        model.train_epoch(x, y, opt, batch_size=64, seed=9 + epoch)
    return model


def test_bf16_training_is_close_to_fp32_but_not_equal(threads):
    x, y = data()
    fp32, bf16 = train("fp32", 2, x, y), train("bf16", 2, x, y)
    for a, b in zip(fp32.get_weights(), bf16.get_weights()):
        assert not np.array_equal(a, b)
        if a.ndim == 2:  # the biases start at zero and stay small: Adam's steps make them differ more
            assert np.linalg.norm(a - b) < 0.1 * np.linalg.norm(a)
    assert np.abs(fp32.predict_proba(x) - bf16.predict_proba(x)).mean() < 0.01
    fp32_accuracy, bf16_accuracy = fp32.evaluate(x, y)[1], bf16.evaluate(x, y)[1]
    assert bf16_accuracy > 0.5 and abs(bf16_accuracy - fp32_accuracy) < 0.03  # chance is 0.1


def test_bf16_is_bitwise_thread_invariant(threads):
    x, y = data(501)
    runs = [train("bf16", n, x, y) for n in (1, 2, 3)]
    logits = []
    for n, model in zip((1, 2, 3), runs):
        pydfn.set_num_threads(n)
        logits.append(model.predict_logits(x, batch_size=100))
    for other, other_logits in zip(runs[1:], logits[1:]):
        assert all(np.array_equal(a, b) for a, b in zip(runs[0].get_weights(), other.get_weights()))
        assert np.array_equal(logits[0], other_logits)


def test_train_step_and_train_epoch_give_the_same_bits(threads):
    """train_step packs the weights before each step; train_epoch repacks them in each layer's
    optimizer step: the same bits, step after step."""
    x, y = data(64 * 3 + 5, features=61)
    a = pydfn.MLP([61, 33, 17, 10], seed=4, precision="bf16", l2=1e-3)
    b = pydfn.MLP([61, 33, 17, 10], seed=4, precision="bf16", l2=1e-3)
    opt = pydfn.Adam()
    for start in range(0, len(x), 64):
        a.train_step(x[start:start + 64], y[start:start + 64], opt)
    b.train_epoch(x, y, pydfn.Adam(), batch_size=64, shuffle=False)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_checkpoint_keeps_the_precision(tmp_path):
    x, y = data(200)
    model = pydfn.MLP([60, 33, 10], seed=1, precision="bf16")
    model.fit(x, y, pydfn.Adam(), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = pydfn.load(tmp_path / "m.npz")
    assert loaded.precision == "bf16" and "precision='bf16'" in repr(loaded)
    assert np.array_equal(loaded.predict_logits(x), model.predict_logits(x))
    fp32 = pydfn.MLP([60, 33, 10], seed=1)
    fp32.save(tmp_path / "f.npz")
    assert pydfn.load(tmp_path / "f.npz").precision == "fp32"


PORTABLE_CHILD = r"""
import json, numpy as np, pydfn
from pydfn import _core
rng = np.random.default_rng(0)
x = rng.standard_normal((300, 60)).astype(np.float32); y = (x[:, :10] ** 2).argmax(1)
if {save}:
    model = pydfn.MLP([60, 33, 10], seed=1, precision="bf16")
    model.fit(x, y, pydfn.Adam(), epochs=2, verbose=0)
    model.save({path!r})
    print(json.dumps({{"isa": _core.isa(), "logits": model.predict_logits(x).tolist(),
                       "weights": [w.ravel().tolist() for w in model.get_weights()]}}))
else:
    model = pydfn.load({path!r})
    weights, before = [w.ravel().tolist() for w in model.get_weights()], model.predict_logits(x)
    model.fit(x, y, pydfn.Adam(), epochs=1, verbose=0)
    print(json.dumps({{"isa": _core.isa(), "weights": weights, "before": before.tolist(),
                       "after_finite": bool(np.isfinite(model.predict_logits(x)).all())}}))
"""


def test_a_bf16_checkpoint_moves_between_kernel_sets(tmp_path):
    """Saved by the best kernels this CPU runs (amx on a CPU with AMX), loaded and trained by the
    slowest (generic, emulated bf16): the same weights, bit for bit; the same logits to bf16's
    rounding (the kernel sets' sums may differ in a last bit, which can move the next layer's
    bf16 input by one bf16 step); training goes on."""
    path = str(tmp_path / "m.npz")
    saved = json.loads(run_python(PORTABLE_CHILD.format(save=True, path=path)))
    loaded = json.loads(run_python(PORTABLE_CHILD.format(save=False, path=path), PYDFN_MAX_ISA="generic"))
    assert saved["isa"] == _core.isa() and loaded["isa"] == "generic"
    assert loaded["weights"] == saved["weights"]
    assert np.allclose(loaded["before"], saved["logits"], rtol=1e-2, atol=1e-3) and loaded["after_finite"]


@pytest.mark.parametrize("bad", ["bf17", "FP32", "", "float16", None, 16])
def test_bad_precision_is_a_value_error(bad):
    with pytest.raises(ValueError, match="precision must be one of"):
        pydfn.MLP([4, 3], precision=bad)
    if isinstance(bad, str):
        with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16'"):
            _core.Network([4, 3], "relu", "softmax_xent", bad)


CHILD = r"""
import json, numpy as np, pydfn
from pydfn import _core
rng = np.random.default_rng(0)
x = rng.standard_normal((700, 60)).astype(np.float32); y = rng.integers(0, 10, 700)
runs = []
for threads in (1, 2, 3):
    pydfn.set_num_threads(threads)
    model = pydfn.MLP([60, 33, 17, 10], seed=4, precision="bf16")
    model.train_epoch(x, y, pydfn.Adam(), batch_size=64, seed=9)
    runs.append(model.get_weights() + [model.predict_logits(x)])
print(json.dumps({"isa": _core.isa(),
                  "thread_invariant": all(np.array_equal(a, b) for r in runs[1:] for a, b in zip(runs[0], r)),
                  "weights": [w.ravel().tolist() for w in runs[0]]}))
"""


@pytest.mark.parametrize("layout", ["nn", "tn", "nt"])
def test_emulated_bf16_products_give_the_same_bits_on_every_isa(layout, rng):
    """Without AVX512_BF16 the same sums, in vdpbf16ps's order (k = 2p+1, then 2p), run on
    float instructions: every such kernel set gives the same bits. (vdpbf16ps itself also
    flushes subnormal sums to zero.)"""
    emulated = [k for k in FAST_KERNELS if k not in ("avx512bf16", "amx")]
    A, B, bias = rand(rng, 65, 257), rand(rng, 257, 130), rand(rng, 130)
    A, B = (A.T.copy() if layout == "tn" else A), (B.T.copy() if layout == "nt" else B)
    first = testing.bf16gemm(A, B, bias, relu=True, layout=layout, kernels=emulated[0])
    for kernels in emulated[1:]:
        assert np.array_equal(testing.bf16gemm(A, B, bias, relu=True, layout=layout, kernels=kernels), first)


def test_every_isa_trains_in_bf16_alike():
    """Each kernel set (PYDFN_MAX_ISA caps the choice; below avx512bf16 the bf16 products are
    emulated) trains in bf16 thread-invariantly and close to the others (their float32
    optimizer steps round differently: FMA or not)."""
    results = {isa: json.loads(run_python(CHILD, PYDFN_MAX_ISA=isa)) for isa in FAST_KERNELS}
    best = results[FAST_KERNELS[-1]]["weights"]
    for isa, result in results.items():
        assert result["isa"] == isa and result["thread_invariant"], isa
        for a, b in zip(result["weights"], best):
            a, b = np.array(a), np.array(b)
            assert np.linalg.norm(a - b) <= 1e-2 * np.linalg.norm(b), isa
