"""Label smoothing of softmax cross-entropy, PyTorch's definition
(``CrossEntropyLoss(label_smoothing=eps)``: target ``(1-eps)·onehot + eps/C``), in the core
against that formula written out in NumPy float64, the reference's gradients against finite
differences, bitwise the same for any thread count."""

import pickle

import numpy as np
import pytest
from _finite_differences import central_differences

import pydfn
from pydfn._core import testing
from pydfn.reference import ReferenceMLP

SIZES = [12, 9, 7, 5]


def pytorch_formula(logits, y, eps):
    """PyTorch's CrossEntropyLoss(reduction='none', label_smoothing=eps), written out in float64:
    (1-eps)·nll + eps·mean_j(-log p_j); its gradient softmax(z) - ((1-eps)·onehot + eps/C)."""
    z = logits.astype(np.float64)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    C = z.shape[1]
    nll = -log_p[np.arange(len(y)), y]
    loss = (1 - eps) * nll + eps * (-log_p).sum(axis=1) / C
    grad = np.exp(log_p) - ((1 - eps) * np.eye(C)[y] + eps / C)
    return loss, grad


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("batch,classes", [(1, 2), (7, 10), (64, 10), (33, 257)])
def test_kernel_matches_pytorchs_formula(eps, batch, classes, rng):
    logits = (rng.standard_normal((batch, classes)) * 4).astype(np.float32)
    y = rng.integers(0, classes, batch).astype(np.int32)
    losses, probs = testing.softmax_xent_forward(logits, y, eps)
    d = testing.softmax_xent_backward(probs, y, 1.0 / batch, eps)
    want_loss, want_grad = pytorch_formula(logits, y, eps)
    np.testing.assert_allclose(losses, want_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d, want_grad / batch, rtol=1e-5, atol=1e-7)
    assert abs(losses.mean() - want_loss.mean()) < 1e-5


def test_eps_zero_is_the_plain_loss_bit_for_bit(rng):
    logits = (rng.standard_normal((40, 10)) * 4).astype(np.float32)
    y = rng.integers(0, 10, 40).astype(np.int32)
    plain = testing.softmax_xent_forward(logits, y)
    zero = testing.softmax_xent_forward(logits, y, 0.0)
    assert all(np.array_equal(a, b) for a, b in zip(plain, zero))
    assert np.array_equal(testing.softmax_xent_backward(plain[1], y, 0.25),
                          testing.softmax_xent_backward(plain[1], y, 0.25, 0.0))


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_reference_gradients_match_finite_differences(eps, rng):
    ref = ReferenceMLP(SIZES, seed=4, dtype=np.float64, label_smoothing=eps, l2=0.01)
    x = rng.standard_normal((11, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 11)
    _, grads = ref.loss_and_grads(x, y)
    for i, j, slope in central_differences(lambda: ref.loss(x, y), ref.params, rng):
        assert grads[i].reshape(-1)[j] == pytest.approx(slope, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("n", [1, 5, 64, 67])
def test_model_cost_gradients_and_evaluate_match_pytorchs_formula(n, rng):
    eps = 0.1
    model = pydfn.MLP(SIZES, seed=4, label_smoothing=eps)
    ref = ReferenceMLP(SIZES, seed=4, dtype=np.float64, label_smoothing=eps)
    x = rng.standard_normal((n, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], n)
    cost, grads = model.loss_and_gradients(x, y)
    ref_cost, ref_grads = ref.loss_and_grads(x.astype(np.float64), y)
    # the reference's loss is PyTorch's formula on its logits
    logits = ref.forward(x.astype(np.float64))[-1]
    assert ref_cost == pytest.approx(pytorch_formula(logits, y, eps)[0].mean(), rel=1e-12)
    assert abs(cost - ref_cost) < 1e-5
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=2e-4, atol=1e-5)
    # evaluate reports the smoothed loss, as PyTorch's CrossEntropyLoss does
    assert abs(model.evaluate(x, y)[0] - ref_cost) < 1e-5
    plain = pydfn.MLP(SIZES, seed=4)
    assert plain.evaluate(x, y)[1] == model.evaluate(x, y)[1]  # accuracy unaffected
    assert plain.evaluate(x, y)[0] != pytest.approx(model.evaluate(x, y)[0], rel=1e-3)


def test_torch_itself_when_installed(rng):
    torch = pytest.importorskip("torch")
    logits = (rng.standard_normal((16, 10)) * 3).astype(np.float32)
    y = rng.integers(0, 10, 16).astype(np.int32)
    z = torch.tensor(logits.astype(np.float64), requires_grad=True)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(z, torch.tensor(y, dtype=torch.long))
    loss.backward()
    losses, probs = testing.softmax_xent_forward(logits, y, 0.1)
    assert abs(losses.mean() - loss.item()) < 1e-5
    np.testing.assert_allclose(testing.softmax_xent_backward(probs, y, 1 / 16, 0.1), z.grad.numpy(), atol=1e-5)


def test_training_is_bitwise_identical_for_any_thread_count(rng):
    x = rng.standard_normal((300, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], 300)
    before = pydfn.get_num_threads()
    runs = []
    try:
        for n in (1, 2, 3):
            pydfn.set_num_threads(n)
            model = pydfn.MLP(SIZES, seed=1, label_smoothing=0.1)
            loss = model.train_epoch(x, y, pydfn.Adam(), batch_size=32, seed=2)
            runs.append((loss, model.get_weights()))
    finally:
        pydfn.set_num_threads(before)
    for loss, weights in runs[1:]:
        assert loss == runs[0][0] and all(np.array_equal(a, b) for a, b in zip(weights, runs[0][1]))


def test_saved_and_pickled_and_bad_values(tmp_path):
    model = pydfn.MLP(SIZES, label_smoothing=0.2)
    assert "label_smoothing=0.2" in repr(model)
    model.save(tmp_path / "m.npz")
    assert pydfn.load(tmp_path / "m.npz").label_smoothing == 0.2
    assert pickle.loads(pickle.dumps(model)).label_smoothing == 0.2
    assert pydfn.MLP(SIZES).label_smoothing == 0.0
    for value, error in [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError), ("0.1", TypeError)]:
        with pytest.raises(error, match="label_smoothing"):
            pydfn.MLP(SIZES, label_smoothing=value)
    with pytest.raises(ValueError, match="label_smoothing applies to the softmax_xent loss"):
        pydfn.MLP(SIZES, loss="mse", label_smoothing=0.1)
