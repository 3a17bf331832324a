"""Whole networks of 3+ layers mixing layer and activation types, against finite differences."""

import numpy as np
import pytest

from _gradcheck import numerical_gradient, relative_error
from layerwise import Sequential
from layerwise.layers import ELU, Activation, Dense, LeakyReLU, Maxout, PReLU, RReLU, Softmax

HEADS = {
    "categorical_crossentropy": (lambda: [Dense(4, activation="softmax")], "onehot"),
    "sparse_categorical_crossentropy": (lambda: [Dense(4), Softmax()], "labels"),
    "binary_crossentropy": (lambda: [Dense(4, activation="sigmoid")], "binary"),
    "mean_squared_error": (lambda: [Dense(4, activation="tanh")], "real"),
    "mean_absolute_error": (lambda: [Dense(4)], "real"),
    "huber": (lambda: [Dense(4, activation="softplus")], "real"),
}


def _targets(kind, rng, n):
    labels = rng.integers(0, 4, n)
    return {"onehot": np.eye(4)[labels], "labels": labels,
            "binary": rng.integers(0, 2, (n, 4)).astype(float),
            "real": rng.normal(size=(n, 4))}[kind]


def _body():
    return [Dense(6, activation="tanh", input_dim=5, bias_initializer="random_normal"),
            PReLU(alpha_initializer="random_uniform"), Maxout(5, pieces=3),
            Dense(6, activation="gelu"), LeakyReLU(0.1), Dense(5, activation="elu"), ELU(0.5),
            Activation("mish"), Dense(5, activation="selu"), RReLU(), Dense(5, activation="silu")]


@pytest.mark.parametrize("loss", sorted(HEADS))
def test_deep_mixed_network(loss, float64, rng, any_blas):
    head, kind = HEADS[loss]
    model = Sequential(_body() + head())
    model.compile(optimizer="sgd", loss=loss)
    x = rng.normal(size=(8, 5))
    y = _targets(kind, rng, 8)
    x, y, _ = model._prepare(x, y)
    model._begin("test")

    def loss_value():
        # inference mode: RReLU's slope is fixed, so the loss is a deterministic function
        return model.loss(y, model.forward(x, training=False))

    # compute_gradients runs in training mode; set RReLU's bounds equal so both modes agree
    rrelu = next(layer for layer in model.layers if isinstance(layer, RReLU))
    rrelu.lower = rrelu.upper = 0.2
    value, _ = model.compute_gradients(x, y)
    assert value == pytest.approx(loss_value(), rel=1e-10)
    analytic = [g.copy() for g in model.grads]
    assert len(analytic) == 2 * 7 + 1  # 7 kernel/bias pairs + PReLU's alpha
    for param, grad in zip(model.params, analytic):
        assert relative_error(grad, numerical_gradient(loss_value, param)) < 1e-6
