"""Writers keep what the user had: an output path that is one of the command's inputs, or a
folder, is refused before any work; a save keeps the permissions of the file it replaces and a
new file follows the umask; predict's CSV quotes the cells that need it."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import pydfn

from _cli import in_tmp, run  # noqa: F401  (in_tmp: each test in its own folder)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def saved_model():
    rng = np.random.default_rng(0)
    model = pydfn.MLP([3, 4, 2], seed=0)
    model.fit(rng.random((20, 3), dtype=np.float32), np.arange(20) % 2, pydfn.Adam(), epochs=1, batch_size=8,
              verbose=0)
    model.class_names = ["up, then down", 'a "quoted" name']
    model.save("model.npz")
    return model


def test_a_save_keeps_the_permissions_of_the_file_it_replaces(saved_model):
    os.chmod("model.npz", 0o600)
    saved_model.save("model.npz")
    assert mode("model.npz") == 0o600
    old = os.umask(0o027)
    try:
        saved_model.save("new.npz")
    finally:
        os.umask(old)
    assert mode("new.npz") == 0o640  # 0666 less the umask, as open() gives


def test_predict_refuses_an_output_that_is_its_input(saved_model, capsys):
    np.savetxt("x.csv", np.random.default_rng(1).random((3, 3)), delimiter=",")
    before = Path("x.csv").read_text()
    code, _, err = run(capsys, "predict", "model.npz", "--input", "x.csv", "--output", "x.csv")
    assert code == 2 and "--output x.csv is also an input of this command" in err
    assert Path("x.csv").read_text() == before
    os.mkdir("folder.csv")
    code, _, err = run(capsys, "predict", "model.npz", "--input", "x.csv", "--output", "folder.csv")
    assert code == 2 and "is a folder" in err


def test_export_refuses_to_overwrite_the_model_it_reads(saved_model, capsys):
    pytest.importorskip("onnx")
    code, _, err = run(capsys, "export", "model.npz", "model.npz")
    assert code == 2 and "also an input" in err
    assert pydfn.load("model.npz").class_names == saved_model.class_names


def test_train_refuses_an_out_that_is_its_data_file(capsys):
    rng = np.random.default_rng(0)
    np.savez("data.npz", x_train=rng.random((40, 3), dtype=np.float32), y_train=np.arange(40) % 2)
    before = Path("data.npz").read_bytes()
    code, out, err = run(capsys, "train", "--data-file", "data.npz", "--out", "data.npz", "--epochs", "1")
    assert code == 2 and "--out data.npz is also an input" in err
    assert "Epoch" not in out  # refused before training
    assert Path("data.npz").read_bytes() == before


def test_predict_quotes_csv_cells_that_need_it(saved_model, capsys):
    np.savetxt("x.csv", np.random.default_rng(1).random((4, 3)), delimiter=",")
    for extra in ([], ["--probabilities"]):
        code, _, err = run(capsys, "predict", "model.npz", "--input", "x.csv", "--output", "p.csv", *extra)
        assert code == 0, err
        with open("p.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert len(rows) == 5 and {len(r) for r in rows} == {len(rows[0])}
        names = rows[0][3:] if extra else [r[2] for r in rows[1:]]
        assert set(names) <= set(saved_model.class_names) and names
    assert sorted(os.listdir(".")) == ["model.npz", "p.csv", "x.csv"]  # no temporary left
