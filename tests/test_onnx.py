"""ONNX export: the graph onnxruntime runs gives pydfn's own logits and probabilities."""

import json
import sys

import numpy as np
import pytest

import pydfn
from pydfn import cli, datasets
from pydfn import load

from _training_data import blobs

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SIZES = [20, 32, 16, 4]
RTOL = 1e-5


def trained(activation="relu", loss="softmax_xent", sizes=SIZES, seed=0):
    """A model a few epochs away from its initial weights."""
    x, y = blobs(n=512, n_features=sizes[0], n_classes=4, seed=seed)
    model = pydfn.MLP(sizes, seed=seed, activation=activation, loss=loss)
    if loss != "softmax_xent":
        y = np.eye(sizes[-1], dtype=np.float32)[y % sizes[-1]]
    model.fit(x, y, pydfn.Adam(1e-2), epochs=3, verbose=0)
    return model


def features(n, n_features=SIZES[0], seed=1):
    return blobs(n=n, n_features=n_features, seed=seed)[0]


def run(path, x):
    """What onnxruntime computes for x: (the output's name, its values)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (output,) = session.get_outputs()
    return output.name, session.run(None, {"input": x})[0]


def assert_matches(got, want):
    """Equal to RTOL of the largest magnitude (elementwise relative error is
    meaningless for values that round to near zero); also checks the shapes."""
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * float(np.abs(want).max()))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("rows", [1, 1000])
@pytest.mark.parametrize("probabilities", [False, True])
def test_onnxruntime_gives_pydfns_outputs(tmp_path, activation, rows, probabilities):
    model = trained(activation)
    path = tmp_path / "model.onnx"
    model.to_onnx(path, probabilities=probabilities)
    x = features(rows)
    name, got = run(path, x)
    assert name == ("probabilities" if probabilities else "logits")
    assert_matches(got, model.predict_proba(x) if probabilities else model.predict_logits(x))


def test_graph_is_standard_onnx(tmp_path):
    model = trained("tanh")
    path = tmp_path / "m.onnx"
    model.to_onnx(path, probabilities=True, class_names=["a", "b", "c", "d"])
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [(op.domain, op.version) for op in proto.opset_import] == [("", 13)]
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "Tanh", "Gemm", "Tanh", "Gemm", "Softmax"]
    (inp,) = proto.graph.input
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    batch, width = inp.type.tensor_type.shape.dim
    assert batch.dim_param == "batch" and width.dim_value == SIZES[0]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["pydfn_version"] == pydfn.__version__ and proto.producer_name == "pydfn"
    assert json.loads(meta["class_names"]) == ["a", "b", "c", "d"]
    assert (meta["activation"], meta["loss"], meta["output"]) == ("tanh", "softmax_xent", "probabilities")
    # the weights went in as get_weights() gives them, W of shape (in, out)
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for i, w in enumerate(model.get_weights()):
        assert np.array_equal(stored[f"{'Wb'[i % 2]}{i // 2 + 1}"], w)


def test_no_hidden_layer(tmp_path):
    model = trained(sizes=[20, 4])
    model.to_onnx(tmp_path / "m.onnx")
    x = features(7)
    assert_matches(run(tmp_path / "m.onnx", x)[1], model.predict_logits(x))


def test_model_loaded_from_a_checkpoint(tmp_path):
    model = trained("sigmoid")
    model.save(tmp_path / "m.npz")
    load(tmp_path / "m.npz").to_onnx(tmp_path / "m.onnx", probabilities=True)
    x = features(1000)
    assert_matches(run(tmp_path / "m.onnx", x)[1], model.predict_proba(x))


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_regression_exports_outputs_but_not_probabilities(tmp_path, loss):
    model = trained("tanh", loss=loss, sizes=[20, 16, 3])
    model.to_onnx(tmp_path / "m.onnx")
    x = features(1000)
    name, got = run(tmp_path / "m.onnx", x)
    assert name == "logits"
    assert_matches(got, model.predict_logits(x))
    with pytest.raises(ValueError, match="probabilities=True needs a classifier; this model's loss is"):
        model.to_onnx(tmp_path / "p.onnx", probabilities=True)
    assert not (tmp_path / "p.onnx").exists()


def test_bad_arguments_and_paths_leave_files_alone(tmp_path):
    model = trained()
    with pytest.raises(ValueError, match="class_names has 3 names; the model has 4 outputs"):
        model.to_onnx(tmp_path / "m.onnx", class_names=["a", "b", "c"])
    with pytest.raises(FileNotFoundError, match="the folder .*missing does not exist"):
        model.to_onnx(tmp_path / "missing" / "m.onnx")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        model.to_onnx(tmp_path)
    existing = tmp_path / "keep.onnx"
    existing.write_bytes(b"precious")
    with pytest.raises(ValueError):
        model.to_onnx(existing, class_names=["too", "few"])
    assert existing.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.onnx"]  # no temporary file left


def test_without_the_onnx_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'pydfn\[onnx\]'"):
        trained().to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("probabilities", [False, True])
def test_cli_export(tmp_path, capsys, activation, probabilities):
    model = trained(activation, sizes=[784, 32, 10])
    model.save(tmp_path / "m.npz")
    flags = ["--probabilities"] if probabilities else []
    assert cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx"), *flags]) == 0
    output = "probabilities" if probabilities else "logits"
    assert f"Saved {tmp_path / 'm.onnx'}: input (batch, 784) float32 -> {output} (batch, 10)" in capsys.readouterr().out
    for rows in (1, 1000):
        x = features(rows, 784)
        assert_matches(run(tmp_path / "m.onnx", x)[1], model.predict_proba(x) if probabilities
                       else model.predict_logits(x))
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["class_names"]) == list(datasets.FASHION_MNIST_CLASSES)


def test_cli_export_errors(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "none.npz"), str(tmp_path / "m.onnx")]) == cli.EXIT_USAGE
    assert "pydfn export: error:" in capsys.readouterr().err
    trained(sizes=[20, 8, 3], loss="mse").save(tmp_path / "r.npz")
    assert cli.main(["export", str(tmp_path / "r.npz"), str(tmp_path / "m.onnx"), "--probabilities"]) == 2
    assert "pydfn export: error: probabilities=True needs a classifier" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "r.npz"), str(tmp_path / "no" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 5 epochs are enough here
def test_sklearn_estimators_export(tmp_path):
    sklearn_mlp = pytest.importorskip("pydfn.sklearn")
    x, y = blobs(n=300, n_features=20, n_classes=3, seed=4)
    labels = np.array(["cat", "dog", "eel"])[y]
    clf = sklearn_mlp.MLPClassifier((16,), activation="logistic", max_iter=5, random_state=0).fit(x, labels)
    clf.to_onnx(tmp_path / "c.onnx", probabilities=True)
    proto = onnx.load(str(tmp_path / "c.onnx"))
    classes = json.loads({p.key: p.value for p in proto.metadata_props}["class_names"])
    assert classes == ["cat", "dog", "eel"]
    got = run(tmp_path / "c.onnx", x)[1]
    assert_matches(got, clf.predict_proba(x).astype(np.float32))
    assert np.array_equal(np.array(classes)[got.argmax(axis=1)], clf.predict(x))

    reg = sklearn_mlp.MLPRegressor((16,), max_iter=5, random_state=0).fit(x, y.astype(np.float64))
    reg.to_onnx(tmp_path / "r.onnx")
    got = run(tmp_path / "r.onnx", x)[1]
    assert got.shape == (300, 1)
    assert_matches(got[:, 0], reg.predict(x).astype(np.float32))
    with pytest.raises(ValueError, match="needs a classifier"):
        reg.to_onnx(tmp_path / "p.onnx", probabilities=True)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        sklearn_mlp.MLPClassifier().to_onnx(tmp_path / "u.onnx")



def test_a_bf16_model_exports_with_a_word_of_its_rounding(tmp_path):
    # The graph multiplies in float32: it matches a bf16 model to bf16 rounding, not to RTOL, and says so.
    x, y = blobs(n=512, n_features=SIZES[0], n_classes=4, seed=0)
    model = pydfn.MLP(SIZES, seed=0, precision="bf16")
    model.fit(x, y, pydfn.Adam(1e-2), epochs=3, verbose=0)
    with pytest.warns(UserWarning, match="multiplies in bf16"):
        model.to_onnx(tmp_path / "model.onnx", probabilities=True)
    _, got = run(tmp_path / "model.onnx", features(200))
    want = model.predict_proba(features(200))
    assert np.abs(got - want).max() < 5e-2
    assert np.abs(got - want).max() > RTOL  # the difference the warning is about is real
