"""Dropout: the core's counter-based masks against the NumPy reference's, the
cost and gradients with dropout against the reference and finite differences,
training against the reference, thread-count invariance, and bad input."""

import numpy as np
import pytest
from _finite_differences import central_differences

import pydfn
from pydfn._core import testing
from pydfn.cli import main as cli_main
from pydfn.reference import ReferenceAdam, ReferenceMLP, dropout_keep_mask, train_epoch

SIZES = [12, 9, 7, 3]
RATES = [0.3, 0.5]


def data(rng, n, sizes=SIZES):
    return rng.standard_normal((n, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], n)


@pytest.mark.parametrize("seed, step, layer, rate, B, n", [
    (0, 1, 0, 0.5, 1, 1), (7, 3, 1, 0.2, 3, 17), (2**64 - 1, 2**62, 5, 0.9, 65, 63),
    (123, 1, 0, 0.0, 4, 5), (5, 10**6, 2, 0.999, 17, 257)])
def test_core_masks_equal_the_reference(seed, step, layer, rate, B, n):
    keep, scale = testing.dropout_keep_mask(seed, step, layer, rate, B, n)
    ref_keep, ref_scale = dropout_keep_mask(seed, step, layer, rate, B, n)
    assert keep.shape == (B, n) and np.array_equal(keep, ref_keep)
    assert np.float32(scale) == ref_scale
    if rate == 0.0:
        assert keep.all() and scale == 1.0


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_masks_keep_the_expected_fraction_independently(rate):
    keep, _ = dropout_keep_mask(11, 1, 0, rate, 1000, 500)
    kept = keep.mean()
    assert abs(kept - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / keep.size)  # 4 sigma, fixed seed
    # rows and columns are not copies of one another, steps and layers differ
    assert len({r.tobytes() for r in keep[:50]}) == 50
    assert len({c.tobytes() for c in keep.T[:50]}) == 50
    for other in (dropout_keep_mask(11, 2, 0, rate, 1000, 500)[0], dropout_keep_mask(11, 1, 1, rate, 1000, 500)[0],
                  dropout_keep_mask(12, 1, 0, rate, 1000, 500)[0]):
        agree = (other == keep).mean()
        assert abs(agree - (rate**2 + (1 - rate) ** 2)) < 0.01  # as for independent masks


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("n", [1, 5, 64, 67])
def test_cost_and_gradients_with_dropout_match_reference(activation, n, rng):
    model = pydfn.MLP(SIZES, seed=4, activation=activation, dropout=RATES, l2=0.01)
    ref = ReferenceMLP(SIZES, seed=4, dtype=np.float64, activation=activation, dropout=RATES, l2=0.01)
    x, y = data(rng, n)
    cost, grads = model.loss_and_gradients(x, y)  # the masks of step 1: the next step of a fresh model
    ref_cost, ref_grads = ref.loss_and_grads(x.astype(np.float64), y, step=1)
    assert cost == pytest.approx(ref_cost, rel=1e-5)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=2e-4, atol=2e-6)
    # the masks did something: without them the gradients differ
    plain = ref.loss_and_grads(x.astype(np.float64), y)[1]
    assert not np.allclose(plain[0], ref_grads[0], rtol=1e-3)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_reference_gradients_with_dropout_match_finite_differences(activation, rng):
    ref = ReferenceMLP(SIZES, seed=4, dtype=np.float64, activation=activation, dropout=RATES, l1=0.003)
    x, y = data(rng, 11)
    x = x.astype(np.float64)
    _, grads = ref.loss_and_grads(x, y, step=3)
    for i, j, slope in central_differences(lambda: ref.loss(x, y, step=3), ref.params, rng):
        assert grads[i].reshape(-1)[j] == pytest.approx(slope, rel=1e-5, abs=1e-8)


def test_training_with_dropout_matches_reference(rng):
    x, y = data(rng, 3 * 16 + 5)
    model, opt = pydfn.MLP(SIZES, seed=6, dropout=RATES), pydfn.Adam()
    ref = ReferenceMLP(SIZES, seed=6, dtype=np.float64, dropout=RATES)
    ref_opt = ReferenceAdam(ref.params)
    order = np.arange(len(x))
    for _ in range(2):
        model.train_epoch(x, y, opt, batch_size=16, shuffle=False)
        train_epoch(ref, ref_opt, x.astype(np.float64), y, order, 16)
    assert ref.steps == 8
    for got, want in zip(model.get_weights(), ref.params):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_fused_epoch_equals_train_steps_with_dropout(rng):
    x, y = data(rng, 3 * 16 + 5)
    epoch, steps = pydfn.MLP(SIZES, seed=3, dropout=0.4), pydfn.MLP(SIZES, seed=3, dropout=0.4)
    opt_e, opt_s = pydfn.Adam(), pydfn.Adam()
    epoch.train_epoch(x, y, opt_e, batch_size=16, shuffle=False)
    for start in range(0, len(x), 16):
        steps.train_step(x[start:start + 16], y[start:start + 16], opt_s)
    assert all(np.array_equal(p, q) for p, q in zip(epoch.get_weights(), steps.get_weights()))


def test_dropout_is_bitwise_invariant_to_the_thread_count(rng):
    sizes = [784, 256, 128, 10]
    x, y = data(rng, 1000, sizes)
    results = []
    before = pydfn.get_num_threads()
    try:
        for threads in (1, 2, 3):
            pydfn.set_num_threads(threads)
            model = pydfn.MLP(sizes, seed=1, dropout=[0.2, 0.5])
            model.train_epoch(x, y, pydfn.Adam(), batch_size=64, seed=0)
            results.append(model.get_weights())
    finally:
        pydfn.set_num_threads(before)
    for other in results[1:]:
        assert all(np.array_equal(p, q) for p, q in zip(results[0], other))


def test_dropout_is_training_only_and_seeded(rng):
    x, y = data(rng, 64)
    weights = pydfn.MLP(SIZES, seed=2).get_weights()
    dropped = pydfn.MLP(SIZES, seed=2, dropout=0.5)
    # inference and evaluation ignore dropout
    assert np.array_equal(dropped.predict_logits(x), pydfn.MLP(SIZES, seed=2).predict_logits(x))
    assert dropped.evaluate(x, y) == pydfn.MLP(SIZES, seed=2).evaluate(x, y)
    def trained(seed, dropout):
        model = pydfn.MLP(SIZES, seed=seed, dropout=dropout)
        model.set_weights(weights)  # only the masks' seed differs
        model.train_epoch(x, y, pydfn.Adam(), batch_size=16, seed=0)
        return model.get_weights()[0]

    runs = {"a": trained(2, 0.5), "b": trained(2, 0.5), "other seed": trained(3, 0.5), "none": trained(2, 0.0)}
    assert np.array_equal(runs["a"], runs["b"])
    assert not np.array_equal(runs["a"], runs["other seed"])
    assert not np.array_equal(runs["a"], runs["none"])


def test_checkpoint_keeps_dropout_and_resumes_exactly(rng, tmp_path):
    x, y = data(rng, 64)
    straight = pydfn.MLP(SIZES, seed=5, dropout=[0.1, 0.3])
    straight.fit(x, y, pydfn.Adam(), epochs=2, batch_size=16, verbose=0)
    half = pydfn.MLP(SIZES, seed=5, dropout=[0.1, 0.3])
    half.fit(x, y, pydfn.Adam(), epochs=1, batch_size=16, verbose=0)
    half.save(tmp_path / "m.npz")
    resumed = pydfn.load(tmp_path / "m.npz")
    assert resumed.dropout == (0.1, 0.3) and resumed.seed == 5
    assert repr(resumed) == "MLP([12, 9, 7, 3], dropout=[0.1, 0.3])"
    resumed.fit(x, y, resumed.optimizer, epochs=1, batch_size=16, verbose=0)
    assert all(np.array_equal(p, q) for p, q in zip(straight.get_weights(), resumed.get_weights()))


@pytest.mark.parametrize("sizes, dropout, error, match", [
    (SIZES, 1.0, ValueError, r"dropout rates must be in \[0, 1\), got 1.0"),
    (SIZES, -0.1, ValueError, r"must be in \[0, 1\)"),
    (SIZES, float("nan"), ValueError, r"must be in \[0, 1\)"),
    (SIZES, [0.1], ValueError, r"one rate per hidden layer \(2\), got 1"),
    (SIZES, [0.1, "0.2"], TypeError, r"dropout\[1\] must be a real number"),
    (SIZES, "0.2", TypeError, "dropout must be a number or a sequence"),
    (SIZES, True, TypeError, "dropout must be a number or a sequence"),
    ([4, 2], 0.5, ValueError, "dropout needs hidden layers"),
])
def test_bad_dropout_is_rejected(sizes, dropout, error, match):
    with pytest.raises(error, match=match):
        pydfn.MLP(sizes, dropout=dropout)


def test_no_dropout_on_a_network_without_hidden_layers_is_fine():
    assert pydfn.MLP([4, 2], dropout=0.0).dropout == ()


@pytest.mark.parametrize("flag, want", [("0.2", 0.2), ("0.2,0.1", [0.2, 0.1])])
def test_cli_dropout_flag(flag, want, monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_mlp(sizes, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr("pydfn.cli.MLP", fake_mlp)
    monkeypatch.setattr("pydfn.cli._find_data", lambda path: None)
    monkeypatch.setattr("pydfn.datasets.load_fashion_mnist", lambda where: (
        (np.zeros((10, 28, 28), np.uint8), np.arange(10) % 10), (np.zeros((2, 28, 28), np.uint8), np.zeros(2, int))))
    with pytest.raises(Stop):
        cli_main(["train", "--dropout", flag, "--validation-split", "0"])
    assert seen["dropout"] == want


def test_cli_rejects_a_bad_dropout(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["train", "--dropout", "1.5"])
    assert exit_.value.code == 2
    assert "argument --dropout: must be in [0, 1), got 1.5" in capsys.readouterr().err
