"""The user's own data from a file: an ``.npz`` of arrays or a ``.csv`` with a header
(:func:`load_data_file`, for training), or one array of numbers from an ``.npy``, ``.npz`` or
``.csv`` (:func:`read_array`, for prediction and evaluation).

Every problem with a file is a :class:`DataFileError` (a ``ValueError``) whose message is one line
naming the file and, for a CSV, the row (as a spreadsheet counts it: the header is row 1) and column.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._atomic import write_atomically
from ._npz import NPY_MAGIC, load_npy, open_npz
from ._validation import MAX_DIM, printable, regular_file
from .datasets import prepare_images

TASKS = ("classification", "regression")


class DataFileError(ValueError):
    """A data file that cannot be used, with the reason in one line (characters that cannot
    print on one line, such as a file name's undecodable bytes, shown escaped)."""

    def __init__(self, message: str):
        super().__init__(printable(message))


_FLOAT32_RANGE = "beyond float32's range (|x| <= 3.4e38)"


@dataclass
class DataFile:
    """Arrays read from a data file.

    ``y`` holds class indices 0..n_classes-1 (int32) for classification, with ``class_names``
    the original label of each index, or float32 targets of shape (n_samples, 1) for regression
    (``class_names`` None). ``x_test``/``y_test`` are None when the file has no test part.
    """

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str] | None
    feature_names: list[str] | None


def load_data_file(path: str | os.PathLike[str], *, task: str = "classification",
                   label_column: str | None = None) -> DataFile:
    """Read a training (and optionally test) set from ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` with arrays ``x_train`` (n, features) or images (n, h, w), ``y_train`` (n,), and
        optionally ``x_test``, ``y_test``; or ``.csv`` with a header row, one sample a row, numeric
        features, the label in ``label_column``.
    task : {"classification", "regression"}, default "classification"
        Classification takes any label values (numbers or strings) and numbers the classes in
        sorted order; it needs at least two. Regression needs numeric, finite labels.
    label_column : str, optional
        For a CSV: the header of the label column; default the last column.

    Returns
    -------
    DataFile

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` names no file.
    DataFileError
        For any other problem, naming the file (and for a CSV the row and column).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    path = _data_file(path)
    kind = os.path.splitext(path)[1].lower()
    if kind == ".npz":
        if label_column is not None:
            raise DataFileError(f"{path}: a label column applies to CSV files, not .npz")
        return _load_npz(path, task)
    if kind == ".csv":
        return _load_csv(path, task, label_column)
    raise DataFileError(f"{path}: unknown data file type {kind or '(none)'!r}: use .npz or .csv")


def _data_file(path: Any) -> str:
    """``path`` as a str, once it names a regular file (else FileNotFoundError, IsADirectoryError
    or a DataFileError)."""
    try:
        return regular_file(path)
    except ValueError as exc:
        raise DataFileError(str(exc)) from None


def _float32(values: np.ndarray) -> np.ndarray:
    """``values`` as float32; what float32 cannot hold becomes infinity, without NumPy's warning
    (the caller names the value)."""
    with np.errstate(over="ignore"):
        return values.astype(np.float32)


def _not_finite(value: Any, what: str) -> str:
    """Why ``value`` (a number whose float32 is not finite) is refused."""
    return f"{what} must be finite" if not np.isfinite(value) else _FLOAT32_RANGE


def _labels(raw: np.ndarray, task: str, where: str) -> tuple[np.ndarray, list[str] | None]:
    """Class indices and names (classification), or float targets (n, 1) (regression)."""
    if task == "regression":
        try:
            values = _float32(raw)
        except ValueError:
            raise DataFileError(f"{where}: regression needs numeric labels") from None
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            value = raw[bad[0]]
            raise DataFileError(f"{where}: label of sample {bad[0]} is {value}: "
                                f"{_not_finite(float(value), 'labels')}")
        return values.reshape(-1, 1), None
    if raw.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(raw))
        if bad.size:
            raise DataFileError(f"{where}: label of sample {bad[0]} is {raw[bad[0]]}: labels must be finite")
        if np.any(raw != np.round(raw)):
            raise DataFileError(f"{where}: classification labels must be whole numbers or names; "
                                f"use --loss mse or mae for numeric targets")
    classes, y = np.unique(raw, return_inverse=True)
    y = np.asarray(y, dtype=np.int32)
    names = [f"{c:g}" if raw.dtype.kind == "f" else str(c) for c in classes]
    if len(classes) < 2:
        raise DataFileError(f"{where}: only one class ({names[0]!r}): classification needs at least two")
    return y, names


def _check_features(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3 and x.dtype == np.uint8 and x.shape[1] * x.shape[2]:  # images: scaled and flattened, as fit does
        return prepare_images(x)
    if x.ndim != 2 or x.shape[1] == 0:
        raise DataFileError(f"{where}: features must have shape (n_samples, n_features >= 1) or be uint8 images "
                            f"(n, height, width), got shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise DataFileError(f"{where}: features must be numbers, got dtype {x.dtype}")
    features = _float32(x)
    bad = np.argwhere(~np.isfinite(features))
    if bad.size:
        row, col = bad[0]
        raise DataFileError(f"{where}: sample {row}, feature {col} is {x[row, col]}: "
                            f"{_not_finite(x[row, col], 'features')}")
    return features


def _load_npz(path: str, task: str) -> DataFile:
    try:
        with open_npz(path) as archive:
            missing = [k for k in ("x_train", "y_train") if k not in archive.files]
            if missing:
                raise DataFileError(f"{path}: missing {' and '.join(missing)} (it holds {sorted(archive.files)}); "
                                    f"an .npz needs x_train, y_train and optionally x_test, y_test")
            if ("x_test" in archive.files) != ("y_test" in archive.files):
                raise DataFileError(f"{path}: x_test and y_test go together; it has only one of them")
            arrays: dict[str, np.ndarray] = {k: archive[k] for k in ("x_train", "y_train", "x_test", "y_test")
                                             if k in archive.files}
    except DataFileError:
        raise
    except ValueError as exc:
        raise DataFileError(f"{path}: not a readable .npz file ({exc})") from None
    parts = [("x_train", "y_train")] + ([("x_test", "y_test")] if "x_test" in arrays else [])
    x_parts, y_raw = [], []
    for xk, yk in parts:
        x = _check_features(arrays[xk], f"{path}: {xk}")
        y = arrays[yk]
        if y.ndim != 1 or len(y) != len(x):
            raise DataFileError(f"{path}: {yk} must have shape ({len(x)},) to match {xk}, got {y.shape}")
        if y.dtype.kind not in "fiuUb":
            raise DataFileError(f"{path}: {yk} must hold numbers or strings, got dtype {y.dtype}")
        x_parts.append(x)
        y_raw.append(y)
    if len(x_parts) == 2 and x_parts[0].shape[1] != x_parts[1].shape[1]:
        raise DataFileError(f"{path}: x_train has {x_parts[0].shape[1]} features, x_test {x_parts[1].shape[1]}")
    if len(x_parts[0]) == 0:
        raise DataFileError(f"{path}: x_train holds no samples")
    # Classes are numbered over train and test together, so a class seen only in the test part
    # still has an index (the network then never predicts it, and the test metrics say so).
    y_all, names = _labels(np.concatenate(y_raw), task, f"{path}: y_train")
    y_train, y_test = y_all[:len(x_parts[0])], (y_all[len(x_parts[0]):] if len(parts) == 2 else None)
    if names is not None and len(np.unique(y_train)) < 2:
        raise DataFileError(f"{path}: y_train has only one class: classification needs at least two")
    return DataFile(x_parts[0], y_train, x_parts[1] if len(parts) == 2 else None, y_test, names, None)


_ENCODING = "utf-8-sig"  # UTF-8, without the byte-order mark spreadsheets put first


def _csv_rows(path: str) -> list[list[str]]:
    try:
        with open(path, newline="", encoding=_ENCODING) as f:
            return list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataFileError(f"{path}: not a valid CSV file ({exc})") from None


def _load_csv(path: str, task: str, label_column: str | None) -> DataFile:
    rows = _csv_rows(path)
    if not rows:
        raise DataFileError(f"{path}: the file is empty; a CSV needs a header row and one row per sample")
    header = [h.strip() for h in rows[0]]
    if len(header) < 2:
        raise DataFileError(f"{path}: the header names {len(header)} column; a CSV needs at least one feature "
                            "column and a label column")
    if label_column is None:
        label_at = len(header) - 1
    elif header.count(label_column) == 1:
        label_at = header.index(label_column)
    elif label_column in header:
        columns = [str(c + 1) for c, h in enumerate(header) if h == label_column]
        raise DataFileError(f"{path}: columns {' and '.join(columns)} are both named {label_column!r}: "
                            "rename one, so the label column is clear")
    else:
        raise DataFileError(f"{path}: no label column {label_column!r}; the header has {header}")
    body = [(i + 2, row) for i, row in enumerate(rows[1:]) if any(cell.strip() for cell in row)]
    if not body:
        raise DataFileError(f"{path}: the file has a header but no samples")
    features = [c for c in range(len(header)) if c != label_at]
    table = _all_numbers(path, len(header))
    if table is not None and len(table) == len(body):  # the common case, parsed in C
        y, names = _labels(table[:, label_at].astype(np.float64), task, f"{path}: column {header[label_at]!r}")
        return DataFile(np.ascontiguousarray(table[:, features]), y, None, None, names,
                        [header[c] for c in features])
    # Else read cell by cell, to name the row and column of the first problem (or to read names).
    x = np.empty((len(body), len(features)), np.float32)
    labels: list[str] = []
    for n, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise DataFileError(f"{path}: row {line} has {len(row)} cells, the header {len(header)}")
        for j, c in enumerate(features):
            x[n, j] = _cell(row[c], f"{path}: row {line}, column {header[c]!r}", "features")
        label = row[label_at].strip()
        if not label:
            raise DataFileError(f"{path}: row {line}, column {header[label_at]!r}: the label is empty")
        labels.append(label)
    lines = [line for line, _ in body]
    where = f"{path}: column {header[label_at]!r}"
    numbers = _numbers(labels, path, header[label_at], lines, required=task == "regression")
    # numeric labels sort as numbers (2 before 10), names as text
    y, names = _labels(numbers if numbers is not None else np.array(labels), task, where)
    return DataFile(x, y, None, None, names, [header[c] for c in features])


def _cell(text: str, where: str, what: str) -> float:
    """One CSV cell as a number float32 holds finite; else a DataFileError naming ``where``."""
    value = _number(text)
    if value is None:
        raise DataFileError(f"{where}: {text!r} is not a number")
    if not np.isfinite(_float32(np.array(value))):
        reason = f"({what} must be finite)" if not np.isfinite(value) else f"is {_FLOAT32_RANGE}"
        raise DataFileError(f"{where}: {text.strip()} {reason}")
    return value


def _all_numbers(path: str, n_columns: int, skiprows: int = 1) -> np.ndarray | None:
    """Every cell below the header as float32, if every one is a finite number; else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "input contained no data"
            table = np.loadtxt(path, delimiter=",", skiprows=skiprows, dtype=np.float32, ndmin=2,
                               encoding=_ENCODING)
    except ValueError:
        return None
    if table.shape[1] != n_columns or not np.isfinite(table).all():
        return None
    return table


def _numbers(labels: list[str], path: str, column: str, lines: list[int], required: bool) -> np.ndarray | None:
    """The labels as finite numbers; None if none is a number (class names) and ``required`` is False.

    A column that mixes numbers and names is refused: "1" and "1.0" would be one class among
    numbers and two among names, and a stray name is more often a typo than a class.
    """
    parsed = [_number(v) for v in labels]
    names = [i for i, v in enumerate(parsed) if v is None]
    if names and required:
        i = names[0]
        raise DataFileError(f"{path}: row {lines[i]}, column {column!r}: {labels[i]!r} is not a number "
                            "(regression needs numeric labels)")
    if len(names) == len(labels):
        return None
    if names:
        i, j = names[0], next(k for k, v in enumerate(parsed) if v is not None)
        raise DataFileError(f"{path}: column {column!r} mixes numbers (row {lines[j]}: {labels[j]!r}) and names "
                            f"(row {lines[i]}: {labels[i]!r}): give every class as a number, or every one as a name")
    values = np.array(parsed, np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = bad[0]
        raise DataFileError(f"{path}: row {lines[i]}, column {column!r}: {labels[i]} (labels must be finite)")
    return values


def describe(data: DataFile) -> str:
    """One line on what was read, for the CLI's header."""
    test = f", {len(data.x_test)} test" if data.x_test is not None else ", no test part"
    what = f"{len(data.class_names)} classes" if data.class_names is not None else "regression targets"
    return f"{len(data.x)} samples of {data.x.shape[1]} features{test}; {what}"


ARRAY_FILES = (".npy", ".npz", ".csv")


def read_array(path: str | os.PathLike[str], *, keys: tuple[str, ...] = ("x", "x_test")) -> np.ndarray:
    """One array of numbers from ``path``, as the user saved it (no scaling, no reshaping).

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``: its array. ``.npz``: the first of ``keys`` it holds, else its only array.
        ``.csv``: one sample a row, every cell a number (read as float32); a first row that is
        not all numbers is a header and skipped.
    keys : tuple of str
        The names an ``.npz`` member may have.

    Returns
    -------
    ndarray
        Of at least one sample (a first axis of length >= 1).

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` names no file.
    DataFileError
        For any other problem, naming the file (and for a CSV the row and column).
    """
    path = _data_file(path)
    kind = os.path.splitext(path)[1].lower()
    if kind == ".csv":
        return _csv_numbers(path)
    if kind not in ARRAY_FILES:
        raise DataFileError(f"{path}: unknown file type {kind or '(none)'!r}: use .npy, .npz or .csv")
    with open(path, "rb") as f:
        start = f.read(len(NPY_MAGIC))
    if kind == ".npy" and start != NPY_MAGIC:
        raise DataFileError(f"{path}: not an .npy file (it does not start with NumPy's header); "
                            "write one with numpy.save, or use .csv for text")
    try:  # never unpickling: a data file cannot run code
        if kind == ".npy":
            return _samples(load_npy(path), path)
        with open_npz(path) as archive:
            names = [k for k in keys if k in archive.files] or (archive.files if len(archive.files) == 1 else [])
            if not names:
                raise DataFileError(f"{path}: holds {sorted(archive.files)}; expected an array named "
                                    f"{' or '.join(keys)}, or a single array")
            return _samples(archive[names[0]], f"{path}: {names[0]}")
    except DataFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataFileError(f"{path}: holds Python objects (dtype object), not numbers") from None
        raise DataFileError(f"{path}: not a readable {kind} file ({exc})") from None


def read_labels(path: str | os.PathLike[str], n_classes: int | None = None) -> np.ndarray:
    """Class ids from ``path`` (as :func:`read_array` reads it, an ``.npz``'s ``y`` or ``y_test``, a
    one-column CSV): whole numbers in [0, ``n_classes``) (by default, any the core can index),
    integers or floats; int64 of shape (n_samples,)."""
    y = read_array(path, keys=("y", "y_test"))
    if y.ndim == 2 and y.shape[1] == 1:  # a CSV's one column
        y = y[:, 0]
    if y.ndim != 1:
        raise DataFileError(f"{path}: expected one class id per sample, shape (n,), got shape {y.shape}")
    end = MAX_DIM if n_classes is None else n_classes
    valid = (y >= 0) & (y < end)  # NaN is neither
    if y.dtype.kind == "f":
        valid &= y == np.round(y)
    bad = np.flatnonzero(~valid)
    if bad.size:
        raise DataFileError(f"{path}: class ids must be whole numbers in [0, {end}); sample {bad[0]} has {y[bad[0]]}")
    return y.astype(np.int64)


def write_table(header: list[str], rows: list[list[str]], path: str | None = None) -> None:
    """A table of text cells: tab-separated on stdout, or comma-separated in the file ``path``
    (written atomically); a cell holding the separator, a quote or a line break is quoted, as
    spreadsheets and ``csv.reader`` expect."""
    text = io.StringIO()
    csv.writer(text, delimiter="\t" if path is None else ",", lineterminator="\n").writerows([header, *rows])
    if path is None:
        sys.stdout.write(text.getvalue())
        return
    write_atomically(path, lambda f: f.write(text.getvalue().encode("utf-8")))


def _samples(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` if it holds numbers and at least one sample (along its first axis)."""
    if array.dtype.kind not in "fiu":
        raise DataFileError(f"{where}: must hold numbers, got dtype {array.dtype}")
    if array.ndim == 0 or array.shape[0] == 0:
        raise DataFileError(f"{where}: holds no samples: its shape is {array.shape}")
    return array


def _number(text: str) -> float | None:
    """``text`` as a float, or None when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def _csv_numbers(path: str) -> np.ndarray:
    """A CSV's cells as float32 (n_rows, n_columns), skipping a header; errors name row and column."""
    rows = _csv_rows(path)
    body = [(i + 1, row) for i, row in enumerate(rows) if any(cell.strip() for cell in row)]
    if body and any(_number(cell) is None for cell in body[0][1]):
        body = body[1:]  # a header
    if not body:
        raise DataFileError(f"{path}: the file holds no rows of numbers")
    width = len(body[0][1])
    table = _all_numbers(path, width, skiprows=body[0][0] - 1)
    if table is not None and len(table) == len(body):  # the common case, parsed in C
        return table
    values = np.empty((len(body), width), np.float32)
    for n, (line, row) in enumerate(body):
        if len(row) != width:
            raise DataFileError(f"{path}: row {line} has {len(row)} cells, row {body[0][0]} has {width}")
        for c, cell in enumerate(row):
            values[n, c] = _cell(cell, f"{path}: row {line}, column {c + 1}", "values")
    return values
