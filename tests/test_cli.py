"""The pydfn command, in-process on a small fake Fashion-MNIST and in subprocesses on the real one."""

import errno
import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import pydfn
from pydfn import callbacks, cli, datasets, training
from pydfn import load
from pydfn.schedules import CosineDecay, OneCycle, StepDecay

from _cli import in_tmp, run  # noqa: F401  (in_tmp: an autouse fixture)

CLASSES = datasets.FASHION_MNIST_CLASSES
FAST = ["--epochs", "3", "--hidden", "32", "--verbose", "1"]


def fake_fashion_mnist(n_train=600, n_test=200, seed=0, random_labels=False):
    """Images whose class is a bright 7x7 block at one of ten places, on noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            r, c = divmod(int(k), 4)
            images[i, 7 * r:7 * r + 7, 7 * c:7 * c + 7] = 255
        if random_labels:
            labels = rng.integers(0, 10, n).astype(np.uint8)
        return images, labels

    return make(n_train), make(n_test)


@pytest.fixture
def fake_data(monkeypatch, tmp_path):
    """The CLI sees a fake dataset 'found' in tmp_path/data; returns a setter for other data."""
    folder = tmp_path / "data"
    folder.mkdir()

    def use(data):
        monkeypatch.setattr(datasets, "find_fashion_mnist", lambda path=None, *, download=True: folder)
        monkeypatch.setattr(datasets, "load_fashion_mnist", lambda path=None, *, download=True: data)
        return data

    use(fake_fashion_mnist())
    return use




def test_train_reports_validation_test_per_class_and_time_and_saves(fake_data, capsys):
    code, out, err = run(capsys, "train", *FAST)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"pydfn {pydfn.__version__} - {pydfn._core.isa()} kernels - ")
    assert lines[1].endswith(": 540 train, 60 validation (seed 2), 200 test")
    assert lines[2] == ("MLP([784, 32, 10]) - Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08) - batch 64 - 3 epochs")
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert len(epochs) == 3 and all(" - val_loss " in line and " - val_accuracy " in line for line in epochs)
    model = load("model.npz")
    (_, _), (x_test, y_test) = datasets.load_fashion_mnist()
    loss, accuracy = model.evaluate(x_test.reshape(-1, 784) / np.float32(255), y_test)
    assert f"Test: loss {loss:.4f} - accuracy {accuracy:.4f}" in lines
    assert accuracy > 0.9  # the fake classes are easy
    table = lines[lines.index("Per-class accuracy:") + 1:][:10]
    assert [row.split()[0] for row in table] == [name.split()[0] for name in CLASSES]
    assert re.fullmatch(r"Time per epoch: [\d.]+ s \([\d,]+ samples/s\); 3 epochs in [\d.]+ s", lines[-2])
    assert lines[-1] == "Saved the model to model.npz"
    assert model.history.history["val_loss"] == load("model.npz").history.history["val_loss"]


def without_times(text):
    """The text with every duration and speed replaced by T."""
    return re.sub(r"\d[\d.,]*[kM]? ?(samples/s|s)\b", "T", text)


def test_the_same_command_twice_prints_the_same_metrics(fake_data, capsys):
    first = run(capsys, "train", *FAST, "--out", "a.npz")[1]
    second = run(capsys, "train", *FAST, "--out", "b.npz")[1]
    assert without_times(first).replace("a.npz", "") == without_times(second).replace("b.npz", "")
    assert all(np.array_equal(a, b) for a, b in zip(load("a.npz").get_weights(), load("b.npz").get_weights()))


def test_flags_reach_the_model_and_the_fit(fake_data, capsys):
    code, out, _ = run(capsys, "train", "--epochs", "2", "--batch-size", "100", "--lr", "0.01",
                       "--hidden", "16,8", "--validation-split", "0.25", "--seed", "5", "--threads", "1",
                       "--out", "m.npz", "--verbose", "0")
    assert code == 0 and pydfn.get_num_threads() == 1
    model = load("m.npz")
    assert model.layer_sizes == [784, 16, 8, 10] and model.optimizer.lr == 0.01
    assert model.history.params["samples"] == 450 and model.history.params["batch_size"] == 100
    assert model.optimizer_step == 2 * 5  # 450 rows in batches of 100, twice
    assert not any(line.startswith("Epoch") for line in out.splitlines())
    # seed 5 seeds the split, the weights and the shuffling
    (x, y), _ = datasets.load_fashion_mnist()
    x_train, x_val, y_train, y_val = datasets.train_val_split(x, y, 0.25, seed=5)
    same = pydfn.MLP([784, 16, 8, 10], seed=5)
    same.fit(x_train, y_train, pydfn.Adam(0.01), epochs=2, batch_size=100, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(same.get_weights(), model.get_weights()))


@pytest.mark.parametrize("spec, expected", [
    ("shift=2,flip", pydfn.Augment(2, True)), ("shift=2", pydfn.Augment(2, False)), ("flip", pydfn.Augment(0, True)),
    (" flip , shift=1 ", pydfn.Augment(1, True)), ("shift=0", pydfn.Augment(0, False)),
])
def test_augment_specs(spec, expected):
    assert cli._augment(spec) == expected


def test_augment_reaches_the_fit(fake_data, capsys):
    code, out, _ = run(capsys, "train", "--epochs", "2", "--hidden", "16", "--augment", "shift=1,flip",
                       "--validation-split", "0.25", "--out", "m.npz", "--verbose", "1")
    assert code == 0
    assert out.splitlines()[2].endswith(" - batch 64 - 2 epochs - Augment(shift=1, flip=True)")
    (x, y), _ = datasets.load_fashion_mnist()
    x_train, x_val, y_train, y_val = datasets.train_val_split(x, y, 0.25, seed=2)
    same = pydfn.MLP([784, 16, 10], seed=2)
    same.fit(x_train, y_train, pydfn.Adam(), epochs=2, validation_data=(x_val, y_val), verbose=0,
             augment=pydfn.Augment(1, True))
    model = load("m.npz")
    assert all(np.array_equal(a, b) for a, b in zip(same.get_weights(), model.get_weights()))
    assert model.history.history["val_loss"] == same.history.history["val_loss"]


def test_no_validation_and_no_hidden_layer(fake_data, capsys):
    code, out, _ = run(capsys, "train", "--epochs", "1", "--validation-split", "0", "--hidden", "")
    assert code == 0 and ": 600 train, 0 validation" in out and "val_loss" not in out
    assert load("model.npz").layer_sizes == [784, 10]


def test_early_stopping_stops_and_keeps_the_best_epoch(fake_data, capsys):
    fake_data(fake_fashion_mnist(random_labels=True))  # nothing to learn: val_loss soon turns up
    code, out, _ = run(capsys, "train", "--epochs", "30", "--lr", "0.01", "--early-stopping", "2", "--out", "es.npz")
    assert code == 0
    history = load("es.npz").history
    best = history.best_epoch()  # numbered from 1, as printed
    assert len(history) == best + 2 < 30 and f"(epoch {best})" in out
    assert "Training stopped: early stopping: val_loss has not improved on " in out
    assert sum(line.startswith("Epoch ") for line in out.splitlines()) == len(history)
    model = load("es.npz")
    (x, y), _ = datasets.load_fashion_mnist()
    _, x_val, _, y_val = datasets.train_val_split(x, y, 0.1, seed=2)
    assert model.evaluate(x_val.reshape(-1, 784) / np.float32(255), y_val)[0] == pytest.approx(
        history.history["val_loss"][best - 1], rel=1e-9)


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "-1"], "argument --epochs: must be >= 0, got -1"),
    (["train", "--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
    (["train", "--lr", "0"], "argument --lr: must be > 0, got 0"),
    (["train", "--lr", "nan"], "argument --lr: must be > 0, got nan"),
    (["train", "--lr", "inf"], "argument --lr: must be a finite number, got inf"),
    (["train", "--l2", "1e999"], "argument --l2: must be a finite number, got 1e999"),
    (["train", "--label-smoothing", "2"], "argument --label-smoothing: must be <= 1, got 2"),
    (["train", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["train", "--hidden", "256,0"], "argument --hidden: layer sizes must be >= 1, got '256,0'"),
    (["train", "--hidden", "256;128"], "argument --hidden: expected comma-separated layer sizes"),
    (["train", "--validation-split", "1"], r"argument --validation-split: must be in \[0, 1\), got 1"),
    (["train", "--threads", "0"], "argument --threads: must be >= 1, got 0"),
    (["train", "--early-stopping", "0"], "argument --early-stopping: must be >= 1, got 0"),
    (["train", "--verbose", "3"], r"argument --verbose: invalid choice: 3"),
    (["train", "--augment", "rotate"], r"argument --augment: expected shift=N \(an integer N >= 0\) and/or flip, "
                                       "comma-separated, like shift=2,flip; got 'rotate'"),
    (["train", "--augment", "shift"], "argument --augment: expected shift=N .* got 'shift'"),
    (["train", "--augment", "shift=-1"], "argument --augment: expected shift=N .* got 'shift=-1'"),
    (["train", "--augment", "shift=two,flip"], "argument --augment: expected shift=N .* got 'shift=two,flip'"),
    (["train", "--augment", "flip=1"], "argument --augment: expected shift=N .* got 'flip=1'"),
    (["train", "--augment", ""], "argument --augment: expected shift=N .* got ''"),
    (["train", "--augment", "shift=1,"], "argument --augment: expected shift=N .* got 'shift=1,'"),
    (["train", "--augment", "flip,shift=1,flip"], "argument --augment: flip is given twice in 'flip,shift=1,flip'"),
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["fly"], "invalid choice: 'fly'"),
    ([], "the following arguments are required"),
])
def test_bad_flags_give_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("pydfn")
    assert re.search(message, err) and err.rstrip().endswith("--help)")


@pytest.mark.parametrize("argv, message", [
    (["train", "--early-stopping", "3", "--validation-split", "0"], "--early-stopping needs validation data"),
    (["train", "--reduce-lr", "2", "--validation-split", "0"], "--reduce-lr needs validation data"),
    (["train", "--out", "no/such/dir/m.npz"], "cannot write no/such/dir/m.npz: the folder no/such/dir does not exist"),
    (["train", "--batch-size", "1000"], r"batch_size \(1000\) is larger than the number of training samples"),
])
def test_bad_combinations_fail_before_training(argv, message, fake_data, capsys):
    code, out, err = run(capsys, *argv)
    assert code == 2 and "Epoch" not in out
    assert err.startswith("pydfn train: error: ") and re.search(message, err) and len(err.splitlines()) == 1


def test_missing_data_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("PYDFN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path / "no-system-package")
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", ["http://127.0.0.1:9/"])  # refused at once
    code, out, err = run(capsys, "train", "--epochs", "1")
    assert code == 2 and "Epoch" not in out
    assert err.startswith("pydfn train: error: Fashion-MNIST not found. Places tried, in order:")
    assert "apt-get install dataset-fashion-mnist" in err and "Traceback" not in err


def test_a_data_folder_without_the_data_is_an_error(tmp_path, capsys):
    if not datasets.SYSTEM_DIR.is_dir() and not os.environ.get("PYDFN_DATA"):
        pytest.skip("needs Fashion-MNIST somewhere: apt-get install dataset-fashion-mnist")
    code, _, err = run(capsys, "train", "--data", str(tmp_path))
    assert code == 2 and f"pydfn train: error: --data {tmp_path}: no verified Fashion-MNIST files there" in err


def test_divergence_exits_1_with_a_hint(fake_data, capsys):
    code, _, err = run(capsys, "train", "--epochs", "2", "--lr", "1e35")
    assert code == 1 and "training diverged" in err and err.rstrip().endswith("(try a smaller --lr)")


@pytest.fixture
def saved_model(fake_data, capsys):
    assert run(capsys, "train", *FAST, "--out", "m.npz")[0] == 0
    return "m.npz"


def test_evaluate_prints_the_test_metrics_train_printed(saved_model, capsys):
    train_out = run(capsys, "train", *FAST, "--out", "again.npz")[1].splitlines()
    code, out, err = run(capsys, "evaluate", saved_model)
    lines = out.splitlines()
    assert code == 0 and err == ""
    best = load(saved_model).history.best_epoch()
    assert lines[0] == "m.npz: MLP([784, 32, 10])" and lines[1] == f"Trained 3 epochs; best val_loss at epoch {best}"
    start = train_out.index(next(line for line in train_out if line.startswith("Test:")))
    assert lines[2:] == train_out[start:start + 12]


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not a zip"), "is not a readable pydfn checkpoint"),
    (lambda p: pydfn.MLP([20, 10]).save(p), "holds a network of 20 inputs"),
    (lambda p: pydfn.MLP([784, 3]).save(p), "has 3 outputs; Fashion-MNIST has 10 classes"),
])
def test_evaluate_bad_model_files(make, message, fake_data, tmp_path, capsys):
    make(tmp_path / "bad.npz")
    code, _, err = run(capsys, "evaluate", "bad.npz")
    assert code == 2 and err.startswith("pydfn evaluate: error: ") and message in err


def test_evaluate_a_missing_file(capsys):
    code, _, err = run(capsys, "evaluate", "missing.npz")
    assert code == 2 and "No such file or directory: 'missing.npz'" in err


def test_predict_the_test_set(saved_model, capsys):
    code, out, _ = run(capsys, "predict", saved_model)
    lines = out.splitlines()
    model = load(saved_model)
    _, (x_test, _) = datasets.load_fashion_mnist()
    proba = model.predict_proba(x_test.reshape(-1, 784) / np.float32(255))
    assert code == 0 and lines[0] == "index\tclass\tname\tprobability" and len(lines) == 201
    k = int(proba[7].argmax())
    assert lines[8] == f"7\t{k}\t{CLASSES[k]}\t{proba[7, k]:.4f}"


def test_predict_an_npy_file_into_an_npy_file(saved_model, capsys):
    _, (x_test, _) = datasets.load_fashion_mnist()
    np.save("images.npy", x_test[:25])
    np.save("features.npy", x_test[:25].reshape(25, 784) / np.float32(255))
    code, out, _ = run(capsys, "predict", saved_model, "--input", "images.npy", "--output", "ids.npy")
    assert code == 0 and out == "Saved 25 class ids to ids.npy\n"
    expected = load(saved_model).predict(x_test[:25].reshape(25, 784) / np.float32(255))
    np.testing.assert_array_equal(np.load("ids.npy"), expected)
    assert run(capsys, "predict", saved_model, "--input", "features.npy")[1].count("\n") == 26


@pytest.mark.parametrize("array, message", [
    (np.zeros((3, 10, 10), np.uint8), "--input must hold images of 784 pixels"),
    (np.zeros((3, 784), np.int64), "--input must be a floating-point array"),
    (np.array([{"a": 1}], dtype=object), "bad.npy: holds Python objects (dtype object), not numbers"),
])
def test_predict_bad_input(array, message, saved_model, capsys):
    np.save("bad.npy", array)
    code, _, err = run(capsys, "predict", saved_model, "--input", "bad.npy")
    assert code == 2 and err.startswith("pydfn predict: error: ") and message in err


def test_a_prediction_that_overflows_is_an_error_not_a_diverged_training(saved_model, capsys):
    model = load(saved_model)
    model.set_weights([w * np.float32(1e25) for w in model.get_weights()])
    model.save("huge.npz")
    np.save("x.npy", np.ones((3, 784), np.float32))
    code, _, err = run(capsys, "predict", "huge.npz", "--input", "x.npy")
    assert code == 1 and err.startswith("pydfn predict: error: the network's outputs overflowed float32")
    assert "training diverged" not in err and err.count("learning rate") == 1


def test_reduce_lr_divides_by_ten_at_most_twice(fake_data, capsys, monkeypatch):
    made = []

    class Recording(callbacks.ReduceLROnPlateau):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            made.append(self)

    monkeypatch.setattr(cli, "ReduceLROnPlateau", Recording)
    code, out, _ = run(capsys, "train", *FAST, "--lr", "0.002", "--reduce-lr", "1")
    (schedule,) = made
    assert code == 0 and (schedule.patience, schedule.factor, schedule.min_lr) == (1, 0.1, 0.002 / 100)
    for epoch, lr in schedule.changes:  # each change is reported after its epoch's line
        assert f"Epoch {epoch + 1}: val_loss has not improved" in out and f"learning rate now {lr:g}" in out


def test_info(fake_data, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PYDFN_MAX_ISA", raising=False)
    code, out, _ = run(capsys, "info")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"pydfn {pydfn.__version__} (Python ")
    assert lines[1] == f"CPU kernels: {pydfn._core.isa()} (this CPU runs up to {pydfn._core.hardware_isa()})"
    note = pydfn.info()["isa_note"]  # why AMX tiles go unused, on a CPU that has them
    if note is not None:
        assert lines.pop(2) == f"  {note}"
    assert lines[2] == f"Threads: {pydfn.get_num_threads()} (OpenMP {'on' if pydfn._core.has_openmp() else 'off'})"
    assert lines[3] == f"Fashion-MNIST: {tmp_path / 'data'}"


def test_plots_are_saved_as_png(fake_data, capsys):
    pytest.importorskip("matplotlib", reason='the plots need matplotlib: pip install "pydfn[plot]"')
    code, out, _ = run(capsys, "train", *FAST, "--plots", "figs")
    assert code == 0 and out.splitlines()[-1] == "Saved training_curves.png, confusion_matrix.png, samples.png in figs"
    for name in ("training_curves.png", "confusion_matrix.png", "samples.png"):
        assert Path("figs", name).read_bytes()[:4] == b"\x89PNG"


def test_plots_without_matplotlib_fail_before_training(fake_data, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, "train", *FAST, "--plots", "figs")
    assert code == 2 and "Epoch" not in out and 'pip install "pydfn[plot]"' in err


# --- real processes: the console script, python -m pydfn, Ctrl-C, the real data --------------

def pydfn_command():
    script = Path(sys.executable).parent / "pydfn"
    assert script.exists(), "pip install . installs the pydfn console script beside python"
    return [str(script)]


@pytest.mark.parametrize("command", [pydfn_command, lambda: [sys.executable, "-m", "pydfn"]])
def test_the_command_runs_in_a_process_with_no_traceback(command, tmp_path):
    ok = subprocess.run([*command(), "info"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("pydfn ")
    bad = subprocess.run([*command(), "train", "--lr", "-1"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("pydfn train: error: argument --lr: must be > 0")


def test_a_closed_pipe_ends_quietly(saved_model, tmp_path):
    np.save(tmp_path / "many.npy", np.zeros((20000, 784), np.float32))
    shell = subprocess.run(f"{sys.executable} -m pydfn predict {saved_model} --input many.npy | head -2",
                           shell=True, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert shell.stdout.splitlines() == ["index\tclass\tname\tprobability", shell.stdout.splitlines()[1]]
    assert shell.stderr == ""


REAL = pytest.mark.skipif(not (datasets.SYSTEM_DIR.is_dir() or os.environ.get("PYDFN_DATA")),
                          reason="needs the real Fashion-MNIST: apt-get install dataset-fashion-mnist")


@REAL
@pytest.mark.slow
def test_ctrl_c_during_train_exits_130_without_a_traceback_and_keeps_the_completed_epochs(tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "pydfn", "train", "--epochs", "100"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:  # wait until training has begun
            if line.startswith("Epoch 1/100"):
                break
        time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130 and "Traceback" not in err
    saved = re.fullmatch(r"pydfn: interrupted; saved the model after epoch (\d+) \(the last completed\) "
                         r"to model.npz", err.strip())
    assert saved and len(load(tmp_path / "model.npz").history) == int(saved[1]) >= 1
    assert re.search(r"Training stopped: interrupted \(Ctrl-C\) (in|at the start of) epoch \d+", out)


def metric_lines(text):
    """The lines that hold metrics (all but the timings)."""
    return [without_times(line) for line in text.splitlines() if not line.startswith("Time per epoch")]


@REAL
@pytest.mark.slow
def test_the_tutorial_reaches_its_accuracy_and_repeats_exactly(tmp_path):
    """The acceptance: defaults (20 epochs) give test accuracy >= 0.885, the same twice."""
    runs = [subprocess.run([sys.executable, "-m", "pydfn", "train", "--out", f"run{i}.npz"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600) for i in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    first, second = (r.stdout.replace(f"run{i}.npz", "") for i, r in enumerate(runs))
    assert metric_lines(first) == metric_lines(second)
    accuracy = float(re.search(r"Test: loss [\d.]+ - accuracy ([\d.]+)", first).group(1))
    assert accuracy >= 0.885
    history = load(tmp_path / "run0.npz").history
    assert len(history) == 20 and history.history["val_accuracy"][9] >= 0.87


@REAL
@pytest.mark.slow
def test_early_stopping_on_the_real_data_restores_the_best_epoch(tmp_path, capsys):
    code = cli.main(["train", "--epochs", "60", "--early-stopping", "2", "--lr", "3e-3", "--verbose", "0",
                     "--out", str(tmp_path / "es.npz")])
    assert code == 0
    model = load(tmp_path / "es.npz")
    history = model.history
    best = history.best_epoch() - 1  # an index into the history
    assert len(history) == best + 3 < 60 and history.stop_reason.startswith("early stopping")
    (x, y), _ = datasets.load_fashion_mnist()
    _, x_val, _, y_val = datasets.train_val_split(x, y, 0.1, seed=2)
    assert model.evaluate(datasets.prepare_images(x_val), y_val)[0] == pytest.approx(
        history.history["val_loss"][best], rel=1e-9)


# --- issue 18: the CLI finishes the job ------------------------------------------------------


def test_ctrl_c_in_train_saves_the_last_completed_epoch_and_says_so(fake_data, capsys, monkeypatch):
    real_run = training.OneProcessLoop.run

    def interrupted_in_epoch_3(loop, epoch, shuffle):
        result = real_run(loop, epoch, shuffle)  # epoch 3 trains (the weights move on), then Ctrl-C
        if epoch == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(training.OneProcessLoop, "run", interrupted_in_epoch_3)
    code, out, err = run(capsys, "train", *FAST[2:], "--epochs", "5", "--out", "cut.npz")
    assert code == 130
    assert err == "pydfn: interrupted; saved the model after epoch 2 (the last completed) to cut.npz\n"
    monkeypatch.setattr(training.OneProcessLoop, "run", real_run)
    assert run(capsys, "train", *FAST[2:], "--epochs", "2", "--out", "two.npz")[0] == 0
    cut, two = load("cut.npz"), load("two.npz")
    assert all(np.array_equal(a, b) for a, b in zip(cut.get_weights(), two.get_weights()))
    assert cut.optimizer_step == two.optimizer_step and len(cut.history) == 2


def test_ctrl_c_before_the_first_epoch_ends_saves_nothing(fake_data, capsys, monkeypatch):
    def interrupted(loop, epoch, shuffle):
        raise KeyboardInterrupt

    monkeypatch.setattr(training.OneProcessLoop, "run", interrupted)
    code, _, err = run(capsys, "train", *FAST)
    assert code == 130 and err == "pydfn: interrupted; nothing saved\n" and not Path("model.npz").exists()


def test_verbose_0_is_quiet(fake_data, capsys):
    code, out, err = run(capsys, "train", *FAST[:4], "--verbose", "0")
    assert code == 0 and out == "" and err == "" and Path("model.npz").exists()


def test_a_batch_larger_than_the_training_set_fails_before_the_data_loads(fake_data, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(datasets, "load_fashion_mnist", no_loading)
    monkeypatch.setattr(datasets, "find_fashion_mnist", no_loading)
    code, out, err = run(capsys, "train", "--batch-size", "100000")
    assert code == 2 and out == ""
    assert err == "pydfn train: error: --batch-size (100000) is larger than the number of training samples (54000)\n"


def test_one_thread_is_singular(fake_data, capsys):
    out = run(capsys, "train", *FAST, "--threads", "1")[1]
    assert out.splitlines()[0].endswith(" kernels - 1 thread")


@pytest.fixture
def features_and_labels(saved_model):
    _, (x_test, y_test) = datasets.load_fashion_mnist()
    return x_test[:30].reshape(30, 784) / np.float32(255), y_test[:30]


@pytest.mark.parametrize("header", [True, False])
def test_predict_reads_a_csv_of_features(header, saved_model, features_and_labels, capsys):
    x, _ = features_and_labels
    np.savetxt("x.csv", x, delimiter=",", fmt="%.9g", header=",".join(f"p{i}" for i in range(784)) if header else "",
               comments="")
    code, out, err = run(capsys, "predict", saved_model, "--input", "x.csv", "--output", "ids.npy")
    assert code == 0 and err == "" and out == "Saved 30 class ids to ids.npy\n"
    np.testing.assert_array_equal(np.load("ids.npy"), load(saved_model).predict(x))


@pytest.mark.parametrize("write, message", [
    (lambda: Path("x.csv").write_text("a,b\n1,2\n3,oops\n"), "x.csv: row 3, column 2: 'oops' is not a number"),
    (lambda: Path("x.csv").write_text("1,2\n3\n"), "x.csv: row 2 has 1 cells, row 1 has 2"),
    (lambda: Path("x.csv").write_text("a,b\n"), "x.csv: the file holds no rows of numbers"),
    (lambda: Path("x.csv").write_text("1,2\n3,4\n"), "--input must have shape (n_samples, 784), got (2, 2)"),
    (lambda: Path("x.npy").write_text("1,2\n"), "x.npy: not an .npy file"),
    (lambda: Path("x.txt").write_text("1,2\n"), "x.txt: unknown file type '.txt': use .npy, .npz or .csv"),
    (lambda: np.savez("x.npz", a=np.zeros(3), b=np.zeros(3)), "x.npz: holds ['a', 'b']; expected an array named x"),
])
def test_predict_input_files_that_cannot_be_used_say_why(write, message, saved_model, capsys):
    write()
    name = next(p for p in ("x.csv", "x.npy", "x.txt", "x.npz") if Path(p).exists())
    code, out, err = run(capsys, "predict", saved_model, "--input", name)
    assert code == 2 and out == "" and err.startswith("pydfn predict: error: ") and message in err


def test_predict_one_image_and_an_npz(saved_model, capsys):
    _, (x_test, _) = datasets.load_fashion_mnist()
    np.save("one.npy", x_test[4])  # (28, 28) uint8
    code, out, _ = run(capsys, "predict", saved_model, "--input", "one.npy")
    k = int(load(saved_model).predict(x_test[4]))
    assert code == 0 and out.splitlines()[1].startswith(f"0\t{k}\t{CLASSES[k]}\t") and out.count("\n") == 2
    np.savez("many.npz", x_test=x_test[:7])
    assert run(capsys, "predict", saved_model, "--input", "many.npz")[1].count("\n") == 8


def test_predict_writes_probabilities_as_npy_or_csv(saved_model, features_and_labels, capsys):
    x, _ = features_and_labels
    np.save("x.npy", x)
    proba = load(saved_model).predict_proba(x)
    code, out, _ = run(capsys, "predict", saved_model, "--input", "x.npy", "--probabilities", "--output", "p.npy")
    assert code == 0 and out == "Saved the probabilities of 30 samples (10 classes) to p.npy\n"
    np.testing.assert_array_equal(np.load("p.npy"), proba)
    code, out, _ = run(capsys, "predict", saved_model, "--input", "x.npy", "--probabilities", "--output", "p.csv")
    assert code == 0 and out == "Saved the predictions of 30 samples to p.csv\n"
    lines = Path("p.csv").read_text().splitlines()
    assert lines[0] == "index,class," + ",".join(CLASSES) and len(lines) == 31
    assert lines[5] == ",".join(["4", str(proba[4].argmax()), *(f"{p:.4f}" for p in proba[4])])
    code, out, _ = run(capsys, "predict", saved_model, "--input", "x.npy", "--output", "ids.csv")
    k = int(proba[2].argmax())
    assert Path("ids.csv").read_text().splitlines()[3] == f"2,{k},{CLASSES[k]},{proba[2, k]:.4f}"
    code, _, err = run(capsys, "predict", saved_model, "--input", "x.npy", "--output", "p.json")
    assert code == 2 and "--output p.json: unknown type '.json': use .npy or .csv" in err


@pytest.mark.parametrize("labels_file", ["y.npy", "y.csv", "y.npz"])
def test_evaluate_takes_your_own_data_and_labels(labels_file, saved_model, features_and_labels, capsys):
    x, y = features_and_labels
    np.save("x.npy", x)
    if labels_file == "y.csv":
        np.savetxt("y.csv", y, fmt="%d", header="label", comments="")
    elif labels_file == "y.npz":
        np.savez("y.npz", y=y)
    else:
        np.save("y.npy", y)
    code, out, err = run(capsys, "evaluate", saved_model, "--input", "x.npy", "--labels", labels_file)
    loss, accuracy = load(saved_model).evaluate(x, y)
    assert code == 0 and err == "" and f"x.npy: loss {loss:.4f} - accuracy {accuracy:.4f}" in out.splitlines()


def test_evaluate_own_data_errors(saved_model, features_and_labels, capsys):
    x, y = features_and_labels
    np.save("x.npy", x)
    np.save("y.npy", y[:29])
    np.save("half.npy", y + 0.5)
    for argv, message in [(["--input", "x.npy"], "--input and --labels go together"),
                          (["--input", "x.npy", "--labels", "y.npy"], "--labels y.npy has 29 labels but --input has 30"),
                          (["--input", "x.npy", "--labels", "half.npy"], "class ids must be whole numbers")]:
        code, _, err = run(capsys, "evaluate", saved_model, *argv)
        assert code == 2 and message in err, err


# --- learning-rate schedules (pydfn.schedules) ---------------------------------------------

# 600 rows, 60 held out for validation: 540 training rows, 9 batches of 64 per epoch.
@pytest.mark.parametrize("flags, schedule", [
    (["--schedule", "cosine", "--lr", "0.002", "--warmup", "1"], CosineDecay(0.002, 27, warmup_steps=9)),
    (["--schedule", "cosine"], CosineDecay(1e-3, 27)),
    (["--schedule", "step", "--step-size", "2", "--gamma", "0.5"], StepDecay(1e-3, 18, gamma=0.5)),
    (["--schedule", "step", "--step-size", "1", "--optimizer", "sgd"], StepDecay(0.01, 9, gamma=0.1)),
    (["--schedule", "onecycle", "--lr", "0.01"], OneCycle(0.01, 27)),
])
def test_cli_schedule_flags(fake_data, capsys, flags, schedule):
    code, out, err = run(capsys, "train", *FAST, *flags)
    assert code == 0, err
    assert f"Learning rate per batch: {schedule!r} (9 steps per epoch)" in out
    model = load("model.npz")
    assert model.optimizer_step == 27 and model.optimizer.lr == schedule(26)
    assert model.history.history["lr"] == [schedule(8), schedule(17), schedule(26)]


@pytest.mark.parametrize("flags, message", [
    (["--warmup", "1"], "--warmup applies to --schedule cosine"),
    (["--schedule", "onecycle", "--warmup", "1"], "--warmup applies to --schedule cosine"),
    (["--schedule", "cosine", "--step-size", "1"], "--step-size applies to --schedule step"),
    (["--gamma", "0.5"], "--gamma applies to --schedule step"),
    (["--schedule", "step"], "--schedule step needs --step-size EPOCHS"),
    (["--schedule", "step", "--step-size", "1", "--gamma", "2"], r"--gamma must be in \(0, 1\]"),
    (["--schedule", "cosine", "--warmup", "3"], r"--warmup \(3 epochs\) must be less than --epochs \(3\)"),
    (["--schedule", "cosine", "--reduce-lr", "2"], "--schedule and --reduce-lr both set the learning rate"),
])
def test_cli_refuses_schedule_flags_that_do_not_fit(fake_data, capsys, flags, message):
    code, out, err = run(capsys, "train", *FAST, *flags)
    assert code == 2 and re.search(message, err), err


def test_cli_refuses_an_unknown_schedule(fake_data, capsys):
    with pytest.raises(SystemExit) as info:
        run(capsys, "train", *FAST, "--schedule", "linear")
    assert info.value.code == 2 and "invalid choice: 'linear'" in capsys.readouterr().err


def test_cli_schedule_needs_an_epoch(fake_data, capsys):
    code, _, err = run(capsys, "train", "--epochs", "0", "--schedule", "cosine")
    assert code == 2 and "--schedule needs --epochs >= 1" in err


def test_a_recipe_prints_its_flags_and_trains_as_they_do(fake_data, capsys):
    small = ["--epochs", "2", "--hidden", "16"]  # given after the recipe: they win
    code, out, err = run(capsys, "train", "--recipe", "best", *small, "--out", "recipe.npz")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Recipe best: pydfn train " + " ".join(cli.RECIPES["best"])
    code, expanded, err = run(capsys, "train", *cli.RECIPES["best"], *small, "--out", "flags.npz")
    assert code == 0, err
    assert metric_lines("\n".join(lines[1:]).replace("recipe.npz", "")) == \
        metric_lines(expanded.replace("flags.npz", ""))
    recipe, flags = load("recipe.npz"), load("flags.npz")
    assert recipe.layer_sizes == [784, 16, 10] and len(recipe.history) == 2
    assert all(np.array_equal(a, b) for a, b in zip(recipe.get_weights(), flags.get_weights()))


@pytest.mark.parametrize("given", [["--schedule", "step", "--step-size", "1"], ["--schedule", "onecycle"],
                                   ["--reduce-lr", "1"]])
def test_a_recipe_gives_way_to_another_learning_rate_schedule(fake_data, capsys, given):
    # The recipe's cosine schedule and its --warmup are left out, not refused as if given.
    small = ["--epochs", "2", "--hidden", "16", *given]
    code, out, err = run(capsys, "train", "--recipe", "best", *small, "--out", "recipe.npz")
    assert code == 0, err
    rest = list(cli.RECIPES["best"])
    for flag in ("--schedule", "--warmup"):
        del rest[rest.index(flag):rest.index(flag) + 2]
    assert out.splitlines()[0] == ("Recipe best: pydfn train " + " ".join(rest)
                                   + " (its learning-rate flags that do not fit the ones given are left out)")
    code, _, err = run(capsys, "train", *rest, *small, "--out", "flags.npz")
    assert code == 0, err
    recipe, flags = load("recipe.npz"), load("flags.npz")
    assert all(np.array_equal(a, b) for a, b in zip(recipe.get_weights(), flags.get_weights()))


def test_an_unknown_recipe_is_refused(fake_data, capsys):
    with pytest.raises(SystemExit) as info:
        run(capsys, "train", "--recipe", "fastest")
    assert info.value.code == 2 and "invalid choice: 'fastest'" in capsys.readouterr().err


def test_the_readme_and_the_recipe_benchmark_show_the_recipe_the_cli_runs():
    root = Path(__file__).resolve().parents[1]
    expanded = "Recipe best: pydfn train " + " ".join(cli.RECIPES["best"])
    assert expanded in (root / "README.md").read_text(encoding="utf-8")
    spec = importlib.util.spec_from_file_location("recipe_steps", root / "benchmarks" / "recipe_steps.py")
    steps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(steps)
    assert [flag for _, flags in steps.INGREDIENTS for flag in flags] == list(cli.RECIPES["best"])


def test_a_save_that_fails_after_training_keeps_the_model_in_the_temp_folder(fake_data, capsys, monkeypatch,
                                                                               tmp_path):
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    real_save = pydfn.MLP.save

    def save(self, path):  # as a disk that filled up during training would fail
        if os.path.basename(path) == "m.npz":
            raise OSError(errno.ENOSPC, f"cannot write {path}: No space left on device")
        real_save(self, path)
    monkeypatch.setattr(pydfn.MLP, "save", save)

    code, _, err = run(capsys, "train", *FAST, "--out", "m.npz")
    rescued = list(rescue.glob("pydfn-trained-*.npz"))
    assert code == 2 and len(rescued) == 1 and not os.path.exists("m.npz")
    assert f"cannot write m.npz: No space left on device; the trained model is saved in {rescued[0]} instead" in err
    assert pydfn.load(rescued[0]).layer_sizes == [784, 32, 10]

    rescued[0].unlink()
    monkeypatch.setattr(pydfn.MLP, "save", lambda self, path: save(self, "m.npz"))  # the rescue fails too
    code, _, err = run(capsys, "train", *FAST, "--out", "m.npz")
    assert code == 2 and "cannot write m.npz: No space left on device" in err and "instead" not in err
    assert list(rescue.iterdir()) == []  # no stray file
