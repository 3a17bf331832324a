"""Every layer: dL/dx and each parameter's gradient against finite differences (float64)."""

import re

import numpy as np
import pytest

from _gradcheck import numerical_gradient, relative_error
from layerwise import activations
from layerwise.layers import ELU, Activation, Dense, LeakyReLU, Maxout, PReLU, RReLU, Softmax


def _check_layer(layer, x, rng, training=False):
    if not layer.built:
        layer.build(x.shape[1])
    w = rng.normal(size=(x.shape[0], layer.output_dim))

    def loss():
        return float((w * layer.forward(x, training)).sum())

    layer.forward(x, training)
    dx = layer.backward(w)
    assert dx.shape == x.shape
    assert relative_error(dx, numerical_gradient(loss, x)) < 1e-6
    for key, param in layer.params.items():
        layer.forward(x, training)
        layer.backward(w)
        analytic = layer.grads[key].copy()
        assert relative_error(analytic, numerical_gradient(loss, param)) < 1e-6, key


def _x(rng, n=5, d=4):
    x = rng.normal(size=(n, d))
    x[np.abs(x) < 1e-3] += 0.01
    return x


@pytest.mark.parametrize("activation", [n for n in activations.names() if n != "hardmax"])
def test_dense_with_each_activation(activation, float64, rng, any_blas):
    layer = Dense(3, activation=activation, bias_initializer="random_normal")
    _check_layer(layer, _x(rng), rng)


def test_dense_without_bias(float64, rng, any_blas):
    layer = Dense(3, use_bias=False)
    _check_layer(layer, _x(rng), rng)
    assert list(layer.params) == ["kernel"]


@pytest.mark.parametrize(
    "make", [lambda: Activation("tanh"), lambda: LeakyReLU(0.2), lambda: ELU(0.7),
             lambda: Softmax(), lambda: PReLU(alpha_initializer="random_uniform"),
             lambda: Maxout(3, pieces=4, bias_initializer="random_normal"),
             lambda: RReLU()],
    ids=["Activation", "LeakyReLU", "ELU", "Softmax", "PReLU", "Maxout", "RReLU"])
def test_layer_gradients(make, float64, rng, any_blas):
    _check_layer(make(), _x(rng), rng)


def test_rrelu_training_gradient_uses_the_drawn_slopes(float64, rng):
    layer = RReLU(lower=0.1, upper=0.3, seed=3)
    layer.build(4)
    x = _x(rng, n=200)
    y = layer.forward(x, training=True)
    slopes = y[x < 0] / x[x < 0]
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx[x < 0], slopes)
    np.testing.assert_array_equal(dx[x > 0], 1.0)
    y_eval = layer.forward(x, training=False)
    np.testing.assert_allclose(y_eval[x < 0], 0.2 * x[x < 0])


def test_prelu_starts_at_quarter_and_learns_per_unit(rng):
    layer = PReLU()
    layer.build(6)
    np.testing.assert_array_equal(layer.params["alpha"], 0.25)
    assert layer.params["alpha"].shape == (6,)


def test_maxout_routes_gradient_to_argmax_piece_only(float64, rng):
    layer = Maxout(2, pieces=3)
    layer.build(4)
    x = _x(rng, n=1)
    layer.forward(x)
    z = x @ layer.params["kernel"] + layer.params["bias"]
    layer.backward(np.ones((1, 2)))
    winners = z.reshape(2, 3).argmax(axis=1) + np.array([0, 3])
    expected = np.zeros(6)
    expected[winners] = 1.0
    np.testing.assert_array_equal(layer.grads["bias"], expected)


def test_dense_shapes_and_weight_order(rng):
    layer = Dense(7, input_dim=3)
    layer.build(3)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 7) and bias.shape == (7,)
    assert kernel.dtype == np.float32


@pytest.mark.parametrize("bad", [0, -2, 2.5, "4", True])
def test_dense_rejects_bad_units(bad):
    pattern = rf"`units` must be a positive integer\. Received: units={re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=pattern):
        Dense(bad)
