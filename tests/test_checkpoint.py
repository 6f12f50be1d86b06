import io
import os

import numpy as np
import pytest
from _training_data import blobs, weights_equal

import pydfn
from pydfn.callbacks import ModelCheckpoint
from pydfn import load

SIZES = [20, 32, 16, 4]


@pytest.fixture
def data():
    return blobs(500)


@pytest.fixture
def trained(data):
    model = pydfn.MLP(SIZES, seed=1)
    model.fit(*data, pydfn.Adam(2e-3, beta1=0.8), epochs=2, validation_split=0.2, verbose=0)
    return model


def test_round_trip_keeps_everything(trained, tmp_path):
    path = tmp_path / "model.npz"
    trained.save(path)
    loaded = load(path)
    assert loaded.layer_sizes == SIZES and weights_equal(trained, loaded)
    a, b = trained.engine.state(), loaded.engine.state()
    assert sorted(b.optimizer_state) == ["m", "v"]
    for name in ("m", "v"):
        np.testing.assert_array_equal(a.optimizer_state[name], b.optimizer_state[name])
    assert loaded.optimizer_step == b.step == 2 * 7  # 400 rows in batches of 64, twice
    assert loaded.optimizer.hyperparameters() == (2e-3, 0.8, 0.999, 1e-8)
    assert b.rng_state == a.rng_state
    assert loaded.history.history == trained.history.history
    assert loaded.history.epoch == [0, 1] and loaded.history.params == trained.history.params
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left


def test_an_untrained_model_round_trips_without_optimizer(tmp_path):
    model = pydfn.MLP([5, 3], seed=9)
    model.save(tmp_path / "fresh.npz")
    loaded = load(tmp_path / "fresh.npz")
    assert loaded.optimizer is None and loaded.history is None and weights_equal(model, loaded)


def test_the_file_is_written_under_the_exact_name(trained, tmp_path):
    trained.save(str(tmp_path / "model.ckpt"))
    assert os.listdir(tmp_path) == ["model.ckpt"]
    assert weights_equal(load(tmp_path / "model.ckpt"), trained)


@pytest.mark.parametrize("seed", [None, 11])
def test_resuming_from_a_checkpoint_is_bit_identical(data, tmp_path, seed):
    x, y = data
    straight = pydfn.MLP(SIZES, seed=3)
    straight.fit(x, y, pydfn.Adam(), epochs=5, validation_split=0.2, seed=seed, verbose=0)

    first = pydfn.MLP(SIZES, seed=3)
    first.fit(x, y, pydfn.Adam(), epochs=2, validation_split=0.2, seed=seed, verbose=0)
    first.save(tmp_path / "at2.npz")
    del first
    resumed = load(tmp_path / "at2.npz")
    history = resumed.fit(x, y, resumed.optimizer, epochs=3, validation_split=0.2, verbose=0)

    assert weights_equal(straight, resumed)
    a, b = straight.engine.state(), resumed.engine.state()
    assert a.step == b.step and all(np.array_equal(a.optimizer_state[k], b.optimizer_state[k]) for k in ("m", "v"))
    assert history.history["val_loss"] == straight.history.history["val_loss"][2:]


def test_resuming_from_a_model_checkpoint_written_during_fit(data, tmp_path):
    x, y = data
    straight = pydfn.MLP(SIZES, seed=4)
    straight.fit(x, y, pydfn.Adam(), epochs=4, callbacks=[ModelCheckpoint(tmp_path / "e{epoch}.npz")], verbose=0)
    resumed = load(tmp_path / "e1.npz")
    resumed.fit(x, y, resumed.optimizer, epochs=3, verbose=0)
    assert weights_equal(straight, resumed)


def test_a_failed_save_leaves_the_previous_checkpoint_whole(trained, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    trained.save(path)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        pydfn.MLP(SIZES).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def rewrite(src, dst, **changes):
    """Copy checkpoint src to dst with some entries replaced (None removes one)."""
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    np.savez(dst, **{k: v for k, v in arrays.items() if v is not None})
    return dst


@pytest.fixture
def good(trained, tmp_path):
    path = tmp_path / "good.npz"
    trained.save(path)
    return path


@pytest.mark.parametrize("make, match", [
    (lambda good, bad: bad.write_bytes(good.read_bytes()[:2000]), "truncated or not an .npz file"),
    (lambda good, bad: bad.write_bytes(b""), "truncated or not an .npz file"),
    (lambda good, bad: bad.write_text("weights = [1, 2, 3]\n"), "truncated or not an .npz file"),
    (lambda good, bad: bad.write_bytes(npy_bytes(np.arange(3))), "single array, not an .npz archive"),
    (lambda good, bad: np.savez(bad, W=np.ones(3)), r"without pydfn's format tag \(it holds \['W'\]\)"),
    (lambda good, bad: np.savez(bad, o=np.array([{}], dtype=object)), "truncated or not an .npz file"),
    (lambda good, bad: rewrite(good, bad, version=np.array(4)), r"format version 4 .* reads versions 2 \(pydfn 0.1.0's\) and 3"),
    (lambda good, bad: rewrite(good, bad, layer_sizes=np.array([20, 32, 4])),
     r"params must be float32 of shape \(804,\) for layers \[20, 32, 4\]"),
    (lambda good, bad: rewrite(good, bad, layer_sizes=np.array([20, 0, 4])), r"layer_sizes\[1\] must be >= 1"),
    (lambda good, bad: rewrite(good, bad, **{"optimizer.v": np.zeros(5, np.float32)}),
     "optimizer.v must be float32 of shape"),
    (lambda good, bad: rewrite(good, bad, **{"optimizer.v": None}),
     r"not a valid pydfn checkpoint: no entry 'optimizer.v'"),
    (lambda good, bad: rewrite(good, bad, params=np.full(1268, np.nan, np.float32)), "params contains NaN"),
    (lambda good, bad: rewrite(good, bad, **{"optimizer.step": np.array(-1)}), r"optimizer.step must be in \[0, "),
    # Issue 19 item 4: every field against what training can reach (2**63-1 overflowed the core's next step).
    (lambda good, bad: rewrite(good, bad, **{"optimizer.step": np.array(2**63 - 1)}),
     r"optimizer.step must be in \[0, 9007199254740992\] \(what training can reach\), got 9223372036854775807"),
    (lambda good, bad: rewrite(good, bad, **{"optimizer.step": np.array(2**53 + 1)}), "optimizer.step must be in"),
    (lambda good, bad: rewrite(good, bad, **{"optimizer.step": np.array(14.5)}), "optimizer.step must be a single integer"),
    (lambda good, bad: rewrite(good, bad, **{"optimizer.step": np.array([14, 15])}),
     "optimizer.step must be a single integer"),
    (lambda good, bad: rewrite(good, bad, version=np.array(3.0)), "version must be a single integer"),
    (lambda good, bad: rewrite(good, bad, optimizer=np.array("")), "optimizer.step is 14 but the checkpoint has no optimizer"),
    (lambda good, bad: rewrite(good, bad, params=np.zeros(1268, np.float64)), "params must be float32"),
    (lambda good, bad: rewrite(good, bad, rng_state=np.array('{"bit_generator": "MT19937", "state": {}}')),
     "rng_state must be a PCG64 generator state"),
    (lambda good, bad: rewrite(good, bad, rng_state=np.array(
        '{"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0, "uinteger": 0}')),
     "rng_state must be a PCG64 generator state"),
    (lambda good, bad: rewrite(good, bad, rng_state=np.array(
        '{"bit_generator": "PCG64", "state": {"state": 1, "inc": 1e300}, "has_uint32": 0, "uinteger": 0}')),
     "rng_state must be a PCG64 generator state"),
    (lambda good, bad: rewrite(good, bad, rng_state=np.array("[1, 2]")), "rng_state must be a JSON object"),
    (lambda good, bad: rewrite(good, bad, options=np.array('{"dropout": [0.5, 1.5]}')), "dropout"),
    (lambda good, bad: rewrite(good, bad, options=np.array('{"seed": -3}')), "seed"),
    (lambda good, bad: rewrite(good, bad, optimizer=np.array('{"kind": "adam", "config": {"lr": -1.0}}')),
     "lr must be a finite number >= 0"),
    (lambda good, bad: rewrite(good, bad, optimizer=np.array('{"kind": "lion", "config": {}}')),
     "unknown optimizer 'lion'"),
    (lambda good, bad: rewrite(good, bad, options=np.array('{"loss": "hinge"}')), "loss must be one of"),
    (lambda good, bad: rewrite(good, bad, rng_state=np.array("{}")), "not a valid pydfn checkpoint"),
    (lambda good, bad: rewrite(good, bad, params=None), "not a valid pydfn checkpoint: no entry 'params'"),
])
def test_bad_files_raise_a_clear_value_error(good, tmp_path, make, match):
    bad = tmp_path / "bad.npz"
    make(good, bad)
    with pytest.raises(ValueError, match=match) as info:
        load(bad)
    assert str(bad) in str(info.value)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")
