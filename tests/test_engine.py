"""The engine's interface: optimizer binding, named state out and in, batch logs."""

import dataclasses

import numpy as np
import pytest
from _training_data import blobs

import pydfn
from pydfn import _core
from pydfn._engine import BatchLogs, batches_per_epoch


def trained(optimizer, seed=0):
    x, y = blobs(100)
    model = pydfn.MLP([20, 8, 4], seed=seed)
    model.fit(x, y, optimizer, epochs=1, batch_size=32, verbose=0)
    return model


@pytest.mark.parametrize("optimizer, names", [
    (pydfn.Adam(), ["m", "v"]), (pydfn.AdamW(), ["m", "v"]), (pydfn.SGD(0.1), []),
    (pydfn.SGD(0.1, momentum=0.9), ["momentum"]), (pydfn.RMSProp(), ["square_avg"]),
    (pydfn.RMSProp(momentum=0.5), ["momentum", "square_avg"]),
])
def test_the_state_is_named_by_the_optimizer(optimizer, names):
    model = trained(optimizer)
    state = model.engine.state()
    assert sorted(state.optimizer_state) == names == sorted(optimizer.state_names)
    assert state.step == model.optimizer_step == 4 and state.optimizer is optimizer
    assert all(a.shape == (model.engine.num_params,) and a.dtype == np.float32 and a.any()
               for a in state.optimizer_state.values())


def test_state_in_refuses_buffers_that_are_not_the_optimizers():
    model = trained(pydfn.Adam())
    state = model.engine.state()
    weights = model.get_weights()
    for bad, match in [({"m": state.optimizer_state["m"]}, r"the bound optimizer's state is \[m, v\]"),
                       ({**state.optimizer_state, "momentum": state.optimizer_state["m"]}, "state is"),
                       ({"m": state.optimizer_state["m"], "v": np.zeros(3, np.float32)}, r"v must have shape")]:
        with pytest.raises(ValueError, match=match):
            model.engine.set_state(dataclasses.replace(state, optimizer_state=bad))
    model.engine.set_state(state)  # the good state still goes in
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))


def test_the_core_checks_an_optimizer_config_once():
    config = pydfn.RMSProp(lr=0.02, alpha=0.9, momentum=0.5).core_config()
    assert (config.kind, config.alpha, config.momentum) == ("rmsprop", pytest.approx(0.9), 0.5)
    assert config.state_names == ["square_avg", "momentum"]
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        _core.OptimizerConfig(kind="lion", lr=1e-3)
    with pytest.raises(ValueError, match="alpha must be in"):
        _core.OptimizerConfig(kind="rmsprop", lr=1e-3, alpha=1.0)


def test_training_without_a_bound_optimizer_is_refused():
    model = pydfn.MLP([4, 3])
    x, y = np.ones((2, 4), np.float32), np.zeros(2, np.int32)
    with pytest.raises(RuntimeError, match="no optimizer is bound"):
        model.engine.train(x, y, np.arange(2, dtype=np.int64), 2)


def test_batch_logs_name_the_columns():
    logs = BatchLogs.of(np.array([1.0, 3.0], np.float32), np.array([2, 1]), np.array([4, 2]))
    assert len(logs) == 2 and logs.loss.tolist() == [1.0, 3.0] and logs.size.tolist() == [4.0, 2.0]
    assert logs.accuracy.tolist() == [0.5, 0.5] and logs.mean_loss() == 10 / 6 and logs.mean_accuracy() == 0.5
    both = BatchLogs.concatenate([logs, logs])
    assert len(both) == 4 and both.correct.tolist() == [2, 1, 2, 1]
    assert [batches_per_epoch(n, 32) for n in (1, 32, 33, 64)] == [1, 1, 2, 2]
