"""pandas and polars DataFrames in fit, evaluate and predict; column names are remembered."""

import numpy as np
import pytest

import layerwise as lw
from layerwise.layers import Dense


def _model():
    model = lw.Sequential([Dense(6, activation="tanh"), Dense(2, activation="softmax")])
    model.compile(optimizer=lw.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_dataframes_in_and_column_checks(library, rng, tmp_path):
    lib = pytest.importorskip(library)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] + x[:, 2] > 0).astype(int)
    frame = lib.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    target = lib.Series("y", y) if library == "polars" else lib.Series(y, name="y")
    model = _model()
    model.fit(frame, target, epochs=30, batch_size=16, verbose=0)
    assert model.feature_names == ["a", "b", "c"]
    assert model.evaluate(frame, target, verbose=0)[1] > 0.9
    np.testing.assert_allclose(model.predict(frame), model.predict(x), rtol=1e-6)
    with pytest.raises(ValueError, match=r"another order.*x\[model.feature_names\]"):
        model.predict(frame.select(["c", "a", "b"]) if library == "polars"
                      else frame[["c", "a", "b"]])
    with pytest.raises(ValueError, match=r"missing: \['b'\]"):
        model.predict(frame.drop("b") if library == "polars" else frame.drop(columns="b"))
    model.save(tmp_path / "m.safetensors")
    assert lw.load_model(tmp_path / "m.safetensors").feature_names == ["a", "b", "c"]
