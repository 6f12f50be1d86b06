"""``pydfn train --data-file``: the user's own .csv or .npz through train, evaluate and predict."""

import re

import numpy as np
import pytest

import pydfn
from pydfn import load

from _cli import in_tmp, run  # noqa: F401  (in_tmp: an autouse fixture)

FAST = ["--epochs", "4", "--hidden", "16", "--verbose", "1", "--lr", "0.01"]




def blobs(n, seed=0):
    """Three well separated classes in 4 features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 4)) + np.eye(3, 4)[y] * 3
    return x.astype(np.float32), y


def write_csv(path, x, labels, header=("a", "b", "c", "d", "species")):
    rows = [",".join(header)] + [",".join([*(f"{v:.5f}" for v in row), str(lab)]) for row, lab in zip(x, labels)]
    path.write_text("\n".join(rows) + "\n")


NAMES = np.array(["setosa", "versicolor", "virginica"])


def test_csv_with_named_classes_trains_reports_and_saves_the_names(tmp_path, capsys):
    x, y = blobs(300)
    write_csv(tmp_path / "iris.csv", x, NAMES[y])
    code, out, err = run(capsys, "train", "--data-file", "iris.csv", *FAST)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[1] == "iris.csv: 270 train, 30 validation (seed 2), no test part (no test metrics)"
    assert lines[2] == "Classes (3): setosa, versicolor, virginica"
    assert lines[3].startswith("MLP([4, 16, 3]) - Adam(lr=0.01")
    assert len([line for line in lines if line.startswith("Epoch ")]) == 4
    assert not any(line.startswith("Test:") for line in lines) and lines[-1] == "Saved the model to model.npz"
    model = load("model.npz")
    assert model.class_names == ["setosa", "versicolor", "virginica"] and model.layer_sizes == [4, 16, 3]

    # evaluate on a separate file whose labels come in another order: mapped by name, not by position
    xt, yt = blobs(90, seed=1)
    keep = yt != 0  # this file has no setosa: its own class ids would be 0, 1
    write_csv(tmp_path / "test.csv", xt[keep], NAMES[yt[keep]])
    code, out, err = run(capsys, "evaluate", "model.npz", "--data-file", "test.csv")
    assert code == 0 and err == ""
    loss, accuracy = model.evaluate(xt[keep], yt[keep].astype(np.int32))
    assert accuracy > 0.9
    assert f"Test: loss {loss:.4f} - accuracy {accuracy:.4f}" in out.splitlines()
    assert "test.csv: all its samples (it has no test part), " in out and "  virginica   " in out

    np.save("features.npy", xt[:5])
    code, out, _ = run(capsys, "predict", "model.npz", "--input", "features.npy")
    rows = out.splitlines()
    proba = model.predict_proba(xt[:5])
    k = int(proba[2].argmax())
    assert code == 0 and rows[3] == f"2\t{k}\t{NAMES[k]}\t{proba[2, k]:.4f}"


def test_csv_label_column_by_name_with_numeric_labels(tmp_path, capsys):
    x, y = blobs(200)
    header = ("a", "label", "b", "c", "d")  # the label in the second column
    rows = ["a,label,b,c,d"] + [f"{r[0]},{lab * 10},{r[1]},{r[2]},{r[3]}" for r, lab in zip(x, y)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run(capsys, "train", "--data-file", "d.csv", "--label-column", header[1], *FAST,
                         "--out", "m.npz")
    assert code == 0 and err == "" and "Classes (3): 0, 10, 20" in out
    assert load("m.npz").class_names == ["0", "10", "20"]


def test_npz_with_a_test_part_reports_test_metrics_and_early_stops(tmp_path, capsys):
    x, y = blobs(400)
    xt, yt = blobs(100, seed=3)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    code, out, err = run(capsys, "train", "--data-file", "d.npz", *FAST, "--early-stopping", "2",
                         "--epochs", "30")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[1] == "d.npz: 360 train, 40 validation (seed 2), 100 test"
    assert lines[2] == "Classes (3): 0, 1, 2"
    model = load("model.npz")
    loss, accuracy = model.evaluate(xt, yt.astype(np.int32))
    assert f"Test: loss {loss:.4f} - accuracy {accuracy:.4f}" in lines and accuracy > 0.9
    code, out, _ = run(capsys, "evaluate", "model.npz", "--data-file", "d.npz")
    assert code == 0 and "d.npz: its test part, 100 samples" in out
    assert f"Test: loss {loss:.4f} - accuracy {accuracy:.4f}" in out.splitlines()


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_regression_with_mse_or_mae(loss, tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    target = x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32) + 1
    write_csv(tmp_path / "r.csv", x, [f"{t:.5f}" for t in target], header=("a", "b", "c", "d", "price"))
    code, out, err = run(capsys, "train", "--data-file", "r.csv", "--loss", loss, *FAST, "--epochs", "10")
    assert code == 0 and err == "" and "Classes" not in out
    model = load("model.npz")
    assert model.loss == loss and model.layer_sizes == [4, 16, 1] and model.class_names is None
    write_csv(tmp_path / "t.csv", x[:50], [f"{t:.5f}" for t in target[:50]], header=("a", "b", "c", "d", "price"))
    code, out, _ = run(capsys, "evaluate", "model.npz", "--data-file", "t.csv")
    cost, mae = model.evaluate(x[:50], target[:50].reshape(-1, 1))
    assert code == 0 and f"Test: loss {cost:.4f} - mean absolute error {mae:.4f}" in out
    np.save("f.npy", x[:3])
    code, out, _ = run(capsys, "predict", "model.npz", "--input", "f.npy")
    assert code == 0 and out.splitlines()[1] == f"0\t{model.predict(x[:1])[0, 0]:.6g}"
    code, out, _ = run(capsys, "predict", "model.npz", "--input", "f.npy", "--output", "p.csv")
    written = np.loadtxt("p.csv", delimiter=",", skiprows=1)
    assert code == 0 and np.allclose(written[:, 1], model.predict(x[:3])[:, 0], rtol=1e-5)
    code, out, _ = run(capsys, "predict", "model.npz", "--input", "f.npy", "--output", "p.npy")
    assert code == 0 and np.array_equal(np.load("p.npy"), model.predict(x[:3]))
    code, _, err = run(capsys, "predict", "model.npz", "--input", "f.npy", "--probabilities")
    assert code == 2 and "regression model" in err


def test_evaluate_takes_its_data_one_way(tmp_path, capsys):
    x, y = blobs(200)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    assert run(capsys, "train", "--data-file", "d.npz", *FAST)[0] == 0
    np.save("x.npy", x)
    np.save("y.npy", y)
    code, _, err = run(capsys, "evaluate", "model.npz", "--data-file", "d.npz", "--input", "x.npy", "--labels", "y.npy")
    assert code == 2 and "exclude each other" in err
    code, out, _ = run(capsys, "evaluate", "model.npz", "--input", "x.npy", "--labels", "y.npy")
    loss, accuracy = load("model.npz").evaluate(x, y)
    assert code == 0 and f"x.npy: loss {loss:.4f} - accuracy {accuracy:.4f}" in out


def bad_files(tmp_path):
    good = "a,b,label\n1,2,x\n3,4,y\n"
    return {
        "ragged": ("a,b,label\n1,2,x\n3,y\n", [], r"ragged\.csv: row 3 has 2 cells, the header 3"),
        "text": ("a,b,label\n1,2,x\n3,oops,y\n", [], r"text\.csv: row 3, column 'b': 'oops' is not a number"),
        "nan": ("a,b,label\n1,2,x\nnan,4,y\n", [], r"nan\.csv: row 3, column 'a': nan \(features must be finite\)"),
        "missing": (good, ["--label-column", "kind"], r"missing\.csv: no label column 'kind'"),
        "one_class": ("a,b,label\n1,2,x\n3,4,x\n", [], r"one_class\.csv: .*only one class \('x'\)"),
    }


@pytest.mark.parametrize("kind", ["ragged", "text", "nan", "missing", "one_class"])
def test_bad_files_give_one_line_and_exit_2(kind, tmp_path, capsys):
    text, flags, message = bad_files(tmp_path)[kind]
    (tmp_path / f"{kind}.csv").write_text(text)
    code, out, err = run(capsys, "train", "--data-file", f"{kind}.csv", *flags, "--epochs", "1")
    assert code == 2 and "Epoch" not in out
    assert len(err.splitlines()) == 1 and err.startswith("pydfn train: error: ")
    assert re.search(message, err), err


def test_bad_npz_and_flag_combinations(tmp_path, capsys):
    np.savez(tmp_path / "nan.npz", x_train=np.array([[1.0, np.nan], [0, 1]]), y_train=np.array([0, 1]))
    code, _, err = run(capsys, "train", "--data-file", "nan.npz")
    assert code == 2 and "nan.npz: x_train: sample 0, feature 1 is nan" in err and len(err.splitlines()) == 1
    for argv, message in [(["--loss", "mse"], "--loss applies to a --data-file"),
                          (["--label-column", "y"], "--label-column applies to a --data-file"),
                          (["--data-file", "nan.npz", "--data", "."], "--data (the Fashion-MNIST folder) and "
                                                                      "--data-file exclude each other"),
                          (["--data-file", "none.csv"], "No such file or directory: 'none.csv'")]:
        code, _, err = run(capsys, "train", *argv)
        assert code == 2 and message in err and len(err.splitlines()) == 1


def test_class_names_are_checked_and_survive_pickling():
    import pickle

    model = pydfn.MLP([2, 3])
    with pytest.raises(ValueError, match="must name the 3 outputs"):
        model.class_names = ["a", "b"]
    with pytest.raises(TypeError, match="sequence of str"):
        model.class_names = "abc"
    with pytest.raises(ValueError, match="of a classifier"):
        pydfn.MLP([2, 1], loss="mse").class_names = ["a"]
    model.class_names = ["a", "b", "c"]
    assert pickle.loads(pickle.dumps(model)).class_names == ["a", "b", "c"]
    assert pickle.loads(pickle.dumps(pydfn.MLP([2, 3]))).class_names is None
