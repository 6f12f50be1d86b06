"""Hostile files through every reader (issue 33, item 1): IDX, the data files of ``pydfn train
--data-file`` / ``predict`` / ``evaluate``, checkpoints and pickled model states. Each gives
a clear exception whose one-line message names the file and the problem, never a crash, a
hang, a NumPy traceback or memory the file's real size cannot justify."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile

import numpy as np
import pytest

import pydfn
from pydfn.datafile import DataFileError, load_data_file, read_array, read_labels
from pydfn.idx import read_idx

from _cli import in_tmp, run  # noqa: F401  (in_tmp: an autouse fixture)
from _robust import run_cases


def idx_bytes(dims, data=b""):
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + data


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npy_claiming(shape, dtype="<f4", data=bytes(16)):
    """An .npy whose header claims ``shape`` but that holds ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def write(path, content):
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


def one_line(message):
    assert "\n" not in message and message.isprintable(), message
    message.encode("utf-8")  # printable on any terminal


# --- IDX -------------------------------------------------------------------------------

@pytest.mark.parametrize("ndim", [2, 3])
def test_a_gzipped_idx_header_claiming_more_than_ssize_t_says_truncated(tmp_path, ndim):
    # The claim (2**64 or 2**96 bytes) once went to zlib as a max_length: OverflowError.
    path = write(tmp_path / "huge.gz", gzip.compress(idx_bytes([2**32 - 1] * ndim)))
    with pytest.raises(ValueError, match=rf"^{path}: truncated: the header declares 4294967295x4294967295.* "
                                         r"data bytes, only 0 follow$"):
        read_idx(path)


def test_read_idx_takes_bytes_paths(tmp_path):
    path = write(tmp_path / "ok", idx_bytes([3], b"abc"))
    assert read_idx(os.fsencode(path)).tolist() == [97, 98, 99]


# --- files that are not regular files --------------------------------------------------

READERS = {
    "read_idx": "pydfn.datasets.read_idx({path!r})",
    "load": "pydfn.load({path!r})",
    "load_data_file": "load_data_file({path!r})",
    "read_array": "read_array({path!r})",
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    # A FIFO with no writer: open() blocked forever (the subprocess's timeout fails the test).
    cases = {}
    for reader, call in READERS.items():
        fifo = tmp_path / f"{reader}.csv"
        os.mkfifo(fifo)
        cases[reader] = call.format(path=str(fifo))
    results = run_cases("import pydfn\nfrom pydfn.datafile import load_data_file, read_array", cases, timeout=60)
    for reader, record in results.items():
        assert record.get("error") in ("ValueError", "DataFileError"), (reader, record)
        assert record["message"] == f"{tmp_path / reader}.csv: not a regular file (a FIFO, socket or device): " \
                                    "give a file", record


@pytest.mark.parametrize("reader", [read_idx, pydfn.load, load_data_file, read_array])
def test_a_folder_is_a_folder_not_a_missing_file(tmp_path, reader):
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=f"Is a directory: '{folder}'"):
        reader(folder)


# --- file names: undecodable bytes and line breaks ------------------------------------

NAMES = [os.fsdecode(b"caf\xe9.csv"), "two\nlines.csv"]


@pytest.mark.parametrize("name", NAMES)
def test_a_file_name_that_is_not_utf8_or_has_a_line_break_is_shown_escaped(tmp_path, name):
    shown = str(tmp_path) + "/" + repr(name)[1:-1]
    csv = write(tmp_path / name, "a,y\n1,0\n2,0\n")
    with pytest.raises(DataFileError) as info:
        load_data_file(csv)
    assert str(info.value) == f"{shown}: column 'y': only one class ('0'): classification needs at least two"
    junk = [write(tmp_path / name.replace(".csv", ext), b"junk") for ext in (".npz", ".npy", ".idx")]
    for path, call in zip(junk, (pydfn.load, read_array, read_idx)):
        with pytest.raises(ValueError) as info:
            call(path)
        one_line(str(info.value))
        assert str(info.value).startswith(shown.replace(".csv", path.suffix)), info.value
    for path, call in zip(junk[:2], (load_data_file, read_array)):
        with pytest.raises(DataFileError) as info:
            call(path)
        one_line(str(info.value))


def test_bytes_paths_read_as_their_str(tmp_path):
    csv = write(tmp_path / "d.csv", "a,y\n1,0\n2,1\n")
    assert load_data_file(os.fsencode(csv)).class_names == load_data_file(csv).class_names == ["0", "1"]
    assert np.array_equal(read_array(os.fsencode(csv)), read_array(csv))


# --- CSV ---------------------------------------------------------------------------------

BOM = "\ufeff"


def test_a_csv_with_a_byte_order_mark_reads_as_without_one(tmp_path):
    # Excel's "CSV UTF-8" starts with a BOM: the label column was "\ufefflabel", not found.
    data = load_data_file(write(tmp_path / "bom.csv", BOM + "label,a\n0,1\n1,2\n"), label_column="label")
    assert data.feature_names == ["a"] and data.class_names == ["0", "1"]
    # Without a header, the first row became one (its first cell "\ufeff1" is no number) and was dropped.
    assert read_array(write(tmp_path / "rows.csv", BOM + "1,2\n3,4\n")).tolist() == [[1, 2], [3, 4]]
    assert read_labels(write(tmp_path / "ids.csv", BOM + "0\n1\n1\n")).tolist() == [0, 1, 1]


@pytest.mark.parametrize("text, kwargs, message", [
    ("a,a,y\n1,0,5\n2,1,6\n", {"label_column": "a"}, r"columns 1 and 2 are both named 'a': rename one"),
    ("a,y\n1,1\n2,cat\n3,1.0\n", {}, r"column 'y' mixes numbers \(row 2: '1'\) and names \(row 3: 'cat'\): give "
                                     "every class as a number, or every one as a name"),
    ("a,y\n1e39,0\n2,1\n", {}, r"row 2, column 'a': 1e39 is beyond float32's range \(\|x\| <= 3.4e38\)"),
    ("a,y\n1,-1e39\n2,1\n", {"task": "regression"},
     r"column 'y': label of sample 0 is -1e\+39: beyond float32's range"),
    (",y\n,0\n,1\n", {}, r"row 2, column '': '' is not a number"),
    ("a,y\n" + "1" * 200_000 + ",0\n", {}, r"not a valid CSV file \(field larger than field limit"),
    ("a,y\n1\x00,0\n2,1\n", {}, r"row 2, column 'a': '1\\x00' is not a number"),
    ("\n\n", {}, "the header names 0 column"),
])
def test_more_bad_csv_files_get_a_one_line_error_naming_the_file(tmp_path, text, kwargs, message):
    path = write(tmp_path / "data.csv", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy RuntimeWarning about the cast either
        with pytest.raises(DataFileError, match=f"^{path}: {message}") as info:
            load_data_file(path, **kwargs)
    one_line(str(info.value))


def test_read_array_csv_cells_beyond_float32(tmp_path):
    path = write(tmp_path / "x.csv", "1,2\n3,-4e38\n")
    with pytest.raises(DataFileError, match=rf"^{path}: row 2, column 2: -4e38 is beyond float32's range"):
        read_array(path)


# --- NPY and NPZ -------------------------------------------------------------------------

def npz(path, members, compression=zipfile.ZIP_STORED):
    """A zip of ``members`` (name -> bytes or array), written as given."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data if isinstance(data, bytes) else npy(data))
    return path


@pytest.mark.parametrize("members, message", [
    ({"x_train.npy": np.ones((3, 0)), "y_train.npy": np.arange(3)},
     r"x_train: features must have shape \(n_samples, n_features >= 1\).* got shape \(3, 0\)"),
    ({"x_train.npy": np.zeros((2, 0, 0), np.uint8), "y_train.npy": np.arange(2)},
     r"x_train: features must have shape .*got shape \(2, 0, 0\)"),
    ({"x_train.npy": np.array([[1e300], [1.0]]), "y_train.npy": np.arange(2)},
     r"x_train: sample 0, feature 0 is 1e\+300: beyond float32's range"),
    ({"x_train": b"raw bytes", "y_train.npy": np.arange(2)},
     r"not a readable .npz file \(its entry 'x_train' is not a NumPy array \(.npy\)\)"),
    ({"x_train.npy": np.array([None, 1], object), "y_train.npy": np.arange(2)},
     r"not a readable .npz file \(its entry 'x_train' holds Python objects \(dtype object\).*never does "
     r"\(allow_pickle=False\)\)"),
])
def test_bad_npz_data_files_name_the_file_and_the_entry(tmp_path, members, message):
    path = npz(tmp_path / "d.npz", members)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataFileError, match=f"^{path}: {message}") as info:
            load_data_file(path)
    one_line(str(info.value))


def test_an_npz_entry_with_another_compression_is_refused(tmp_path):
    path = npz(tmp_path / "d.npz", {"x.npy": np.ones((2, 2))}, zipfile.ZIP_BZIP2)
    with pytest.raises(DataFileError, match=rf"^{path}: not a readable .npz file \(its entry 'x' uses zip "
                                            r"compression method 12; NumPy writes stored or deflated entries"):
        read_array(path)


def test_junk_named_npz_is_not_called_a_pickle(tmp_path):
    # np.load tries anything that is not a zip or .npy as a pickle, and said "contains pickled data".
    path = write(tmp_path / "junk.npz", b"hello, world")
    for call in (load_data_file, read_array):
        with pytest.raises(DataFileError, match=rf"^{path}: not a readable .npz file \(it does not start as a "
                                                r"zip archive does\)$"):
            call(path)
    with pytest.raises(ValueError, match="it does not start as a zip archive does"):
        pydfn.load(path)


@pytest.mark.parametrize("array, message", [
    (np.zeros((0, 4), np.float32), r"holds no samples: its shape is \(0, 4\)"),
    (np.float64(3.0), r"holds no samples: its shape is \(\)"),
])
def test_read_array_refuses_an_array_without_samples(tmp_path, array, message):
    path = tmp_path / "x.npy"
    np.save(path, array)
    with pytest.raises(DataFileError, match=f"^{path}: {message}$"):
        read_array(path)


@pytest.mark.parametrize("labels, n_classes, message", [
    (np.array([0, 1e30]), None, r"class ids must be whole numbers in \[0, 2147483647\); sample 1 has 1e\+30"),
    (np.array([0, -1]), None, r"class ids must be whole numbers .*; sample 1 has -1$"),
    (np.array([0, 1, 5]), 3, r"class ids must be whole numbers in \[0, 3\); sample 2 has 5$"),
    (np.array([0.0, np.nan]), 3, r"class ids must be whole numbers .*; sample 1 has nan$"),
    (np.array([0.5, 1.0]), 3, r"class ids must be whole numbers .*sample 0 has 0.5$"),
])
def test_read_labels_names_the_file_and_the_bad_class_id(tmp_path, labels, n_classes, message):
    # 1e30 was cast to int64 (-9223372036854775808, with a RuntimeWarning) and 5 of 3 classes
    # failed later, in evaluate, as "y must hold labels in [0, 3)" without the file's name.
    path = tmp_path / "y.npy"
    np.save(path, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataFileError, match=f"^{path}: {message}"):
            read_labels(path, n_classes)


def test_random_damage_to_data_files_is_always_a_data_file_error(tmp_path):
    # Flipped and cut bytes of .npz (stored and deflated) and .npy files: BadZipFile, zlib.error,
    # tokenize.TokenError, an encrypted-member RuntimeError and an AttributeError (a member
    # that is not .npy) escaped these readers. Seeded: the same 300 files every run.
    arrays = {"x_train": np.random.default_rng(0).random((5, 3)), "y_train": np.array([0, 1, 0, 1, 1]),
              "x_test": np.ones((2, 3)), "y_test": np.array(["a", "b"])}
    originals = []
    for save in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        save(buf, **arrays)
        originals.append((".npz", buf.getvalue()))
    originals.append((".npy", npy(arrays["x_train"])))
    draw = random.Random(0)
    for i in range(300):
        kind, raw = draw.choice(originals)
        damaged = bytearray(raw)
        for _ in range(draw.randint(1, 6)):
            damaged[draw.randrange(len(damaged))] = draw.choice([0, 1, 0x7F, 0x80, 0xFF, draw.randrange(256)])
        if draw.random() < 0.3:
            damaged = damaged[:draw.randrange(len(damaged))]
        path = write(tmp_path / f"f{i}{kind}", bytes(damaged))
        for call in ((load_data_file, read_array) if kind == ".npz" else (read_array,)):
            try:
                call(path)
            except DataFileError as exc:
                assert str(exc).startswith(f"{path}: "), exc
                one_line(str(exc))


# --- memory bounded by the file's real size -------------------------------------------

def lying_zip(path, members, liar):
    """A zip whose directory says member ``liar`` inflates to 4 GiB (it holds a few bytes)."""
    npz(path, members, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    name = liar.encode()
    for magic, size_at, name_len_at, name_at in ((b"PK\x01\x02", 24, 28, 46), (b"PK\x03\x04", 22, 26, 30)):
        i = raw.find(magic)
        while i >= 0:
            n = struct.unpack_from("<H", raw, i + name_len_at)[0]
            if raw[i + name_at:i + name_at + n] == name:
                struct.pack_into("<I", raw, i + size_at, 0xFFFFFFF0)
            i = raw.find(magic, i + 4)
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.skipif(bool(os.environ.get("PYDFN_SANITIZED")), reason="ASan reserves terabytes of address space")
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_an_npz_entry_lying_about_its_size_is_refused_before_allocating(tmp_path):
    # A 370-byte file: its zip directory says x_train inflates to 4 GiB, and x_train's header claims
    # 3 GiB, which the old check (claim <= stated size) let NumPy allocate: MemoryError here, under a
    # limit of 256 MiB more address space. Now the claim is held to what 100 compressed bytes inflate to.
    path = lying_zip(tmp_path / "d.npz", {"x_train.npy": npy_claiming((2**28, 3)),
                                          "y_train.npy": npy_claiming((3,), "<i8", bytes(24))}, "x_train.npy")
    assert path.stat().st_size < 1000
    code = f"""
import json, resource
from pydfn.datafile import load_data_file, read_array
def address_space():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (address_space() + (256 << 20), resource.RLIM_INFINITY))
out = []
for call in (lambda: load_data_file({str(path)!r}), lambda: read_array({str(path)!r}, keys=("x_train",))):
    try:
        call()
        out.append("read")
    except Exception as exc:
        out.append(f"{{type(exc).__name__}}: {{exc}}")
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    for outcome in json.loads(proc.stdout):
        assert outcome.startswith(f"DataFileError: {path}: not a readable .npz file (its entry 'x_train' claims "
                                  "shape (268435456, 3) of float32 (3,221,225,472 bytes) but holds "), outcome
        assert outcome.endswith("bytes: the file is corrupt)"), outcome


# --- checkpoints and pickled states --------------------------------------------------

@pytest.fixture
def state():
    model = pydfn.MLP([4, 3, 2], seed=0)
    model.train_step(np.ones((2, 4), np.float32), np.array([0, 1]), pydfn.Adam())
    return model.__getstate__()


def set_state(arrays):
    """What unpickling a model does with its state."""
    pydfn.MLP.__new__(pydfn.MLP).__setstate__(arrays)


@pytest.mark.parametrize("key", ["version", "options", "params", "optimizer", "optimizer.step", "rng_state",
                                 "history", "layer_sizes", "optimizer.m"])
def test_a_missing_entry_is_named(state, tmp_path, key):
    # It was a bare KeyError: 'options' (pydfn.load: "not a valid pydfn checkpoint: 'options'").
    del state[key]
    with pytest.raises(ValueError, match=rf"^no entry '{key}' \(the entries are \['format', "):
        set_state(state)
    path = tmp_path / "m.npz"
    np.savez(path, **state)
    with pytest.raises(ValueError, match=rf"^{path} is not a valid pydfn checkpoint: no entry '{key}'"):
        pydfn.load(path)


@pytest.mark.parametrize("key, text, message", [
    ("options", "{not json", r"options is not valid JSON \(JSONDecodeError: Expecting property name"),
    ("class_names", "[1", r"class_names is not valid JSON \(JSONDecodeError"),
    ("history", "[" * 100_000, r"history is not valid JSON \(RecursionError"),
    ("optimizer", '{"config": {}}', r"optimizer must be a JSON object with a kind \(str\) and a config \(object\)"),
    ("optimizer", '{"kind": ["adam"], "config": {}}', r"optimizer must be a JSON object with a kind"),
])
def test_a_bad_json_entry_is_named(state, key, text, message):
    state[key] = np.array(text)
    with pytest.raises(ValueError, match=f"^{message}"):
        set_state(state)


@pytest.mark.parametrize("bad", [None, [1, 2], "state"])
def test_a_pickled_state_that_is_not_a_dict_is_a_type_error(bad):
    with pytest.raises(TypeError, match=f"^a model's state must be a dict of named arrays, got {type(bad).__name__}$"):
        set_state(bad)


def test_a_pickled_state_of_plain_python_values_loads(state):
    # Entries that are ints and strs, not 0-d arrays (a hand-written pickle): read as arrays.
    state = {k: (v.item() if v.ndim == 0 else v) for k, v in state.items()}
    model = pydfn.MLP.__new__(pydfn.MLP)
    model.__setstate__(state)
    assert model.layer_sizes == [4, 3, 2] and model.optimizer_step == 1


def test_a_checkpoint_with_an_entry_that_is_not_npy_is_refused(state, tmp_path):
    members = {f"{k}.npy": v for k, v in state.items()}
    members["notes.txt"] = b"hello"
    path = npz(tmp_path / "m.npz", members)
    with pytest.raises(ValueError, match=rf"^{path} is not a readable pydfn checkpoint .*its entry 'notes.txt' "
                                         r"is not a NumPy array \(.npy\)"):
        pydfn.load(path)


# --- the command line: exit 2 and one line naming the file -------------------------------

def test_cli_reader_errors_are_one_line_naming_the_file(capsys):
    pydfn.MLP([2, 3], seed=0).save("m.npz")
    np.save("x.npy", np.zeros((3, 2), np.float32))
    np.save("y.npy", np.array([0, 7, 1]))
    with open("mixed.csv", "w") as f:
        f.write("a,b,y\n1,2,0\n3,4,cat\n")
    with open(b"caf\xe9.csv", "w") as f:  # a Latin-1 name, not UTF-8
        f.write("a,b,y\n1,2,0\n3,4,0\n")
    np.save("empty.npy", np.zeros((0, 2), np.float32))
    for argv, message in [
        (["evaluate", "m.npz", "--input", "x.npy", "--labels", "y.npy"],
         r"y.npy: class ids must be whole numbers in \[0, 3\); sample 1 has 7$"),
        (["predict", "m.npz", "--input", "empty.npy"], r"empty.npy: holds no samples: its shape is \(0, 2\)$"),
        (["train", "--data-file", "mixed.csv", "--epochs", "1", "--hidden", "2", "--batch-size", "1"],
         r"mixed.csv: column 'y' mixes numbers \(row 2: '0'\) and names \(row 3: 'cat'\)"),
        (["train", "--data-file", os.fsdecode(b"caf\xe9.csv"), "--epochs", "1"],
         r"caf\\udce9.csv: column 'y': only one class \('0'\)"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and len(err.splitlines()) == 1, (argv, err)
        assert err.startswith(f"pydfn {argv[0]}: error: "), err
        assert re.search(message, err.strip()), err
