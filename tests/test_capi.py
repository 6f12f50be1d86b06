"""The C API (pydfn.h, libpydfn.so), called through ctypes: its results equal Python's bit for
bit, every bad argument or file is a status with a message (never a crash), and one model
serves many threads at once. tests/embed builds a C program against it with CMake."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pydfn

OK, ERR_ARGUMENT, ERR_FILE, ERR_OVERFLOW = 0, 1, 2, 4
CORPUS = Path(__file__).parent / "fuzz_corpus" / "checkpoint"
EMBED = Path(__file__).parent / "embed"

c_float_p, c_int32_p = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32)


@pytest.fixture(scope="module")
def lib():
    path = os.path.join(pydfn.get_library_dir(), "libpydfn.so")
    lib = ctypes.CDLL(path)
    lib.pydfn_version.restype = ctypes.c_char_p
    lib.pydfn_last_error.restype = ctypes.c_char_p
    lib.pydfn_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.pydfn_model_free.argtypes = [ctypes.c_void_p]
    for name in ("pydfn_model_input_width", "pydfn_model_output_width"):
        getattr(lib, name).argtypes, getattr(lib, name).restype = [ctypes.c_void_p], ctypes.c_size_t
    for name in ("pydfn_model_is_classifier", "pydfn_model_precision"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.pydfn_model_set_max_threads.argtypes = [ctypes.c_void_p, ctypes.c_int]
    for name, out in (("pydfn_predict_proba", c_float_p), ("pydfn_predict_values", c_float_p),
                      ("pydfn_predict", c_int32_p)):
        getattr(lib, name).argtypes = [ctypes.c_void_p, c_float_p, ctypes.c_size_t, ctypes.c_size_t, out]
    return lib


class Model:
    """A model loaded through the C API, freed when the test ends."""

    def __init__(self, lib, path):
        self.lib, self.handle = lib, ctypes.c_void_p()
        status = lib.pydfn_model_load(str(path).encode(), ctypes.byref(self.handle))
        assert status == OK, lib.pydfn_last_error()

    def call(self, name, x, rows=None, stride=None, out=None):
        """(status, output) of pydfn_<name> on x (rows, stride: x's, unless given)."""
        x = np.ascontiguousarray(x, np.float32)
        rows = x.shape[0] if rows is None else rows
        stride = x.shape[1] if stride is None else stride
        width = self.lib.pydfn_model_output_width(self.handle)
        if out is None:
            out = np.zeros(rows, np.int32) if name == "predict" else np.zeros((rows, width), np.float32)
        ptr = out.ctypes.data_as(c_int32_p if out.dtype == np.int32 else c_float_p)
        status = getattr(self.lib, f"pydfn_{name}")(self.handle, x.ctypes.data_as(c_float_p), rows, stride, ptr)
        return status, out

    def free(self):
        self.lib.pydfn_model_free(self.handle)


def trained(tmp_path, loss="softmax_xent", precision="fp32", sizes=(20, 16, 4)):
    rng = np.random.default_rng(0)
    x = rng.random((300, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], 300) if loss == "softmax_xent" else rng.random((300, sizes[-1]), dtype=np.float32)
    model = pydfn.MLP(list(sizes), loss=loss, precision=precision, seed=1)
    model.fit(x, y, pydfn.Adam(), epochs=2, batch_size=32, verbose=0)
    path = tmp_path / f"{loss}-{precision}.npz"
    model.save(path)
    return model, path, x


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("rows", [1, 7, 300, 2500])  # 2500: more than one batch of 1024 rows
def test_predictions_equal_python_bit_for_bit(lib, tmp_path, precision, rows):
    model, path, _ = trained(tmp_path, precision=precision)
    x = np.random.default_rng(rows).random((rows, 20), dtype=np.float32)
    c = Model(lib, path)
    try:
        assert lib.pydfn_model_precision(c.handle) == (precision == "bf16")
        status, proba = c.call("predict_proba", x)
        assert status == OK and np.array_equal(proba, model.predict_proba(x))
        status, labels = c.call("predict", x)
        assert status == OK and np.array_equal(labels, model.predict(x))
        status, logits = c.call("predict_values", x)
        assert status == OK and np.array_equal(logits, model.predict_logits(x))
    finally:
        c.free()


def test_a_regressor_predicts_values_and_refuses_classes(lib, tmp_path):
    model, path, x = trained(tmp_path, loss="mse", sizes=(20, 8, 3))
    c = Model(lib, path)
    try:
        assert lib.pydfn_model_is_classifier(c.handle) == 0
        assert (lib.pydfn_model_input_width(c.handle), lib.pydfn_model_output_width(c.handle)) == (20, 3)
        status, values = c.call("predict_values", x)
        assert status == OK and np.array_equal(values, model.predict(x))
        for name in ("predict_proba", "predict"):
            assert c.call(name, x)[0] == ERR_ARGUMENT
            assert b"regressor" in lib.pydfn_last_error()
    finally:
        c.free()


def test_strided_rows_give_the_packed_rows_results(lib, tmp_path):
    model, path, x = trained(tmp_path)
    wide = np.zeros((len(x), 27), np.float32)
    wide[:, :20] = x
    wide[:, 20:] = np.nan  # never read
    c = Model(lib, path)
    try:
        status, proba = c.call("predict_proba", wide, stride=27)
        assert status == OK and np.array_equal(proba, model.predict_proba(x))
    finally:
        c.free()


def test_bad_arguments_are_statuses_with_messages(lib, tmp_path):
    _, path, x = trained(tmp_path)
    c = Model(lib, path)
    null = ctypes.c_void_p()
    try:
        out = np.zeros((len(x), 4), np.float32)
        cases = {
            "rows must be >= 1": lambda: c.call("predict_proba", x, rows=0)[0],
            "row_stride must be >= the model's input width": lambda: c.call("predict_proba", x, stride=19)[0],
            "model is NULL": lambda: lib.pydfn_predict_proba(None, x.ctypes.data_as(c_float_p), 1, 20,
                                                            out.ctypes.data_as(c_float_p)),
            "x is NULL": lambda: lib.pydfn_predict_proba(c.handle, None, 1, 20, out.ctypes.data_as(c_float_p)),
            "the output array is NULL": lambda: lib.pydfn_predict(c.handle, x.ctypes.data_as(c_float_p), 1, 20, None),
            "path is NULL": lambda: lib.pydfn_model_load(None, ctypes.byref(null)),
            "out is NULL": lambda: lib.pydfn_model_load(str(path).encode(), None),
            "threads must be >= 0": lambda: lib.pydfn_model_set_max_threads(c.handle, -1),
        }
        for message, call in cases.items():
            assert call() == ERR_ARGUMENT, message
            assert message in lib.pydfn_last_error().decode(), (message, lib.pydfn_last_error())
        assert lib.pydfn_model_input_width(None) == 0 and lib.pydfn_model_output_width(None) == 0
        lib.pydfn_model_free(None)  # nothing
    finally:
        c.free()


def test_an_overflow_is_a_status_not_garbage(lib, tmp_path):
    _, path, _ = trained(tmp_path)
    c = Model(lib, path)
    try:
        status, _ = c.call("predict", np.full((2, 20), 3e38, np.float32))
        assert status == ERR_OVERFLOW and b"overflowed float32 for finite inputs" in lib.pydfn_last_error()
        x = np.ones((3, 20), np.float32)
        x[2, 5] = np.nan
        status, _ = c.call("predict_proba", x)
        assert status == ERR_ARGUMENT and b"x contains NaN or infinity (row 2, column 5)" in lib.pydfn_last_error()
        x[2, 5] = 1.0
        x[1, 19] = -np.inf  # refused up front: through a ReLU it could come out finite
        status, _ = c.call("predict", x)
        assert status == ERR_ARGUMENT and b"x contains NaN or infinity (row 1, column 19)" in lib.pydfn_last_error()
    finally:
        c.free()


def test_version_and_abi(lib):
    assert lib.pydfn_version().decode() == pydfn.__version__
    header = (Path(pydfn.get_include()) / "pydfn.h").read_text()
    assert f"#define PYDFN_ABI_VERSION {lib.pydfn_abi_version()}\n" in header


def load_status(lib, path):
    handle = ctypes.c_void_p()
    status = lib.pydfn_model_load(str(path).encode(), ctypes.byref(handle))
    if status == OK:
        lib.pydfn_model_free(handle)
    else:
        assert handle.value is None
        assert lib.pydfn_last_error().decode().startswith(str(path)), lib.pydfn_last_error()
    return status


def test_hostile_files_are_refused_with_the_file_named(lib, tmp_path):
    # The checkpoint fuzz corpus, a missing file, a directory, an empty file, and a good
    # file truncated at many lengths and with a byte flipped at many places: each loads
    # (a flip the format cannot see) or is a file error naming the file; never a crash.
    _, path, _ = trained(tmp_path, sizes=(6, 5, 3))
    good = path.read_bytes()
    statuses = {load_status(lib, p) for p in sorted(CORPUS.glob("*.npz"))}
    assert statuses <= {OK, ERR_FILE}
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    for bad in (tmp_path / "missing.npz", tmp_path, empty):
        assert load_status(lib, bad) == ERR_FILE
    hostile = tmp_path / "hostile.npz"
    for n in range(0, len(good), 13):
        hostile.write_bytes(good[:n])
        assert load_status(lib, hostile) == ERR_FILE, n
    read = set()  # the bytes of the members inference reads: a flip there is always caught (CRC-32)
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename in ("format.npy", "version.npy", "layer_sizes.npy", "options.npy", "params.npy"):
                local = good[info.header_offset:info.header_offset + 30]
                start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
                    int.from_bytes(local[28:30], "little")
                read.update(range(start, start + info.file_size))
    for at in range(0, len(good), 7):
        flipped = bytearray(good)
        flipped[at] ^= 0x5A
        hostile.write_bytes(bytes(flipped))
        status = load_status(lib, hostile)
        assert status == ERR_FILE if at in read else status in (OK, ERR_FILE), at


def npy_bytes(header: str, data: bytes = b"", version: int = 1) -> bytes:
    text = header.encode() + b" " * (63 - (len(header) + 10) % 64) + b"\n"
    length = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + length + text + data


@pytest.mark.parametrize("member,header,data,version", [
    ("format", "{'descr': '<U99999999999999999999999999', 'fortran_order': False, 'shape': (), }", b"", 1),
    ("format", "{'descr': '<U1x', 'fortran_order': False, 'shape': (), }", b"", 1),
    ("layer_sizes", "{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999999999999,), }", b"\0" * 16, 1),
    ("layer_sizes", "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", b"\0" * 15, 1),
    ("layer_sizes", "{'descr': '<i8', 'fortran_order': True, 'shape': (2,), }", b"\0" * 16, 1),
    ("layer_sizes", "{'descr': '<i8', 'fortran_order': False, }", b"\0" * 16, 1),
    ("layer_sizes", "{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16, 1),
    ("params", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", b"\0" * 12, 9),
    ("options", "{'descr': '<U4', 'fortran_order': False, 'shape': (), }", "\u00e9abc".encode("utf-32-le"), 1),
])
def test_lying_npy_headers_are_refused(lib, tmp_path, member, header, data, version):
    # Members with valid checksums whose .npy headers lie (sizes, dtypes, shapes, versions).
    _, path, _ = trained(tmp_path, sizes=(6, 5, 3))
    hostile = tmp_path / "lying.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            dst.writestr(info.filename, npy_bytes(header, data, version) if info.filename == member + ".npy" else raw)
    assert load_status(lib, hostile) == ERR_FILE
    assert member in lib.pydfn_last_error().decode()  # the message names what is wrong


def test_compressed_members_are_refused_with_the_reason(lib, tmp_path):
    _, path, _ = trained(tmp_path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    squeezed = tmp_path / "compressed.npz"
    np.savez_compressed(squeezed, **arrays)
    assert pydfn.load(squeezed).layer_sizes == [20, 16, 4]  # Python reads it
    assert load_status(lib, squeezed) == ERR_FILE
    assert b"compressed" in lib.pydfn_last_error()
    # a member name of any bytes is shown escaped: the message stays text
    squeezed.write_bytes(squeezed.read_bytes().replace(b"format.npy", b"f\x80rmat.npy"))
    assert load_status(lib, squeezed) == ERR_FILE
    assert "member f\\x80rmat.npy is compressed" in lib.pydfn_last_error().decode("utf-8")


def test_one_model_serves_eight_threads_with_the_serial_results(lib, tmp_path):
    model, path, _ = trained(tmp_path)
    c = Model(lib, path)
    inputs = [np.random.default_rng(i).random((1 + 37 * i, 20), dtype=np.float32) for i in range(8)]
    expected = [model.predict_proba(x) for x in inputs]
    failures = []

    def serve(i):
        for _ in range(40):
            status, proba = c.call("predict_proba", inputs[i])
            if status != OK or not np.array_equal(proba, expected[i]):
                failures.append((i, status))
                return

    try:
        threads = [threading.Thread(target=serve, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert lib.pydfn_model_set_max_threads(c.handle, 1) == OK
        status, proba = c.call("predict_proba", inputs[3])
        assert status == OK and np.array_equal(proba, expected[3])  # any thread count, the same bits
    finally:
        c.free()


@pytest.fixture(scope="module")
def embed_build(tmp_path_factory):
    """tests/embed built with CMake against the installed package, as a C user builds it."""
    if os.environ.get("PYDFN_SANITIZED"):  # .ci/sanitize: its libasan preload reaches cmake and the programs
        pytest.skip("the C programs are not built with the sanitizers; the ctypes tests run the library under them")
    cmake = shutil.which("cmake")
    if cmake is None or (shutil.which("cc") is None and shutil.which("gcc") is None):
        pytest.skip("needs cmake and a C compiler: pip install cmake; apt-get install gcc")
    build = tmp_path_factory.mktemp("embed")
    subprocess.run([cmake, "-S", str(EMBED), "-B", str(build), f"-Dpydfn_DIR={pydfn.get_cmake_dir()}"],
                   check=True, capture_output=True, text=True)
    subprocess.run([cmake, "--build", str(build)], check=True, capture_output=True, text=True)
    return build


def test_the_example_classifies_as_python(embed_build, tmp_path):
    model, path, x = trained(tmp_path)
    rows = tmp_path / "rows.f32"
    x.astype("<f4").tofile(rows)
    run = [str(embed_build / "classify"), str(path), str(rows)]
    labels = subprocess.run(run, check=True, capture_output=True, text=True).stdout.split()
    assert np.array_equal(np.array(labels, np.int64), model.predict(x))
    lines = subprocess.run(run + ["--proba"], check=True, capture_output=True, text=True).stdout.splitlines()
    proba = np.array([line.split() for line in lines], np.float64).astype(np.float32)
    assert np.array_equal(proba, model.predict_proba(x))
    failed = subprocess.run([str(embed_build / "classify"), str(rows), str(rows)], capture_output=True, text=True)
    assert failed.returncode == 1 and "not a pydfn checkpoint" in failed.stderr


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("threads", [1, 2])
def test_warm_predict_calls_allocate_nothing(embed_build, tmp_path, precision, threads):
    # alloc_check counts every malloc of the process during 900 calls of 1 to 64 rows (packed
    # and strided) after one call of 64 rows of each kind.
    _, path, _ = trained(tmp_path, precision=precision)
    out = subprocess.run([str(embed_build / "alloc_check"), str(path), str(threads)], check=True,
                         capture_output=True, text=True).stdout
    assert out.endswith("allocations in 900 calls: 0\n"), out
