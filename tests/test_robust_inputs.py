"""Bad input at every public entry point is a clear TypeError/ValueError (or MemoryError)
that says what was expected and what came; unusual but valid arrays are accepted and give
exactly the results of a plain C-contiguous float32 copy. Every case runs in a subprocess
(many per interpreter), so a crash fails its test rather than the run."""

from __future__ import annotations

import re

import pytest

from _robust import run_cases

SETUP = """
import io, os, tempfile, contextlib
import numpy as np
import pydfn
from pydfn import MLP, Adam, load, datasets, cli
from pydfn._validation import check_network_size
rng = np.random.default_rng(0)
x = rng.random((16, 6), dtype=np.float32)
y = np.arange(16) % 3
m = MLP([6, 5, 3], seed=0)
opt = Adam()
tmp = tempfile.mkdtemp()
nan_x = x.copy(); nan_x[3, 2] = np.nan
inf_x = x.copy(); inf_x[0, 0] = np.inf
images = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
model_784 = os.path.join(tmp, "m784.npz")
MLP([784, 10]).save(model_784)

def cli_run(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse's errors
            code = exc.code
    raise SystemExit(f"exit {code}: {err.getvalue().strip()}")

def same_as_plain(xv, yv=None):
    # Whether predict, evaluate, gradients, an epoch and a fit on the arrays xv, yv give
    # bitwise the results of plain C-contiguous float32 / int64 copies of them.
    yv = y if yv is None else yv
    runs = []
    for xa, ya in ((xv, yv), (np.array(np.asarray(xv), np.float32, order="C"), np.array(np.asarray(yv), np.int64))):
        model = MLP([6, 5, 3], seed=1)
        logits = model.predict_logits(xa)
        evaluated = model.evaluate(xa, ya)
        loss, grads = model.loss_and_gradients(xa, ya)
        epoch = model.train_epoch(xa, ya, Adam(), batch_size=4, seed=0)
        fitted = model.fit(xa, ya, Adam(), epochs=1, batch_size=4, verbose=0).history["loss"]
        runs.append([logits, evaluated, loss, *grads, epoch, fitted, *model.get_weights()])
    return all(np.array_equal(a, b) for a, b in zip(*runs))

def memmapped(a):
    path = os.path.join(tmp, f"mm{a.dtype.str}{a.shape}.bin".replace("<", "l").replace(">", "b"))
    mm = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
    mm[:] = a
    mm.flush()
    return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)

def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a

def garbage_file(content, name="f.bin"):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(content)
    return path
"""

# id: (expression, expected exception type, regex its message must match)
BAD = {
    # --- the model --------------------------------------------------------------------
    "MLP sizes None": ("MLP(None)", "TypeError", "not iterable"),
    "MLP sizes str": ("MLP('784,10')", "ValueError", "layer_sizes must list at least an input and an output size"),
    "MLP one size": ("MLP([5])", "ValueError", r"at least an input and an output size, got \[5\]"),
    "MLP zero width": ("MLP([5, 0, 3])", "ValueError", r"layer_sizes\[1\] must be >= 1, got 0"),
    "MLP negative": ("MLP([5, -3, 3])", "ValueError", r"layer_sizes\[1\] must be >= 1, got -3"),
    "MLP float size": ("MLP([5.0, 3])", "TypeError", r"layer_sizes\[0\] must be an integer, got float"),
    "MLP bool size": ("MLP([True, 3])", "TypeError", r"layer_sizes\[0\] must be an integer, got bool"),
    "MLP one class": ("MLP([5, 1])", "ValueError", "the output layer needs at least 2 classes, got 1"),
    "MLP negative seed": ("MLP([5, 3], seed=-1)", "ValueError", "seed must be >= 0, got -1"),
    "MLP huge layers": ("MLP([10**6, 10**6, 10])", "MemoryError", ""),
    "MLP set_weights count": ("m.set_weights([1])", "ValueError", r"expected 4 arrays \[W1, b1, ...\], got 1"),
    "MLP set_weights shape": ("m.set_weights([np.zeros((5, 6)), np.zeros(5), np.zeros((5, 3)), np.zeros(3)])",
                              "ValueError", r"weights\[0\] must have shape \(6, 5\), got \(5, 6\)"),
    "MLP set_weights nan": ("m.set_weights([np.full((6, 5), np.nan), np.zeros(5), np.zeros((5, 3)), np.zeros(3)])",
                            "ValueError", r"weights\[0\] contains NaN"),
    "MLP set_weights object": ("m.set_weights([None] * 4)", "TypeError", r"weights\[0\] must be numeric, got dtype object"),
    # --- features x -------------------------------------------------------------------
    "x int dtype": ("m.predict(np.ones((2, 6), np.int64))", "TypeError",
                    "x must be a floating-point array, got dtype int64 .uint8 images are scaled for you"),
    "x object dtype": ("m.predict(np.array([[object()] * 6]))", "TypeError", "floating-point array, got dtype object"),
    "x strings": ("m.predict(np.array([['a'] * 6]))", "TypeError", "floating-point array, got dtype <U1"),
    "x None": ("m.predict(None)", "TypeError", "floating-point array, got dtype object"),
    "x complex": ("m.predict(x.astype(complex))", "TypeError", "got dtype complex128"),
    "x bool": ("m.predict(x > 0.5)", "TypeError", "got dtype bool"),
    "x ragged": ("m.predict([[0.5] * 6, [0.5] * 5])", "ValueError", "x must be a rectangular array, got list"),
    "x 1-D wrong length": ("m.predict(x[0, :5])", "ValueError", r"x must have shape \(n_samples, 6\), got \(5,\): "
                           "one sample has 6 features"),
    "x 1-D evaluate": ("m.evaluate(x[0], y[:1])", "ValueError", r"got \(6,\): pass one sample as x\[None\]"),
    "x 3-D": ("m.predict(x[None])", "ValueError", r"x must hold images of 6 pixels.*got shape \(1, 16, 6\)"),
    "x wrong width": ("m.predict(x[:, :5])", "ValueError", r"must have shape \(n_samples, 6\), got \(16, 5\)"),
    "x empty": ("m.predict(x[:0])", "ValueError", "x is empty: it must have at least one row"),
    "x nan predict": ("m.predict(nan_x)", "ValueError", r"x contains NaN or infinity \(row 3, column 2\)"),
    "x inf one row": ("m.predict_proba(inf_x[0])", "ValueError", r"x contains NaN or infinity \(row 0, column 0\)"),
    "x inf evaluate": ("m.evaluate(inf_x, y)", "ValueError", "x contains NaN or infinity"),
    "x nan train_step": ("m.train_step(nan_x, y, opt)", "ValueError", "x contains NaN or infinity"),
    "x nan train_epoch": ("m.train_epoch(nan_x, y, opt)", "ValueError", "x contains NaN or infinity"),
    "x nan fit": ("m.fit(nan_x, y, opt, batch_size=4, verbose=0)", "ValueError", "x contains NaN or infinity"),
    "x nan gradients": ("m.loss_and_gradients(nan_x, y)", "ValueError", "x contains NaN or infinity"),
    "x uint8 wrong pixels fit": ("m.fit(images, np.zeros(4, int), opt, verbose=0)", "ValueError",
                                 r"x must hold images of 6 pixels.*got shape \(4, 28, 28\)"),
    # --- labels y ---------------------------------------------------------------------
    "y float": ("m.evaluate(x, y.astype(float))", "TypeError", "y must hold integer class labels, got dtype float64"),
    "y bool": ("m.evaluate(x, y > 0)", "TypeError", "integer class labels, got dtype bool"),
    "y strings": ("m.evaluate(x, y.astype(str))", "TypeError", "integer class labels, got dtype <U"),
    "y object": ("m.train_step(x, y.astype(object), opt)", "TypeError", "integer class labels, got dtype object"),
    "y ragged": ("m.evaluate(x, [[1], [1, 2]])", "ValueError", "y must be a rectangular array"),
    "y 2-D": ("m.evaluate(x, y[:, None])", "ValueError", r"y must be 1-D of shape \(n_samples,\), got shape \(16, 1\)"),
    "y scalar": ("m.evaluate(x, 1)", "ValueError", r"got shape \(\)"),
    "y too short": ("m.evaluate(x, y[:-1])", "ValueError", "y has 15 labels but x has 16 rows"),
    "y too long fit": ("m.fit(x, np.r_[y, 0], opt, verbose=0)", "ValueError", "y has 17 labels but x has 16 rows"),
    "y negative": ("m.train_step(x, np.r_[y[:-1], -1], opt)", "ValueError", r"labels in \[0, 3\), found -1"),
    "y too big": ("m.train_epoch(x, np.r_[y[:-1], 3], opt)", "ValueError", r"labels in \[0, 3\), found 3"),
    "y uint64 huge": ("m.evaluate(x, np.full(16, 2**63, np.uint64))", "ValueError", "found 9223372036854775808"),
    "y int64 wraps int32": ("m.evaluate(x, np.full(16, 2**32, np.int64))", "ValueError", "found 4294967296"),
    # --- training arguments -----------------------------------------------------------
    "fit epochs negative": ("m.fit(x, y, opt, epochs=-1, verbose=0)", "ValueError", "epochs must be >= 0, got -1"),
    "fit epochs float": ("m.fit(x, y, opt, epochs=2.5, verbose=0)", "TypeError", "epochs must be an integer, got float"),
    "fit batch 0": ("m.fit(x, y, opt, batch_size=0, verbose=0)", "ValueError", "batch_size must be >= 1, got 0"),
    "fit batch > data": ("m.fit(x, y, opt, batch_size=17, verbose=0)", "ValueError",
                         r"batch_size \(17\) is larger than the number of training samples \(16\)"),
    "fit batch huge": ("m.fit(x, y, opt, batch_size=2**40, verbose=0)", "ValueError", "is larger than the number"),
    "fit batch str": ("m.fit(x, y, opt, batch_size='64', verbose=0)", "TypeError", "batch_size must be an integer, got str"),
    "fit shuffle str": ("m.fit(x, y, opt, batch_size=4, shuffle='no', verbose=0)", "TypeError", "shuffle must be True or False, got str"),
    "fit seed negative": ("m.fit(x, y, opt, batch_size=4, seed=-2, verbose=0)", "ValueError", "seed must be >= 0, got -2"),
    "fit verbose 3": ("m.fit(x, y, opt, batch_size=4, verbose=3)", "ValueError", "verbose must be 0, 1 or 2, got 3"),
    "fit val split 1": ("m.fit(x, y, opt, validation_split=1.0, verbose=0)", "ValueError",
                        r"validation_split must be in \[0, 1\), got 1.0"),
    "fit val split nan": ("m.fit(x, y, opt, validation_split=float('nan'), verbose=0)", "ValueError",
                          "validation_split must be in .0, 1., got nan"),
    "fit val split str": ("m.fit(x, y, opt, validation_split='0.1', verbose=0)", "TypeError",
                          "validation_split must be a real number, got str"),
    "fit val data single": ("m.fit(x, y, opt, validation_data=(x,), verbose=0)", "TypeError",
                            r"validation_data must be a pair \(x_val, y_val\)"),
    "fit val data both": ("m.fit(x, y, opt, validation_data=(x, y), validation_split=0.5, verbose=0)",
                          "ValueError", "give validation_data or validation_split, not both"),
    "fit val labels": ("m.fit(x, y, opt, validation_data=(x, y + 5), verbose=0)", "ValueError",
                       r"validation_data\[1\] must hold labels in \[0, 3\), found 5"),
    "fit callbacks int": ("m.fit(x, y, opt, callbacks=[5], batch_size=4, verbose=0)", "TypeError",
                          r"callbacks\[0\] must be a pydfn.callbacks.Callback or a callable"),
    "fit optimizer str": ("m.fit(x, y, 'adam', batch_size=4, verbose=0)", "TypeError", "optimizer must be a pydfn optimizer .*got str"),
    "train_step optimizer None": ("m.train_step(x, y, None)", "TypeError", "optimizer must be a pydfn optimizer .*got NoneType"),
    "train_epoch batch > data": ("m.train_epoch(x, y, opt, batch_size=100)", "ValueError",
                                 r"batch_size \(100\) is larger than the number of training samples \(16\)"),
    "train_epoch seed float": ("m.train_epoch(x, y, opt, batch_size=4, seed=1.5)", "TypeError", "seed must be an integer, got float"),
    "predict batch 0": ("m.predict(x, batch_size=0)", "ValueError", "batch_size must be >= 1, got 0"),
    "evaluate batch float": ("m.evaluate(x, y, batch_size=1.0)", "TypeError", "batch_size must be an integer, got float"),
    # --- the optimizer ----------------------------------------------------------------
    "Adam lr negative": ("Adam(lr=-1e-3)", "ValueError", "lr must be a finite number >= 0, got -0.001"),
    "Adam lr nan": ("Adam(lr=float('nan'))", "ValueError", "lr must be a finite number >= 0, got nan"),
    "Adam lr inf": ("Adam(lr=float('inf'))", "ValueError", "lr must be a finite number >= 0, got inf"),
    "Adam lr str": ("Adam(lr='0.1')", "TypeError", "lr must be a real number, got str"),
    "Adam lr None": ("Adam(lr=None)", "TypeError", "lr must be a real number, got NoneType"),
    "Adam beta1 1": ("Adam(beta1=1.0)", "ValueError", r"beta1 must be in \[0, 1\), got 1.0"),
    "Adam beta1 negative": ("Adam(beta1=-0.1)", "ValueError", r"beta1 must be in \[0, 1\), got -0.1"),
    "Adam beta2 nan": ("Adam(beta2=float('nan'))", "ValueError", r"beta2 must be in \[0, 1\), got nan"),
    "Adam beta2 bool": ("Adam(beta2=True)", "TypeError", "beta2 must be a real number, got bool"),
    "Adam eps 0": ("Adam(eps=0)", "ValueError", "eps must be a finite number > 0, got 0"),
    "Adam eps negative": ("Adam(eps=-1e-8)", "ValueError", "eps must be a finite number > 0"),
    "Adam changed later": ("(setattr(opt2 := Adam(), 'lr', -1.0), m.train_step(x, y, opt2))", "ValueError", "lr must be a finite number >= 0"),
    # --- memory: refused before allocating --------------------------------------------
    "check_network_size RAM": ("check_network_size([100000, 100000, 10])", "MemoryError",
                               r"layer_sizes \[100000, 100000, 10\] has 10,001,100,010 parameters: .* need 149.0 GiB, "
                               r"more than this machine's"),
    "check_network_size int32": ("check_network_size([2**31, 10])", "ValueError",
                                 r"layer_sizes\[0\] must be <= 2147483647, got 2147483648"),
    # --- datasets ---------------------------------------------------------------------
    "read_idx None": ("datasets.read_idx(None)", "TypeError", "expected str, bytes or os.PathLike"),
    "read_idx missing": ("datasets.read_idx(os.path.join(tmp, 'nope'))", "FileNotFoundError", "No such file"),
    "read_idx garbage": ("datasets.read_idx(garbage_file(b'hello world'))", "ValueError",
                         "wrong magic number 0x68656C6C"),
    "read_idx bad gzip": ("datasets.read_idx(garbage_file(b'\\x1f\\x8bnot gzip'))", "ValueError", "bad gzip stream"),
    "prepare_images float": ("datasets.prepare_images(x)", "TypeError", "images must be uint8, got dtype float32"),
    "prepare_images 1-D": ("datasets.prepare_images(images[0, 0])", "ValueError", r"ndim >= 2, got \(28,\)"),
    "augment int16": ("datasets.augment(images.astype(np.int16))", "TypeError", "images must be uint8 or float32, got dtype int16"),
    "augment shift negative": ("datasets.augment(images, shift=-1)", "ValueError", "shift must be >= 0, got -1"),
    "augment wrong shape": ("datasets.augment(images.reshape(4, -1)[:, :700])", "ValueError",
                            r"images must have shape \(n, 28, 28\) or \(n, 784\), got \(4, 700\)"),
    "train_val_split fraction": ("datasets.train_val_split(x, y, 1.5)", "ValueError", r"validation_split must be in \(0, 1\), got 1.5"),
    "train_val_split lengths": ("datasets.train_val_split(x, y[:3])", "ValueError", "x and y need the same number of samples"),
    "one_hot classes 0": ("datasets.one_hot(y, 0)", "ValueError", "num_classes must be >= 1, got 0"),
    "one_hot label out of range": ("datasets.one_hot(y, 2)", "ValueError", r"labels in \[0, 2\), found 2"),
    # --- checkpoints (hostile files are fuzzed in test_fuzz_checkpoint.py) -------------
    "load None": ("load(None)", "TypeError", "expected str, bytes or os.PathLike"),
    "load missing": ("load(os.path.join(tmp, 'nope.npz'))", "FileNotFoundError", "No such file"),
    "load a folder": ("load(tmp)", "IsADirectoryError", "Is a directory"),
    "load garbage": ("load(garbage_file(b'not a checkpoint'))", "ValueError", "not a readable pydfn checkpoint"),
    "save None": ("m.save(None)", "TypeError", "expected str, bytes or os.PathLike"),
    "save missing folder": ("m.save(os.path.join(tmp, 'no', 'm.npz'))", "FileNotFoundError",
                            "cannot write .*m.npz: the folder .*no does not exist"),
    # --- threads ----------------------------------------------------------------------
    "set_num_threads 0": ("pydfn.set_num_threads(0)", "ValueError", "threads must be >= 1, got 0"),
    # --- the command line: one line on stderr and an exit code, never a traceback ------
    "cli epochs": ("cli_run('train', '--epochs', '-1')", "SystemExit", "argument --epochs: must be >= 0, got -1"),
    "cli lr": ("cli_run('train', '--lr', 'nan')", "SystemExit", "argument --lr: must be > 0, got nan"),
    "cli hidden": ("cli_run('train', '--hidden', '256,x')", "SystemExit", "expected comma-separated layer sizes"),
    "cli hidden too big": ("cli_run('train', '--hidden', '100000000', '--data', tmp)", "SystemExit",
                           "exit 1: pydfn train: out of memory: --hidden .* parameters"),
    "cli evaluate garbage": ("cli_run('evaluate', garbage_file(b'PK junk', 'm.npz'))", "SystemExit",
                             "exit 2: pydfn evaluate: error: .* is not a readable pydfn checkpoint"),
    "cli predict empty npy": ("cli_run('predict', model_784, '--input', garbage_file(b'', 'e.npy'))", "SystemExit",
                              "exit 2: pydfn predict: error: .*e.npy: not an .npy file"),
}


# Unusual but valid arrays: accepted, with exactly the results of plain copies.
ACCEPTED = {
    "x non-contiguous": "same_as_plain(np.repeat(x, 2, axis=1)[:, ::2])",
    "x every other row": "same_as_plain(np.repeat(x, 2, axis=0)[::2])",
    "x read-only": "same_as_plain(read_only(x))",
    "x Fortran order": "same_as_plain(np.asfortranarray(x))",
    "x big-endian": "same_as_plain(x.astype('>f4'))",
    "x memory-mapped": "same_as_plain(memmapped(x))",
    "x float64": "same_as_plain(x.astype(np.float64))",
    "x float16": "same_as_plain(x.astype(np.float16))",
    "x nested lists": "same_as_plain(x.tolist())",
    "x big-endian Fortran memmap": "same_as_plain(memmapped(np.asfortranarray(x.astype('>f8'))))",
    "y uint8": "same_as_plain(x, y.astype(np.uint8))",
    "y big-endian": "same_as_plain(x, y.astype('>i8'))",
    "y non-contiguous": "same_as_plain(x, np.repeat(y, 2)[::2])",
    "y read-only memmap": "same_as_plain(x, memmapped(y.astype(np.int32)))",
    "y list": "same_as_plain(x, y.tolist())",
}


@pytest.fixture(scope="module")
def accepted_results():
    return run_cases(SETUP, ACCEPTED)


@pytest.mark.parametrize("case", ACCEPTED)
def test_unusual_valid_arrays_are_accepted_and_exact(accepted_results, case):
    record = accepted_results[case]
    assert "crash" not in record, record["crash"]
    assert record.get("value") is True, record


@pytest.fixture(scope="module")
def bad_results():
    return run_cases(SETUP, {case: code for case, (code, _, _) in BAD.items()})


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_a_clear_error(bad_results, case):
    _, error, match = BAD[case]
    record = bad_results[case]
    assert "crash" not in record, record["crash"]
    assert record.get("error") == error, f"expected {error}, got {record}"
    assert re.search(match, record["message"]), record["message"]

