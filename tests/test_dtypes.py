"""A float32 run stays float32: every array a training step touches, and what it leaves."""

import numpy as np
import pytest

import layerwise as lw
from layerwise import optimizers
from layerwise.layers import (
    ELU,
    Activation,
    Dense,
    Dropout,
    LeakyReLU,
    Maxout,
    Normalization,
    PReLU,
    RReLU,
    Softmax,
)
from layerwise.layers.base import Layer


@pytest.fixture
def spy(monkeypatch):
    """Record the dtype of every array entering or leaving any layer's forward/backward."""
    seen = []

    def record(value, where):
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            seen.append((where, value.dtype))

    classes = {cls for layer in (Dense, Maxout, Activation, LeakyReLU, ELU, Softmax, PReLU,
                                 RReLU, Dropout, Normalization) for cls in layer.__mro__
               if issubclass(cls, Layer)}
    for cls in classes:
        for name in ("forward", "backward", "backward_logits"):
            original = cls.__dict__.get(name)
            if original is None:
                continue

            def wrapped(self, arg, *rest, _original=original, _name=name, **kw):
                record(arg, f"{type(self).__name__}.{_name} in")
                out = _original(self, arg, *rest, **kw)
                record(out, f"{type(self).__name__}.{_name} out")
                return out

            monkeypatch.setattr(cls, name, wrapped)
    return seen


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_training_step_stays_float32(optimizer, loss, spy, rng):
    norm = Normalization(input_dim=5)
    norm.adapt(rng.normal(size=(10, 5)))  # statistics computed in float64
    model = lw.Sequential([
        norm, Dense(8, activation="tanh", kernel_regularizer="l2"), PReLU(), Dropout(0.2),
        Maxout(6, pieces=2), LeakyReLU(), ELU(), RReLU(), Activation("gelu"),
        Dense(3, activation="softmax" if loss.startswith("sparse") else None),
    ])
    metric = "accuracy" if loss.startswith("sparse") else "mae"
    model.compile(optimizer=optimizers.get(optimizer), loss=loss, metrics=[metric])
    x = rng.normal(size=(40, 5))  # float64 data in: converted once, at the door
    y = rng.integers(0, 3, 40) if loss.startswith("sparse") else rng.normal(size=(40, 3))
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0)
    model.predict(x)
    assert spy, "the spy saw nothing"
    wrong = sorted({where for where, dtype in spy if dtype != np.float32})
    assert wrong == []
    assert all(p.dtype == np.float32 for p in model.params)
    assert all(g.dtype == np.float32 for g in model.grads)
    slots = model.optimizer.get_state()["slots"]
    assert all(a.dtype == np.float32 for arrays in slots.values() for a in arrays)


def test_parameters_share_one_flat_buffer_after_fit(rng):
    model = lw.Sequential([Dense(4, activation="relu", input_dim=3), PReLU(), Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(rng.normal(size=(20, 3)), rng.normal(size=(20, 2)), verbose=0)
    flat = model.params[0].base
    assert flat is not None and flat.size == model.count_params()
    assert all(p.base is flat for p in model.params)
    assert model.optimizer._flat is not None  # one update over the whole buffer per step
    state = model.optimizer.get_state()  # ...while the state stays per parameter
    assert [a.shape for a in state["slots"]["m"]] == [p.shape for p in model.params]
