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
    elif name in ("binary_crossentropy", "bce", "binary_focal_crossentropy"):
        y = rng.integers(0, 2, size=(n, units)).astype(np.float64)
    elif name in ("kl_divergence", "kld", "kullback_leibler_divergence"):
        y = _probabilities("softmax", rng.normal(size=(n, units)))
    elif name == "poisson":
        y = rng.poisson(3.0, size=(n, units)).astype(np.float64)
        logits = np.exp(logits / 2)  # rates: the loss of positive predictions
    elif name == "hinge":
        y = rng.choice([-1.0, 1.0], size=(n, units))
        logits[np.abs(1.0 - y * logits) < 1e-3] += 0.1  # the kink at margin 1
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
#: losses of probabilities: checked on probabilities, inside their domain
ON_PROBABILITIES = [*CROSS_ENTROPIES, "binary_focal_crossentropy", "kl_divergence"]


@pytest.mark.parametrize("name", ALL)
def test_gradient_matches_finite_differences(name, rng):
    loss = losses.get(name)
    y, logits = _case(name, rng)
    y_pred = _probabilities(loss.name, logits) if loss.name in ON_PROBABILITIES else logits
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


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_loss_formula_and_gamma_zero_is_cross_entropy(gamma, rng):
    y = rng.integers(0, 2, size=(6, 3)).astype(np.float64)
    p = 1 / (1 + np.exp(-rng.normal(size=(6, 3))))
    focal = losses.BinaryFocalCrossentropy(gamma=gamma, apply_class_balancing=True, alpha=0.3)
    pt = np.where(y > 0.5, p, 1 - p)
    weight = np.where(y > 0.5, 0.3, 0.7)
    expected = (-weight * (1 - pt) ** gamma * np.log(pt)).mean(axis=1).mean()
    assert focal(y, p) == pytest.approx(expected, rel=1e-10)
    numeric = numerical_gradient(lambda: focal(y, p), p)
    assert relative_error(focal.gradient(y, p), numeric) < 1e-6
    if gamma == 0.0:
        plain = losses.BinaryFocalCrossentropy(gamma=0.0)
        assert plain(y, p) == pytest.approx(losses.get("binary_crossentropy")(y, p), rel=1e-6)


def test_kl_divergence_and_log_cosh_against_pytorch(rng):
    torch = pytest.importorskip("torch", reason="PyTorch parity: pip install torch")
    t = _probabilities("softmax", rng.normal(size=(5, 4)))
    p = _probabilities("softmax", rng.normal(size=(5, 4)))
    theirs = torch.nn.functional.kl_div(torch.log(torch.tensor(p)), torch.tensor(t),
                                        reduction="batchmean").item()
    assert losses.get("kl_divergence")(t, p) == pytest.approx(theirs, rel=1e-10)
    d = rng.normal(size=(5, 4)) * 30  # large differences: the stable form matters
    expected = np.log(np.cosh(np.clip(d, -300, 300))).mean()
    assert losses.get("log_cosh")(np.zeros_like(d), d) == pytest.approx(expected, rel=1e-12)


def test_a_keras_style_loss_subclass_needs_its_gradient():
    class Scaled(losses.Loss):
        def call(self, y_true, y_pred):
            return ((y_pred - y_true) ** 2).sum(axis=-1) * 3.0

        def call_gradient(self, y_true, y_pred):
            return 6.0 * (y_pred - y_true)

    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    loss = Scaled(name="scaled")
    assert loss.name == "scaled"
    numeric = numerical_gradient(lambda: loss(y, p), p)
    assert relative_error(loss.gradient(y, p), numeric) < 1e-6

    class NoGradient(losses.Loss):
        def call(self, y_true, y_pred):
            return (y_pred - y_true).sum(axis=-1)

    with pytest.raises(TypeError, match="must also define call_gradient"):
        NoGradient()
    with pytest.raises(TypeError, match=r"is a plain function .* subclass "
                                        r"layerwise\.losses\.Loss"):
        losses.get(lambda y_true, y_pred: 0.0)


def test_poisson_from_log_rates_is_exp_minus_y(rng):
    y, _ = _case("poisson", rng)
    z = rng.normal(size=y.shape)
    loss = losses.get("poisson").with_logits()
    numeric = numerical_gradient(lambda: loss(y, z), z)
    analytic = loss.gradient(y, z)
    assert relative_error(analytic, numeric) < 1e-6
    np.testing.assert_allclose(analytic, (np.exp(z) - y) / y.size, atol=1e-12)
    assert loss(y, z) == pytest.approx(losses.get("poisson")(y, np.exp(z)), rel=1e-5)
    with pytest.raises(ValueError, match="non-negative"):
        losses.get("poisson").prepare_targets(-y, y.shape[1], "float64")
