"""Each plot draws and saves a PNG (headless)."""

import numpy as np
import pytest

import layerwise as lw
from layerwise.layers import Dense

plot = pytest.importorskip("layerwise.plot")
pytest.importorskip("matplotlib", reason="plots need matplotlib (layerwise[plot])")


def _png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def _trained(rng, callbacks=()):
    x = rng.normal(size=(80, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    model = lw.Sequential([Dense(8, activation="tanh", input_dim=2),
                           Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, validation_split=0.2, verbose=0, callbacks=list(callbacks))
    return model, history, x, y


def test_history_and_decision_boundary(rng, tmp_path):
    model, history, x, y = _trained(rng)
    fig = plot.history(history, path=tmp_path / "h.png")
    assert len(fig.axes) == 2 and _png(tmp_path / "h.png")
    assert [line.get_label() for line in fig.axes[0].lines] == ["training loss",
                                                               "validation loss"]
    plot.decision_boundary(model, x, y, path=tmp_path / "d.png", lines=[(1.0, 0.0)])
    assert _png(tmp_path / "d.png")
    with pytest.raises(ValueError, match=r"needs 2-D points \(n, 2\)"):
        plot.decision_boundary(model, np.ones((3, 3)), [0, 1, 0])


def test_activations_and_their_derivatives(tmp_path):
    fig = plot.activations(path=tmp_path / "a.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert {"sigmoid", "tanh", "relu", "softmax", "mish"} <= set(titles)
    assert _png(tmp_path / "a.png")
    assert len(plot.activations(["relu", "elu"]).axes) == 2


def test_gradient_flow_and_confusion_matrix(rng, tmp_path):
    monitor = lw.callbacks.GradientMonitor(warn=False)
    model, _, x, y = _trained(rng, [monitor])
    plot.gradient_flow(monitor, path=tmp_path / "g.png")
    assert _png(tmp_path / "g.png")
    fig = plot.confusion_matrix(y, model.predict(x).argmax(axis=1), ["a", "b"],
                                path=tmp_path / "c.png")
    assert _png(tmp_path / "c.png")
    assert sum(int(t.get_text()) for t in fig.axes[0].texts) == len(y)
