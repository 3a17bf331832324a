"""Property-based tests (Hypothesis) of the three places bad input enters: the model-file
loader, the CSV reader and the input checks.

Each runs a fixed budget of examples, derandomized so CI sees the same ones every run; the
properties: a clear error of the documented kinds or a correct result, never anything else.
"""

import csv
import io
import json
import math
import os

import numpy as np
import pytest
import safetensors.numpy

hypothesis = pytest.importorskip("hypothesis", reason="pip install 'layerwise[test]'")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from layerwise.datasets import read_csv  # noqa: E402
from layerwise.input_checks import as_feature_array  # noqa: E402
from layerwise.layers import Dense, Dropout  # noqa: E402
from layerwise.models import Sequential, load_model  # noqa: E402

# CI's fixed budget; LAYERWISE_HYPOTHESIS_EXAMPLES=5000 for a longer, randomized hunt
_EXAMPLES = int(os.environ.get("LAYERWISE_HYPOTHESIS_EXAMPLES", "0"))
BUDGET = settings(max_examples=_EXAMPLES or 200, deadline=None, derandomize=not _EXAMPLES,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])

#: what the loader may raise for a bad file: ValueError, or an OSError for the path itself
LOADER_ERRORS = (ValueError, OSError)


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    model = Sequential([Dense(4, activation="relu", input_dim=3), Dropout(0.1),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(np.ones((6, 3)), np.arange(6) % 3, verbose=0)
    model.class_names = ["a", "b", "c"]
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    model.save(path)
    return path.read_bytes()


def _check_loaded(model):
    assert model.built
    for layer in model.layers:
        for param in layer.params.values():
            assert np.isfinite(param).all()
            assert param.dtype.kind == "f"
    if model.optimizer is not None:
        for arrays in model.optimizer.get_state()["slots"].values():
            for array in arrays:
                assert np.isfinite(array).all()


def _try_load(path):
    try:
        model = load_model(path)
    except LOADER_ERRORS:
        return
    _check_loaded(model)


@BUDGET
@given(data=st.data())
def test_mutated_model_files_load_correctly_or_fail_clearly(tmp_path, model_bytes, data):
    raw = bytearray(model_bytes)
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "header"]))
        if kind == "flip" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[data.draw(st.integers(0, len(raw))):]
        elif kind == "insert":
            i = data.draw(st.integers(0, len(raw)))
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=16))
        elif len(raw) >= 8:  # the header's length field, the likeliest to break a reader
            raw[:8] = data.draw(st.binary(min_size=8, max_size=8))
    path = tmp_path / "m.safetensors"
    path.write_bytes(bytes(raw))
    _try_load(path)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=30)

_META_KEYS = ["model_config", "compile_config", "class_names", "feature_names", "target_name",
              "optimizer_iterations", "rng_state"]


@BUDGET
@given(key=st.sampled_from(_META_KEYS), value=_json)
def test_any_metadata_value_loads_correctly_or_fails_clearly(tmp_path, model_bytes, key,
                                                             value):
    path = tmp_path / "m.safetensors"
    path.write_bytes(model_bytes)
    with safetensors.safe_open(path, framework="numpy") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    meta[key] = json.dumps(value)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))
    _try_load(path)


@BUDGET
@given(layer=st.fixed_dictionaries({
    "class_name": st.sampled_from(["Dense", "Dropout", "Activation", "Maxout", "PReLU",
                                   "Normalization", "Rescaling", "Softmax", "Nope"]),
    "config": st.dictionaries(st.sampled_from(["units", "rate", "activation", "input_dim",
                                               "pieces", "mean", "variance", "scale",
                                               "name", "dtype", "use_bias"]), _json,
                              max_size=6)}))
def test_any_layer_config_loads_correctly_or_fails_clearly(tmp_path, layer):
    meta = {"format": "layerwise", "format_version": "1",
            "model_config": json.dumps({"layers": [layer]})}
    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors.numpy.save({}, metadata=meta))
    _try_load(path)


# ---- the CSV reader ---------------------------------------------------------------------

@BUDGET
@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,-+eE naNifx\"\n\r\t;")),
                    max_size=200))
def test_any_csv_text_reads_or_fails_clearly(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    for target in (None, "last", "x"):
        try:
            x, y, names, _ = read_csv(path, target)
        except ValueError as exc:
            assert str(path) in str(exc) or "Received" in str(exc)
            continue
        assert x.ndim == 2 and np.isfinite(x).all() and x.shape[1] == len(names)
        if y is not None:
            assert len(y) == len(x)


@BUDGET
@given(table=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1,
                                                      max_side=6),
                        elements=st.floats(allow_nan=False, allow_infinity=False)),
       order=st.randoms())
def test_numbers_written_to_csv_read_back_exactly_in_any_column_order(tmp_path, table, order):
    header = [f"c{i}" for i in range(table.shape[1])]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows([[repr(float(v)) for v in row] for row in table])
    path = tmp_path / "d.csv"
    path.write_text(text.getvalue())
    columns = list(header)
    order.shuffle(columns)
    x, y, names, _ = read_csv(path, columns=columns)
    assert names == columns and y is None
    np.testing.assert_array_equal(x, table[:, [header.index(c) for c in columns]])


# ---- the input checks -----------------------------------------------------------------------

_dtypes = st.sampled_from(["float16", "float32", "float64", "int8", "int64", "uint8", "bool"])


@BUDGET
@given(array=_dtypes.flatmap(lambda dtype: hnp.arrays(
    dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    elements=(st.floats(width=np.dtype(dtype).itemsize * 8) if dtype.startswith("float")
              else None))),
       target=st.sampled_from(["float16", "float32", "float64"]))
def test_feature_checks_return_finite_arrays_or_name_the_argument(array, target):
    try:
        out = as_feature_array(array, target, "x_val")
    except (ValueError, TypeError) as exc:
        assert "`x_val`" in str(exc)
        return
    assert out.ndim == 2 and out.shape == array.shape and out.dtype == np.dtype(target)
    assert np.isfinite(out).all() and out.flags.c_contiguous
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(out, array.astype(target))
    assert all(math.isfinite(v) for v in out.ravel().tolist())
