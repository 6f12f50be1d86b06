"""callbacks.CSVLogger: one row per epoch, flushed as it ends, appended only to a matching file."""

import csv

import numpy as np
import pytest

import pydfn
from pydfn.callbacks import CSVLogger


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 4)).astype(np.float32), rng.integers(0, 3, 120)


def read(path, delimiter=","):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def test_rows_match_the_history(tmp_path, data):
    x, y = data
    path = tmp_path / "log.csv"
    model = pydfn.MLP([4, 8, 3], seed=1)
    history = model.fit(x, y, pydfn.Adam(0.01), epochs=3, validation_split=0.25, verbose=0,
                        callbacks=[CSVLogger(path)])
    rows = read(path)
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "time", "lr"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy", "time"):
        assert [float(r[metric]) for r in rows] == history.history[metric]  # repr round-trips exactly
    assert {float(r["lr"]) for r in rows} == {0.01}


def test_append_continues_a_matching_file_and_refuses_another(tmp_path, data):
    x, y = data
    path = tmp_path / "log.csv"
    model = pydfn.MLP([4, 8, 3], seed=1)
    model.fit(x, y, pydfn.Adam(), epochs=2, verbose=0, callbacks=[CSVLogger(path)])
    model.fit(x, y, model.optimizer, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])
    assert [r["epoch"] for r in read(path)] == ["1", "2", "1"]
    before = path.read_bytes()
    with pytest.raises(ValueError, match="has the header 'epoch,loss,accuracy,time,lr'"):
        model.fit(x, y, model.optimizer, epochs=1, validation_split=0.25, verbose=0,
                  callbacks=[CSVLogger(path, append=True)])
    assert path.read_bytes() == before
    model.fit(x, y, model.optimizer, epochs=1, verbose=0, callbacks=[CSVLogger(path)])  # replaces
    assert [r["epoch"] for r in read(path)] == ["1"]


def test_an_interrupted_fit_keeps_the_completed_epochs_rows(tmp_path, data):
    x, y = data
    path = tmp_path / "log.tsv"

    def interrupt_after_epoch_2(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pydfn.MLP([4, 8, 3]).fit(x, y, pydfn.Adam(), epochs=5, verbose=0,
                                 callbacks=[CSVLogger(path, separator="\t"), interrupt_after_epoch_2])
    assert [r["epoch"] for r in read(path, "\t")] == ["1", "2"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"separator": ",,"}, ValueError, "separator must be one character"),
    ({"separator": '"'}, ValueError, "separator must be one character"),
])
def test_bad_settings(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        CSVLogger(tmp_path / "log.csv", **kwargs)


def test_missing_folder_fails_before_training(tmp_path, data):
    x, y = data
    model = pydfn.MLP([4, 3])
    weights = model.get_weights()
    with pytest.raises(FileNotFoundError, match="CSVLogger: the folder"):
        model.fit(x, y, pydfn.Adam(), epochs=1, verbose=0, callbacks=[CSVLogger(tmp_path / "no" / "log.csv")])
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
