"""The MLP against the NumPy reference: gradients, training steps, epochs, determinism, errors."""

import numpy as np
import pytest
from _finite_differences import central_differences

import pydfn
from pydfn.reference import ReferenceAdam, ReferenceMLP
from pydfn.reference import train_epoch as reference_epoch

SIZES = [20, 17, 13, 5]


def data(rng, n, sizes=SIZES):
    return rng.standard_normal((n, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], n)


def rel_diff(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_init_is_glorot_uniform_and_deterministic():
    model = pydfn.MLP([784, 256, 128, 10], seed=3)
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(784, 256), (256,), (256, 128), (128,), (128, 10), (10,)]
    assert all(w.dtype == np.float32 for w in weights)
    limit = np.sqrt(6 / (784 + 256))
    assert limit * 0.99 < np.abs(weights[0]).max() <= limit
    assert abs(weights[0].mean()) < 1e-3 and (weights[1] == 0).all()
    same = pydfn.MLP([784, 256, 128, 10], seed=3).get_weights()
    other = pydfn.MLP([784, 256, 128, 10], seed=4).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights, same))
    assert not np.array_equal(weights[0], other[0])


def test_set_weights_round_trip_and_copies(rng):
    model = pydfn.MLP(SIZES)
    new = [rng.standard_normal(w.shape) for w in model.get_weights()]  # float64 in
    model.set_weights(new)
    got = model.get_weights()
    assert all(np.array_equal(g, n.astype(np.float32)) for g, n in zip(got, new))
    got[0][:] = 0  # a copy: changing it leaves the model alone
    assert not (model.get_weights()[0] == 0).all()


@pytest.mark.parametrize("batch", [1, 3, 17])
def test_gradients_match_float64_finite_differences(batch, rng):
    model = pydfn.MLP(SIZES, seed=1)
    x, y = data(rng, batch)
    loss, grads = model.loss_and_gradients(x, y)
    ref = ReferenceMLP(SIZES, dtype=np.float64)
    ref.params = [w.astype(np.float64) for w in model.get_weights()]
    assert loss == pytest.approx(ref.loss(x, y), rel=1e-5)
    for i, j, slope in central_differences(lambda: ref.loss(x, y), ref.params, rng, coords=12):
        assert grads[i].reshape(-1)[j] == pytest.approx(slope, rel=1e-3, abs=1e-6)


def test_train_step_matches_reference_for_50_steps(rng):
    sizes = [784, 256, 128, 10]
    model, ref = pydfn.MLP(sizes, seed=5), ReferenceMLP(sizes, seed=5)
    adam, ref_adam = pydfn.Adam(), ReferenceAdam(ref.params)
    x, y = data(rng, 50 * 17, sizes)
    for step in range(50):
        rows = slice(17 * step, 17 * (step + 1))
        loss = model.train_step(x[rows], y[rows], adam)
        ref_loss, grads = ref.loss_and_grads(x[rows], y[rows])
        ref_adam.step(ref.params, grads)
        assert loss == pytest.approx(ref_loss, rel=1e-4)
    # Adam moves a parameter whose gradient is ~0 by up to lr·sign(g), so rounding
    # can flip a handful of them: nearly all agree to 1e-6, the worst to 1e-4.
    for got, want in zip(model.get_weights(), ref.params):
        assert np.percentile(np.abs(got - want), 99.9) / np.abs(want).max() < 1e-5
        assert rel_diff(got, want) < 1e-4


@pytest.mark.parametrize("batch_size", [1, 16, 64])
def test_train_epoch_matches_reference(batch_size, rng):
    model, ref = pydfn.MLP(SIZES, seed=7), ReferenceMLP(SIZES, seed=7)
    adam, ref_adam = pydfn.Adam(lr=3e-3), ReferenceAdam(ref.params, lr=3e-3)
    x, y = data(rng, 50 * batch_size - 5)  # a short last batch
    for epoch in range(2):
        loss = model.train_epoch(x, y, adam, batch_size=batch_size, seed=epoch)
        order = np.random.default_rng(epoch).permutation(len(x))
        assert loss == pytest.approx(reference_epoch(ref, ref_adam, x, y, order, batch_size), rel=1e-4)
    for got, want in zip(model.get_weights(), ref.params):
        assert rel_diff(got, want) < 1e-4


def test_epoch_is_bitwise_identical_for_any_thread_count(rng, threads):
    x, y = data(rng, 1000, [784, 256, 128, 10])
    results = []
    for n in (1, 2, 3):
        pydfn.set_num_threads(n)
        model = pydfn.MLP([784, 256, 128, 10], seed=0)
        loss = model.train_epoch(x, y, pydfn.Adam(), seed=1)
        results.append((loss, model.get_weights(), model.predict_logits(x)))
    for loss, weights, logits in results[1:]:
        assert loss == results[0][0]
        assert all(np.array_equal(a, b) for a, b in zip(weights, results[0][1]))
        assert np.array_equal(logits, results[0][2])


def test_shuffle_default_is_reproducible_from_model_seed(rng):
    x, y = data(rng, 300)
    runs = []
    for _ in range(2):
        model = pydfn.MLP(SIZES, seed=11)
        adam = pydfn.Adam()
        runs.append([model.train_epoch(x, y, adam) for _ in range(2)])
    assert runs[0] == runs[1] and runs[0][0] != runs[0][1]


def test_learns_a_synthetic_problem():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 30)) * 2
    y = rng.integers(0, 4, 2000)
    x = (centers[y] + rng.standard_normal((2000, 30))).astype(np.float32)
    model = pydfn.MLP([30, 32, 4], seed=0)
    adam = pydfn.Adam()
    before = model.evaluate(x[1500:], y[1500:])
    for _ in range(5):
        model.train_epoch(x[:1500], y[:1500], adam, batch_size=32)
    loss, accuracy = model.evaluate(x[1500:], y[1500:])
    assert accuracy > 0.9 and loss < before[0] / 3
    assert (model.predict(x[1500:]) == y[1500:]).mean() == accuracy


def test_predict_proba_and_evaluate_agree_with_logits(rng):
    model = pydfn.MLP(SIZES, seed=2)
    x, y = data(rng, 333)
    logits = model.predict_logits(x, batch_size=50)
    assert logits.shape == (333, 5) and np.array_equal(logits, model.predict_logits(x))
    ref = ReferenceMLP(SIZES, seed=2)
    np.testing.assert_allclose(logits, ref.forward(x)[-1], rtol=1e-5, atol=1e-5)
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert np.array_equal(model.predict(x), logits.argmax(axis=1))
    loss, accuracy = model.evaluate(x, y, batch_size=7)
    assert loss == pytest.approx(-np.log(proba[np.arange(333), y]).mean(), rel=1e-5)
    assert accuracy == (logits.argmax(axis=1) == y).mean()


def test_an_equal_optimizer_continues_the_state_and_another_starts_fresh(rng):
    x, y = data(rng, 64)
    a, b, c = pydfn.MLP(SIZES), pydfn.MLP(SIZES), pydfn.MLP(SIZES)
    a.train_step(x, y, pydfn.Adam())
    a.train_step(x, y, pydfn.Adam())  # equal: its second step
    adam = pydfn.Adam()
    b.train_step(x, y, adam)
    b.train_step(x, y, adam)
    assert a.optimizer_step == 2 and all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))
    # other hyper-parameters (or another kind): fresh state, its first step again
    c.set_weights(a.get_weights())
    a.train_step(x, y, pydfn.Adam(beta1=0.8))
    c.train_step(x, y, pydfn.Adam(beta1=0.8))
    assert a.optimizer_step == 1 and all(np.array_equal(p, q) for p, q in zip(a.get_weights(), c.get_weights()))
    # reset_optimizer: the same optimizer from fresh state
    c.set_weights(b.get_weights())
    b.reset_optimizer()
    b.train_step(x, y, adam)
    c.train_step(x, y, pydfn.Adam())
    assert b.optimizer_step == 1 and all(np.array_equal(p, q) for p, q in zip(b.get_weights(), c.get_weights()))


def test_a_schedule_changes_the_bound_optimizer_and_keeps_its_state(rng):
    x, y = data(rng, 64)
    a, b = pydfn.MLP(SIZES), pydfn.MLP(SIZES)
    for model, lrs in ((a, (1e-3, 1e-4)), (b, (1e-3, 1e-3))):
        model.train_step(x, y, pydfn.Adam(lrs[0]))
        model.optimizer.lr = lrs[1]  # as ReduceLROnPlateau does
        model.train_step(x, y, model.optimizer)
    assert a.optimizer_step == b.optimizer_step == 2 and a.optimizer.lr == 1e-4
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])
    ref = pydfn.MLP(SIZES)  # what the core did: Adam's second step with the new rate
    ref.train_step(x, y, pydfn.Adam(1e-3))
    ref.optimizer.lr = 1e-4
    ref.train_step(x, y, pydfn.Adam(1e-4))  # equal to the bound one now: continues
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), ref.get_weights()))


def test_divergence_stops_before_the_bad_update(rng):
    model = pydfn.MLP(SIZES)
    x, y = data(rng, 64)
    weights = model.get_weights()
    weights[0][0, 0] = 3e38  # the forward pass overflows to inf
    model.set_weights(weights)
    with pytest.raises(FloatingPointError, match="weights unchanged"):
        model.train_step(x, y, pydfn.Adam())
    with pytest.raises(FloatingPointError, match="at batch 0 of 4"):
        model.train_epoch(x, y, pydfn.Adam(), batch_size=16)
    assert all(np.array_equal(p, q) for p, q in zip(model.get_weights(), weights))


@pytest.mark.parametrize("sizes,error,match", [
    ([784], ValueError, "at least an input and an output"),
    ([784, 0, 10], ValueError, r"layer_sizes\[1\] must be >= 1, got 0"),
    ([784, -3, 10], ValueError, r"layer_sizes\[1\] must be >= 1"),
    ([784, 2.5, 10], TypeError, r"layer_sizes\[1\] must be an integer"),
    ([784, 1], ValueError, "at least 2 classes"),
    ("784", ValueError, "at least an input"),
])
def test_bad_layer_sizes(sizes, error, match):
    with pytest.raises(error, match=match):
        pydfn.MLP(sizes)


def test_bad_training_arguments(rng):
    model, adam = pydfn.MLP(SIZES), pydfn.Adam()
    x, y = data(rng, 10)
    cases = [
        (lambda: model.train_step(x[:, :5], y, adam), ValueError, r"x must have shape \(n_samples, 20\)"),
        (lambda: model.train_step(x, y[:9], adam), ValueError, "y has 9 labels but x has 10 rows"),
        (lambda: model.train_step(x, y + 5, adam), ValueError, r"labels in \[0, 5\), found"),
        (lambda: model.train_step(x, y - 10, adam), ValueError, r"labels in \[0, 5\), found -"),
        (lambda: model.train_step(x, y.astype(float), adam), TypeError, "integer class labels"),
        (lambda: model.train_step(x.astype(np.int16), y, adam), TypeError, "floating-point"),
        (lambda: model.train_step(x[:0], y[:0], adam), ValueError, "x is empty"),
        (lambda: model.train_step(np.where(x > 1, np.nan, x), y, adam), ValueError, "NaN"),
        (lambda: model.train_step(x, y, "adam"), TypeError, "optimizer must be a pydfn optimizer"),
        (lambda: model.train_epoch(x, y, adam, batch_size=0), ValueError, "batch_size must be >= 1"),
        (lambda: model.train_epoch(x, y, adam, batch_size=11), ValueError, "larger than the number"),
        (lambda: model.set_weights(model.get_weights()[:-1]), ValueError, "expected 6 arrays"),
        (lambda: model.set_weights([np.zeros((2, 2))] * 6), ValueError, r"weights\[0\] must have shape"),
        (lambda: model.evaluate(x, y, batch_size=0), ValueError, "batch_size must be >= 1"),
    ]
    weights = model.get_weights()
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    assert all(np.array_equal(p, q) for p, q in zip(model.get_weights(), weights))


def test_optimizer_hyperparameters_changed_later_are_still_checked(rng):
    model, adam = pydfn.MLP(SIZES), pydfn.Adam()
    with pytest.raises(ValueError, match="lr must be a finite number >= 0"):
        adam.lr = -1.0
    assert adam.lr == 1e-3
    sgd = pydfn.SGD(0.1)
    model.train_step(*data(rng, 4), sgd)
    sgd.nesterov = True  # a combination: checked when the model next takes the optimizer
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        model.train_step(*data(rng, 4), sgd)


def test_a_schedule_may_decay_lr_to_zero(rng, tmp_path):
    # lr >= 0, as PyTorch checks it: a checkpoint saved at the end of a decay to zero loads again
    assert pydfn.Adam(lr=0).lr == 0
    model, adam = pydfn.MLP(SIZES), pydfn.Adam()
    x, y = data(rng, 32)
    model.fit(x, y, adam, epochs=1, batch_size=8, verbose=0)
    before, steps = model.get_weights(), model.optimizer_step
    adam.lr = 0  # e.g. the end of a linear decay: the state goes on, the weights stay
    model.fit(x, y, adam, epochs=1, batch_size=8, verbose=0)
    assert model.optimizer_step == steps + 4
    assert all(np.array_equal(p, q) for p, q in zip(before, model.get_weights()))
    model.save(tmp_path / "lr0.npz")
    assert pydfn.load(tmp_path / "lr0.npz").optimizer.lr == 0


def test_threads_setting(threads):
    pydfn.set_num_threads(1)
    assert pydfn.get_num_threads() == 1
    with pytest.raises(ValueError, match="threads must be >= 1"):
        pydfn.set_num_threads(0)


def test_epoch_with_fused_adam_equals_train_steps_bit_for_bit(rng):
    # train_epoch applies Adam to each layer inside the backward pass; train_step
    # computes all the gradients, then updates: the same arithmetic, so the same bits.
    x, y = data(rng, 5 * 16 + 7)
    epoch, steps = pydfn.MLP(SIZES, seed=3), pydfn.MLP(SIZES, seed=3)
    adam_e, adam_s = pydfn.Adam(), pydfn.Adam()
    for _ in range(2):
        epoch.train_epoch(x, y, adam_e, batch_size=16, shuffle=False)
        for start in range(0, len(x), 16):
            steps.train_step(x[start:start + 16], y[start:start + 16], adam_s)
    assert all(np.array_equal(p, q) for p, q in zip(epoch.get_weights(), steps.get_weights()))


def test_grads_view_is_the_gradient_buffer_and_keeps_it_alive(rng):
    model = pydfn.MLP(SIZES)
    view = model.engine.grads_view()
    loss, grads = model.loss_and_gradients(*data(rng, 8))
    assert np.array_equal(view, np.concatenate([g.ravel() for g in grads]))
    view *= 0.5  # what an MPI allreduce-average does in place
    assert np.array_equal(model.engine.get_grads(), view)
    del model
    assert np.isfinite(view).all()  # the view keeps the network's memory alive


def test_inference_takes_any_batch_size_and_shuffle_must_be_a_bool(rng):
    model = pydfn.MLP([4, 3, 2])
    x, y = rng.standard_normal((5, 4)).astype(np.float32), np.array([0, 1, 0, 1, 1])
    logits = model.predict_logits(x)
    assert np.array_equal(model.predict_logits(x, batch_size=2**40), logits)  # beyond the data: one call
    assert model.evaluate(x, y, batch_size=2**40) == model.evaluate(x, y)
    for call in (lambda: model.train_epoch(x, y, pydfn.Adam(), batch_size=2, shuffle="no"),
                 lambda: model.fit(x, y, pydfn.Adam(), batch_size=2, shuffle=None, verbose=0)):
        with pytest.raises(TypeError, match="shuffle must be True or False, got"):
            call()
    assert np.array_equal(model.predict_logits(x), logits)  # nothing trained


@pytest.mark.parametrize("name,value", [("activation", "tanh"), ("loss", "mse"), ("precision", "bf16"),
                                        ("dropout", (0.5,)), ("seed", 5), ("label_smoothing", 0.1)])
def test_the_options_the_network_was_built_with_are_read_only(name, value):
    # Assigning one changed repr and save but not what the model computed.
    model = pydfn.MLP([3, 4, 2])
    before = model.options()
    with pytest.raises(AttributeError, match=f"{name} is fixed when the model is built"):
        setattr(model, name, value)
    assert model.options() == before


def test_assigning_a_penalty_takes_effect(rng):
    x, y = rng.random((8, 3), dtype=np.float32), np.arange(8) % 2
    model = pydfn.MLP([3, 4, 2])
    cost = model.loss_and_gradients(x, y)[0]
    model.l2 = 0.5
    assert model.options()["l2"] == 0.5 and model.l1 == 0.0
    assert model.loss_and_gradients(x, y)[0] == pytest.approx(cost + 0.5 * sum((w ** 2).sum() for w in
                                                                               model.get_weights()[0::2]))
    with pytest.raises(ValueError, match="l1"):
        model.l1 = -1.0
