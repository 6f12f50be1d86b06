"""pydfn.datafile: the user's own .csv / .npz data, and a one-line error for every bad file."""

import numpy as np
import pytest

from pydfn.datafile import DataFileError, load_data_file


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_numeric_labels_in_the_last_column(tmp_path):
    data = load_data_file(write(tmp_path, "a,b,label\n1,2,10\n3.5,-4,2\n\n5,6e-3,10\n"))
    np.testing.assert_array_equal(data.x, np.float32([[1, 2], [3.5, -4], [5, 6e-3]]))
    assert data.x.dtype == np.float32 and data.x.flags.c_contiguous
    assert data.class_names == ["2", "10"]  # sorted as numbers
    np.testing.assert_array_equal(data.y, [1, 0, 1])
    assert data.y.dtype == np.int32
    assert data.feature_names == ["a", "b"] and data.x_test is None and data.y_test is None


def test_csv_with_named_labels_in_a_chosen_column_and_quoted_cells(tmp_path):
    path = write(tmp_path, 'species,length,width\nsetosa,"1.5",2\nvirginica,3,4\nsetosa,5,6\n')
    data = load_data_file(path, label_column="species")
    np.testing.assert_array_equal(data.x, np.float32([[1.5, 2], [3, 4], [5, 6]]))
    assert data.class_names == ["setosa", "virginica"]
    np.testing.assert_array_equal(data.y, [0, 1, 0])
    assert data.feature_names == ["length", "width"]


def test_quoted_and_plain_csv_read_the_same(tmp_path):
    plain = load_data_file(write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n", "plain.csv"))
    quoted = load_data_file(write(tmp_path, 'a,b,y\n"1",2,0\n3,4,"1"\n', "quoted.csv"))
    np.testing.assert_array_equal(plain.x, quoted.x)
    np.testing.assert_array_equal(plain.y, quoted.y)
    assert plain.class_names == quoted.class_names == ["0", "1"]


def test_csv_for_regression(tmp_path):
    data = load_data_file(write(tmp_path, "x,t\n1,0.5\n2,-1.25\n"), task="regression")
    np.testing.assert_array_equal(data.y, np.float32([[0.5], [-1.25]]))
    assert data.class_names is None


def test_npz_with_a_test_part_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(6, 3)), rng.normal(size=(2, 3))
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.array(["b", "a", "b", "c", "a", "b"]),
             x_test=xt, y_test=np.array(["c", "a"]))
    data = load_data_file(tmp_path / "d.npz")
    np.testing.assert_array_equal(data.x, x.astype(np.float32))
    np.testing.assert_array_equal(data.x_test, xt.astype(np.float32))
    assert data.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(data.y, [1, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(data.y_test, [2, 0])


def test_npz_of_uint8_images_is_scaled_and_flattened(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "img.npz", x_train=images, y_train=np.array([0, 1, 1, 0]))
    data = load_data_file(tmp_path / "img.npz")
    np.testing.assert_array_equal(data.x, images.reshape(4, 784).astype(np.float32) / 255)


@pytest.mark.parametrize("text, kwargs, message", [
    ("a,b,y\n1,2,0\n3,0\n", {}, r"data.csv: row 3 has 2 cells, the header 3$"),
    ("a,b,y\n1,2,0\n3,x,1\n", {}, r"data.csv: row 3, column 'b': 'x' is not a number$"),
    ("a,b,y\n1,nan,0\n3,4,1\n", {}, r"data.csv: row 2, column 'b': nan \(features must be finite\)$"),
    ("a,b,y\n1,2,0\n3,4,\n", {}, r"data.csv: row 3, column 'y': the label is empty$"),
    ("a,b,y\n1,2,0\n3,4,NaN\n", {}, r"data.csv: row 3, column 'y': NaN \(labels must be finite\)$"),
    ("a,b,y\n1,2,cat\n3,4,cat\n", {}, r"data.csv: column 'y': only one class \('cat'\): classification needs"),
    ("a,b,y\n1,2,0\n3,4,1\n", {"label_column": "label"}, r"data.csv: no label column 'label'; the header has"),
    ("a,b,y\n1,2,0.5\n3,4,1\n", {}, r"classification labels must be whole numbers or names; use --loss"),
    ("a,b,y\n1,2,up\n3,4,1\n", {"task": "regression"},
     r"data.csv: row 2, column 'y': 'up' is not a number \(regression needs numeric labels\)$"),
    ("", {}, r"data.csv: the file is empty"),
    ("a,b,y\n", {}, r"data.csv: the file has a header but no samples"),
    ("y\n1\n", {}, r"data.csv: the header names 1 column"),
])
def test_bad_csv_files_get_a_one_line_error(tmp_path, text, kwargs, message):
    with pytest.raises(DataFileError, match=message) as info:
        load_data_file(write(tmp_path, text), **kwargs)
    assert "\n" not in str(info.value)


def test_bad_npz_files_get_a_one_line_error(tmp_path):
    cases = {
        "keys.npz": ({"x": np.ones((2, 2))}, r"missing x_train and y_train \(it holds \['x'\]\)"),
        "half.npz": ({"x_train": np.ones((2, 2)), "y_train": [0, 1], "x_test": np.ones((1, 2))},
                     "x_test and y_test go together"),
        "len.npz": ({"x_train": np.ones((3, 2)), "y_train": [0, 1]}, r"y_train must have shape \(3,\)"),
        "nan.npz": ({"x_train": np.float32([[1, np.inf]]), "y_train": [0]}, "sample 0, feature 1 is inf"),
        "one.npz": ({"x_train": np.ones((2, 2)), "y_train": [3, 3]}, "only one class"),
        "wide.npz": ({"x_train": np.ones((2, 2)), "y_train": [0, 1], "x_test": np.ones((1, 3)),
                      "y_test": [0]}, "x_train has 2 features, x_test 3"),
        "obj.npz": ({"x_train": np.array([{}, {}], dtype=object), "y_train": [0, 1]},
                    r"its entry 'x_train' holds Python objects .* pydfn never does \(allow_pickle=False\)"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(DataFileError, match=message) as info:
            load_data_file(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="junk.npz: not a readable .npz file"):
        load_data_file(tmp_path / "junk.npz")


def test_other_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        load_data_file(tmp_path / "none.csv")
    with pytest.raises(DataFileError, match=r"unknown data file type '.txt': use .npz or .csv"):
        load_data_file(write(tmp_path, "a,y\n1,0\n", "d.txt"))
    with pytest.raises(ValueError, match="task must be one of"):
        load_data_file(write(tmp_path, "a,y\n1,0\n"), task="ranking")
