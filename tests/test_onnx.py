"""ONNX export: one network per layer and activation, run by ONNX Runtime, equal to predict."""

import numpy as np
import pytest

import layerwise as lw
from layerwise import activations
from layerwise.layers import (
    ELU,
    Activation,
    Dense,
    Dropout,
    LeakyReLU,
    Maxout,
    Normalization,
    PReLU,
    Rescaling,
    RReLU,
    Softmax,
)

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (layerwise[onnx])")
ort = pytest.importorskip("onnxruntime", reason="the comparison needs onnxruntime")
from layerwise.export import to_onnx  # noqa: E402


def _run(model, x, tmp_path, dtype="float32"):
    path = tmp_path / "model.onnx"
    proto = to_onnx(model, path)
    onnx.checker.check_model(onnx.load(str(path)))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"  # dynamic batch dimension
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.astype(dtype)})[0]


ACTIVATIONS = [n for n in activations.names() if n not in ("identity", "swish")]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation(activation, rng, tmp_path):
    model = lw.Sequential([Dense(16, activation=activation, input_dim=6,
                                 bias_initializer="random_normal"), Dense(4)])
    x = rng.normal(0, 2, size=(37, 6)).astype(np.float32)
    np.testing.assert_allclose(_run(model, x, tmp_path), model.predict(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: [Dense(8, input_dim=5), PReLU(alpha_initializer="random_uniform")],
    lambda: [Maxout(6, pieces=3, input_dim=5, bias_initializer="random_normal")],
    lambda: [Dense(8, input_dim=5), LeakyReLU(0.2), ELU(0.7), Activation("softplus")],
    lambda: [Dense(8, input_dim=5), RReLU(), Dropout(0.5)],
    lambda: [Normalization(mean=[1, 2, 3, 4, 5], variance=[1, 2, 3, 4, 5], input_dim=5),
             Rescaling(0.5, offset=1.0), Dense(4), Softmax()],
    lambda: [Dense(8, use_bias=False, input_dim=5, activation="gelu"),
             Dense(3, activation="softmax")],
], ids=["PReLU", "Maxout", "activation layers", "RReLU+Dropout", "preprocessing+Softmax",
        "no bias"])
def test_each_layer(make, rng, tmp_path):
    model = lw.Sequential([*make(), Dense(3)])
    x = rng.normal(size=(20, 5)).astype(np.float32)
    np.testing.assert_allclose(_run(model, x, tmp_path), model.predict(x), rtol=1e-5, atol=1e-5)


def test_trained_float64_model_and_batch_sizes(rng, tmp_path, float64):
    model = lw.Sequential([Dense(12, activation="tanh", input_dim=4), Dense(2, "sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = rng.normal(size=(64, 4))
    model.fit(x, (x[:, :2] > 0).astype(float), epochs=3, verbose=0)
    for n in (1, 7, 64):
        np.testing.assert_allclose(_run(model, x[:n], tmp_path, "float64"), model.predict(x[:n]),
                                   rtol=1e-10, atol=1e-12)


def test_export_errors(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        to_onnx(lw.Sequential([Dense(2)]), tmp_path / "m.onnx")
    custom = lw.Sequential([Dense(2, input_dim=2, activation=(np.sin, np.cos))])
    with pytest.raises(ValueError, match="no ONNX equivalent"):
        to_onnx(custom, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ValueError, match="`opset` must be >= 18"):
        to_onnx(lw.Sequential([Dense(2, input_dim=2)]), opset=13)


def test_cli_export(tmp_path, rng):
    from click.testing import CliRunner

    from layerwise.cli import cli

    model = lw.Sequential([Dense(4, activation="relu", input_dim=3), Dense(2, "softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "m.safetensors")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "m.safetensors"),
                                      str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    x = rng.normal(size=(5, 3)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.predict(x), rtol=1e-5,
                               atol=1e-6)
