"""SGD, RMSProp, AdamW (and Adam) in the core against the NumPy reference, written
from PyTorch's formulas: kernel by kernel, through the model, fused and not, saved and loaded."""

import numpy as np
import pytest

import pydfn
from pydfn import load
from pydfn import _core
from pydfn._core import testing
from pydfn.reference import ReferenceAdam, ReferenceAdamW, ReferenceMLP, ReferenceRMSProp, ReferenceSGD

from conftest import FAST_KERNELS

SIZES = [20, 17, 13, 5]

# (pydfn optimizer, matching reference optimizer factory)
CASES = {
    "sgd": (lambda: pydfn.SGD(0.05), lambda p: ReferenceSGD(p, 0.05)),
    "sgd-momentum": (lambda: pydfn.SGD(0.05, momentum=0.9), lambda p: ReferenceSGD(p, 0.05, 0.9)),
    "sgd-nesterov": (lambda: pydfn.SGD(0.05, momentum=0.8, nesterov=True),
                     lambda p: ReferenceSGD(p, 0.05, 0.8, nesterov=True)),
    "rmsprop": (lambda: pydfn.RMSProp(), lambda p: ReferenceRMSProp(p)),
    "rmsprop-momentum": (lambda: pydfn.RMSProp(1e-3, alpha=0.9, eps=1e-6, momentum=0.5),
                         lambda p: ReferenceRMSProp(p, 1e-3, 0.9, 1e-6, 0.5)),
    "adamw": (lambda: pydfn.AdamW(), lambda p: ReferenceAdamW(p)),
    "adamw-strong": (lambda: pydfn.AdamW(0.01, 0.8, 0.99, 1e-6, weight_decay=0.5),
                     lambda p: ReferenceAdamW(p, 0.01, 0.8, 0.99, 1e-6, 0.5)),
    "adam": (lambda: pydfn.Adam(), lambda p: ReferenceAdam(p)),
}


def data(rng, n, sizes=SIZES):
    return rng.standard_normal((n, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], n)


def test_defaults_are_pytorchs():
    assert pydfn.SGD(0.1).get_config() == {"lr": 0.1, "momentum": 0.0, "nesterov": False}
    assert pydfn.RMSProp().get_config() == {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0}
    assert pydfn.AdamW().get_config() == {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                          "weight_decay": 0.01}
    assert repr(pydfn.SGD(0.1, 0.9, True)) == "SGD(lr=0.1, momentum=0.9, nesterov=True)"


@pytest.mark.parametrize("kernels", ["reference"] + FAST_KERNELS)
@pytest.mark.parametrize("n", [1, 17, 4097, 10000])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("penalty", [(0.0, 0.0), (1e-3, 0.05)])
def test_kernel_matches_reference(kernels, n, case, penalty, rng):
    make, make_ref = CASES[case]
    opt, (l1, l2) = make(), penalty
    p0 = rng.standard_normal(n).astype(np.float32)
    p0[::7] = 0  # sign(0) = 0 for the l1 penalty
    p, s1, s2 = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    ref_p = [p0.astype(np.float64)]
    ref = make_ref(ref_p)
    for t in range(1, 8):
        g = rng.standard_normal(n).astype(np.float32) * 10 ** rng.uniform(-3, 0)
        testing.opt_update(p, s1, s2, g, t, opt.core_config(), l1=l1, l2=l2, kernels=kernels)
        w = ref_p[0]
        ref.step(ref_p, [g + l1 * np.sign(w) + 2 * l2 * w])
    np.testing.assert_allclose(p, ref_p[0], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_steps_match_reference(case, rng):
    make, make_ref = CASES[case]
    model, opt = pydfn.MLP(SIZES, seed=1), make()
    ref_model = ReferenceMLP(SIZES, seed=1, dtype=np.float64)
    ref = make_ref(ref_model.params)
    for _ in range(5):
        x, y = data(rng, 16)
        loss = model.train_step(x, y, opt)
        ref_loss, grads = ref_model.loss_and_grads(x.astype(np.float64), y)
        ref.step(ref_model.params, grads)
        assert loss == pytest.approx(ref_loss, rel=1e-4)
    for got, want in zip(model.get_weights(), ref_model.params):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("penalty", [{}, {"l1": 1e-3, "l2": 1e-2}])
def test_fused_epoch_equals_train_steps_bit_for_bit(case, penalty, rng):
    # train_epoch applies the optimizer (and the penalty's gradient) inside the
    # backward pass; train_step computes the gradients, then updates.
    x, y = data(rng, 3 * 16 + 5)
    epoch, steps = pydfn.MLP(SIZES, seed=3, **penalty), pydfn.MLP(SIZES, seed=3, **penalty)
    opt_e, opt_s = CASES[case][0](), CASES[case][0]()
    for _ in range(2):
        epoch.train_epoch(x, y, opt_e, batch_size=16, shuffle=False)
        for start in range(0, len(x), 16):
            steps.train_step(x[start:start + 16], y[start:start + 16], opt_s)
    assert all(np.array_equal(p, q) for p, q in zip(epoch.get_weights(), steps.get_weights()))
    a, b = epoch.engine.state(), steps.engine.state()
    assert a.step == b.step and sorted(a.optimizer_state) == sorted(b.optimizer_state)
    assert all(np.array_equal(a.optimizer_state[k], b.optimizer_state[k]) for k in a.optimizer_state)


@pytest.mark.parametrize("batch_size", ["all", 1, 7])
def test_batch_stochastic_and_minibatch_gradient_descent(batch_size, rng):
    x, y = data(rng, 40)
    bs = len(x) if batch_size == "all" else batch_size
    model, opt = pydfn.MLP(SIZES, seed=2), pydfn.SGD(0.05)
    ref_model = ReferenceMLP(SIZES, seed=2, dtype=np.float64)
    ref = ReferenceSGD(ref_model.params, 0.05)
    model.train_epoch(x, y, opt, batch_size=bs, shuffle=False)
    for start in range(0, len(x), bs):
        ref.step(ref_model.params, ref_model.loss_and_grads(x[start:start + bs].astype(np.float64),
                                                            y[start:start + bs])[1])
    assert model.optimizer_step == -(-len(x) // bs)
    for got, want in zip(model.get_weights(), ref_model.params):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["sgd-nesterov", "rmsprop-momentum", "adamw-strong"])
def test_checkpoint_resumes_each_optimizer_exactly(case, rng, tmp_path):
    x, y = data(rng, 64)
    straight = pydfn.MLP(SIZES, seed=5, l2=1e-3)
    opt = CASES[case][0]()
    straight.fit(x, y, opt, epochs=2, batch_size=16, verbose=0)
    half = pydfn.MLP(SIZES, seed=5, l2=1e-3)
    half.fit(x, y, CASES[case][0](), epochs=1, batch_size=16, verbose=0)
    half.save(tmp_path / "m.npz")
    resumed = load(tmp_path / "m.npz")
    assert type(resumed.optimizer) is type(opt) and resumed.optimizer.get_config() == opt.get_config()
    assert resumed.l2 == 1e-3
    resumed.fit(x, y, resumed.optimizer, epochs=1, batch_size=16, verbose=0)
    assert all(np.array_equal(p, q) for p, q in zip(straight.get_weights(), resumed.get_weights()))


@pytest.mark.parametrize("make, error, match", [
    (lambda: pydfn.SGD(), TypeError, "lr"),
    (lambda: pydfn.SGD(-0.1), ValueError, "lr must be a finite number >= 0"),
    (lambda: pydfn.SGD(0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: pydfn.SGD(0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda: pydfn.SGD(0.1, nesterov=1), TypeError, "nesterov must be True or False"),
    (lambda: pydfn.RMSProp(alpha=1.0), ValueError, r"alpha must be in \[0, 1\)"),
    (lambda: pydfn.RMSProp(eps=float("nan")), ValueError, "eps must be a finite number > 0"),
    (lambda: pydfn.AdamW(weight_decay=-1), ValueError, "weight_decay must be a finite number >= 0"),
    (lambda: pydfn.AdamW(weight_decay="0.1"), TypeError, "weight_decay must be a real number"),
])
def test_bad_hyperparameters_are_rejected(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_non_optimizer_is_rejected(rng):
    with pytest.raises(TypeError, match="optimizer must be a pydfn optimizer"):
        pydfn.MLP(SIZES).train_step(*data(rng, 4), object())


@pytest.mark.parametrize("flags, want", [
    ([], pydfn.Adam()),
    (["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--nesterov"], pydfn.SGD(0.1, 0.9, True)),
    (["--optimizer", "rmsprop", "--momentum", "0.5"], pydfn.RMSProp(momentum=0.5)),
    (["--optimizer", "adamw", "--weight-decay", "0.1"], pydfn.AdamW(weight_decay=0.1)),
    (["--optimizer", "adamw"], pydfn.AdamW(weight_decay=0.01)),
])
def test_cli_flags_choose_the_optimizer(flags, want):
    from pydfn import cli
    got = cli._optimizer(cli._parser().parse_args(["train", *flags]))
    assert type(got) is type(want) and got.get_config() == want.get_config()


@pytest.mark.parametrize("flags, message", [
    (["--momentum", "0.9"], "--momentum applies to sgd and rmsprop"),
    (["--weight-decay", "0.1"], "--weight-decay applies to adamw, not adam"),
    (["--optimizer", "sgd", "--weight-decay", "0"], "--weight-decay applies to adamw, not sgd"),
])
def test_cli_rejects_flags_of_another_optimizer(flags, message):
    from pydfn import cli
    with pytest.raises(ValueError, match=message):
        cli._optimizer(cli._parser().parse_args(["train", *flags]))


def test_the_core_refuses_a_step_count_it_cannot_advance(rng):
    # A step count near 2**63 overflowed in the core and turned the weights into NaN.
    net = _core.Network([5, 4, 3])
    net.bind_optimizer(_core.OptimizerConfig(kind="adam", lr=1e-3))
    state = net.get_optimizer_state()
    for t in (-1, _core.MAX_OPT_STEP + 1, 2**63 - 1):
        with pytest.raises(ValueError, match="step must be in"):
            net.set_optimizer_state(state, t)
    x = rng.random((8, 5), dtype=np.float32)
    y = rng.integers(0, 3, 8).astype(np.int32)
    order = np.arange(8, dtype=np.int64)
    net.set_optimizer_state(state, _core.MAX_OPT_STEP - 1)
    params = net.get_params()
    with pytest.raises(ValueError, match="would pass its limit"):
        net.train_batches(x, y, order, 4)  # two steps, one left
    assert np.array_equal(net.get_params(), params) and net.optimizer_step == _core.MAX_OPT_STEP - 1
    net.train_batches(x, y, order, 8)  # the last step
    assert net.optimizer_step == _core.MAX_OPT_STEP
    params = net.get_params()
    assert np.all(np.isfinite(params))
    net.compute_gradients(x, y)
    with pytest.raises(ValueError, match="step count is at its limit"):
        net.apply_update()
    with pytest.raises(ValueError, match="would pass its limit"):
        net.train_batches(x, y, order, 8)
    assert np.array_equal(net.get_params(), params) and net.optimizer_step == _core.MAX_OPT_STEP
