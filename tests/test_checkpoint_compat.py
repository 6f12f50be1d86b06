"""Checkpoints written by pydfn 0.1.0 (format version 2) load and continue training to the
bits that release reached itself (tests/data/make_release_checkpoints.py wrote both)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import pydfn

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_release_checkpoints", DATA / "make_release_checkpoints.py")
release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release)


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "release_expected.npz") as f:
        return {k: f[k] for k in f.files}


def flat(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


@pytest.mark.parametrize("name", sorted(release.CASES))
@pytest.mark.parametrize("optimizer", ["the loaded one", "an equal new one"])
def test_a_release_checkpoint_continues_to_the_release_bits(name, optimizer, expected):
    model = pydfn.load(DATA / f"release_{name}.npz")
    options, make_optimizer = release.CASES[name]
    assert model.optimizer == make_optimizer() and model.optimizer_step == 3 * 5  # 40 rows in batches of 8
    assert (model.seed, model.l1, model.l2) == (options["seed"], options.get("l1", 0.0), options.get("l2", 0.0))
    assert model.dropout == (options.get("dropout", 0.0),)
    opt = model.optimizer if optimizer == "the loaded one" else make_optimizer()
    x, y = release.data()
    history = model.fit(x, y, opt, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(flat(model), expected[f"{name}_params"])
    assert history.history["loss"] == expected[f"{name}_loss"].tolist()


@pytest.mark.parametrize("name", sorted(release.CASES))
def test_a_release_checkpoint_saved_again_keeps_its_state_by_name(name, tmp_path):
    model = pydfn.load(DATA / f"release_{name}.npz")
    with np.load(DATA / f"release_{name}.npz") as f:
        legacy = {"m": f["adam_m"], "v": f["adam_v"], "momentum": f["adam_m"], "square_avg": f["adam_v"]}
    model.save(tmp_path / "again.npz")
    with np.load(tmp_path / "again.npz") as f:
        assert int(f["version"]) == 3 and int(f["optimizer.step"]) == 15
        names = model.optimizer.state_names
        assert sorted(k for k in f.files if k.startswith("optimizer.") and k != "optimizer.step") == sorted(
            f"optimizer.{n}" for n in names)
        for n in names:
            np.testing.assert_array_equal(f[f"optimizer.{n}"], legacy[n])
