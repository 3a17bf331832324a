"""Every activation: its derivative against finite differences, its formula, its safety."""

import math
import warnings

import numpy as np
import pytest

from _gradcheck import numerical_gradient, relative_error
from layerwise import activations

TRAINABLE = [n for n in activations.names() if n != "hardmax"]
KINKS = {"relu": [0.0], "leaky_relu": [0.0], "elu": [0.0], "selu": [0.0],
         "hard_sigmoid": [-3.0, 3.0]}


def _points(name, rng, shape=(6, 5)):
    z = rng.normal(0, 2.5, size=shape)
    for kink in KINKS.get(name, []):  # stay clear of points where f' jumps
        close = np.abs(z - kink) < 1e-3
        z[close] += 0.01
    return z


@pytest.mark.parametrize("name", TRAINABLE)
def test_backward_matches_finite_differences(name, rng):
    act = activations.get(name)
    z = _points(name, rng)
    w = rng.normal(size=z.shape)
    y = act.forward(z)
    analytic = act.backward(z, y, w)
    numeric = numerical_gradient(lambda: float((w * act.forward(z)).sum()), z)
    assert relative_error(analytic, numeric) < 1e-6


@pytest.mark.parametrize("name", [n for n in TRAINABLE if n != "softmax"])
def test_derivative_is_elementwise_slope(name, rng):
    act = activations.get(name)
    z = _points(name, rng, shape=(50,))
    numeric = (act.forward(z + 1e-6) - act.forward(z - 1e-6)) / 2e-6
    assert relative_error(act.derivative(z, act.forward(z)), numeric) < 1e-6


@pytest.mark.parametrize("name", [*TRAINABLE, "hardmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_inputs_are_finite_and_silent(name, dtype):
    act = activations.get(name)
    if isinstance(act, activations.Exponential):
        pytest.skip("e^z exceeds every float beyond z = 88 (float32) or 709 (float64); the "
                    "poisson loss takes the log-rate z instead (test_losses)")
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 50.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = act.forward(z)
        assert y.dtype == z.dtype
        assert np.all(np.isfinite(y))
        if name != "hardmax":
            d = act.backward(z, y, np.ones_like(z))
            assert np.all(np.isfinite(d))


def test_sigmoid_and_softmax_extremes():
    sig = activations.get("sigmoid")
    np.testing.assert_array_equal(sig(np.array([1000.0, -1000.0])), [1.0, 0.0])
    np.testing.assert_array_equal(activations.get("softmax")(np.array([[1000.0, 0.0]])), [[1, 0]])


def test_seed_softmax_example():
    s = activations.get("softmax")(np.array([[2.0, 1.0, 0.0]]))[0]
    np.testing.assert_allclose(s, [0.665, 0.245, 0.090], atol=5e-4)


FORMULAS = {
    "linear": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)),
    "tanh": math.tanh,
    "relu": lambda z: max(0.0, z),
    "leaky_relu": lambda z: z if z > 0 else 0.01 * z,
    "elu": lambda z: z if z > 0 else math.exp(z) - 1,
    "softplus": lambda z: math.log(1 + math.exp(z)),
    "selu": lambda z: 1.0507009873554805 * (z if z > 0 else 1.6732632423543772 * (math.exp(z) - 1)),
    "gelu": lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))),
    "silu": lambda z: z / (1 + math.exp(-z)),
    "hard_sigmoid": lambda z: min(1.0, max(0.0, z / 6 + 0.5)),
    "mish": lambda z: z * math.tanh(math.log(1 + math.exp(z))),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_forward_matches_textbook_formula(name):
    z = np.linspace(-7, 7, 57)
    expected = [FORMULAS[name](v) for v in z]
    np.testing.assert_allclose(activations.get(name)(z), expected, rtol=1e-12, atol=1e-14)


def test_aliases_resolve_to_same_function():
    assert type(activations.get("swish")) is type(activations.get("silu"))
    assert type(activations.get("identity")) is type(activations.get("linear"))


def test_relu_derivative_at_zero_is_zero():
    relu = activations.get("relu")
    assert relu.derivative(np.array([0.0]), np.array([0.0]))[0] == 0.0


def test_hardmax_is_one_hot_and_not_trainable():
    h = activations.get("hardmax")
    np.testing.assert_array_equal(h(np.array([[0.1, 3.0, -1.0]])), [[0, 1, 0]])
    with pytest.raises(ValueError, match="no derivative"):
        h.backward(np.zeros((1, 3)), np.zeros((1, 3)), np.ones((1, 3)))


def test_custom_activation_pair(rng):
    act = activations.get((np.sin, np.cos))
    z = rng.normal(size=(4, 3))
    w = rng.normal(size=z.shape)
    numeric = numerical_gradient(lambda: float((w * act(z)).sum()), z)
    assert relative_error(act.backward(z, act(z), w), numeric) < 1e-6


def test_erf_matches_math_erf():
    x = np.linspace(-6, 6, 2001)
    np.testing.assert_allclose(activations.erf(x), [math.erf(v) for v in x], atol=1e-14)


def test_unknown_activation_suggests_closest():
    with pytest.raises(ValueError, match=r"mean 'sigmoid'\?.*Received: activation='sigmod'"):
        activations.get("sigmod")


def test_callable_without_derivative_is_rejected():
    with pytest.raises(TypeError, match=r"activation=\(function, derivative\)"):
        activations.get(np.tanh)
