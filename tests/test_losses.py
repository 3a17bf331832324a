"""Every loss: value, gradient against finite differences, logits stability, targets."""

import warnings

import numpy as np
import pytest

from _gradcheck import numerical_gradient, relative_error
from layerwise import losses


def _case(name, rng, n=7, units=4):
    """(loss, y_true, y_pred) in the domain of the loss, away from its kinks."""
    logits = rng.normal(0, 2, size=(n, units))
    if name in ("categorical_crossentropy", "cce"):
        y = np.eye(units)[rng.integers(0, units, n)]
    elif name in ("sparse_categorical_crossentropy", "scce"):
        y = rng.integers(0, units, n).astype(np.float64)
    elif name in ("binary_crossentropy", "bce"):
        y = rng.integers(0, 2, size=(n, units)).astype(np.float64)
    else:
        y = rng.normal(size=(n, units))
        y[np.abs(logits - y) < 1e-3] += 0.1  # MAE's kink at 0
        diff = np.abs(logits - y)
        y[np.abs(diff - 1.0) < 1e-3] += 0.1  # Huber's kink at |d| = delta
    return y, logits


def _probabilities(name, logits):
    if "binary" in name or name == "bce":
        return 1 / (1 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ALL = losses.names()
CROSS_ENTROPIES = ["binary_crossentropy", "categorical_crossentropy",
                   "sparse_categorical_crossentropy"]


@pytest.mark.parametrize("name", ALL)
def test_gradient_matches_finite_differences(name, rng):
    loss = losses.get(name)
    y, logits = _case(name, rng)
    y_pred = _probabilities(loss.name, logits) if loss.name in CROSS_ENTROPIES else logits
    numeric = numerical_gradient(lambda: loss(y, y_pred), y_pred)
    assert relative_error(loss.gradient(y, y_pred), numeric) < 1e-6


@pytest.mark.parametrize("name", CROSS_ENTROPIES)
def test_from_logits_gradient_is_p_minus_y(name, rng):
    loss = losses.get(name).with_logits()
    y, logits = _case(name, rng)
    numeric = numerical_gradient(lambda: loss(y, logits), logits)
    analytic = loss.gradient(y, logits)
    assert relative_error(analytic, numeric) < 1e-6
    p = _probabilities(name, logits)
    target = np.eye(logits.shape[1])[y.astype(int)] if name.startswith("sparse") else y
    units = logits.shape[1] if name.startswith("binary") else 1
    np.testing.assert_allclose(analytic, (p - target) / (len(y) * units), atol=1e-12)


@pytest.mark.parametrize("name", CROSS_ENTROPIES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_logits_give_finite_loss_and_gradient(name, dtype):
    loss = losses.get(name).with_logits()
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=dtype)
    y = {"binary_crossentropy": np.array([[0, 1, 1], [1, 0, 0]], dtype=dtype),
         "categorical_crossentropy": np.array([[0, 1, 0], [1, 0, 0]], dtype=dtype),
         "sparse_categorical_crossentropy": np.array([1, 0])}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = loss.loss_and_gradient(y, logits)
    assert np.isfinite(value) and value > 1e3  # confidently wrong: a large, finite loss
    assert np.all(np.isfinite(grad))


def test_values_against_formulas(rng):
    y = rng.normal(size=(5, 3))
    p = rng.normal(size=(5, 3))
    assert losses.get("mse")(y, p) == pytest.approx(np.mean((p - y) ** 2))
    assert losses.get("mae")(y, p) == pytest.approx(np.mean(np.abs(p - y)))
    d = np.abs(p - y)
    huber = np.where(d <= 1, 0.5 * d**2, d - 0.5)
    assert losses.get("huber")(y, p) == pytest.approx(huber.mean())
    labels = rng.integers(0, 3, 5)
    q = _probabilities("softmax", p)
    ce = -np.log(q[np.arange(5), labels]).mean()
    assert losses.get("sparse_categorical_crossentropy")(labels, q) == pytest.approx(ce)
    assert losses.get("categorical_crossentropy")(np.eye(3)[labels], q) == pytest.approx(ce)


def test_sample_weight_scales_per_sample_losses(rng):
    y, p = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    w = np.array([1.0, 0.0, 2.0, 0.5])
    per = ((p - y) ** 2).mean(axis=1)
    mse = losses.get("mse")
    assert mse(y, p, w) == pytest.approx((per * w).sum() / 4)
    numeric = numerical_gradient(lambda: mse(y, p, w), p)
    assert relative_error(mse.gradient(y, p, w), numeric) < 1e-6


def test_unknown_loss_lists_names_and_suggests():
    with pytest.raises(ValueError) as info:
        losses.get("categotial_crossentropy")
    message = str(info.value)
    assert "Did you mean 'categorical_crossentropy'?" in message
    assert "sparse_categorical_crossentropy" in message and "mean_squared_error" in message
