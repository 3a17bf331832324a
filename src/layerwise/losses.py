"""Loss functions: the loss of a batch and its gradient with respect to the network's output.

Every loss reports the mean over the batch of per-sample losses (with ``sample_weight``, the
weighted sum divided by the batch size, Keras's ``sum_over_batch_size``), and ``gradient``
returns dL/d(y_pred) of that mean, shape ``(batch, units)``. Element-wise losses (MSE, MAE,
Huber, binary cross-entropy) average over the output units first, as Keras and PyTorch do.

The cross-entropies take ``from_logits``. When the last layer is softmax (or sigmoid) and the
loss is the matching cross-entropy, the model computes the loss from the layer's logits with
log-sum-exp and back-propagates the fused gradient p - y, skipping the activation's Jacobian:
logits of ±1e4 then give a finite loss and gradient. Only a cross-entropy handed
probabilities directly (no logits available) clips them to [1e-7, 1 - 1e-7], as Keras does.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from .activations import _sigmoid, row_sums, stable_shift
from .backend import lazy_scalar, xp
from .input_checks import cast_finite
from .registry import Configurable, Registry

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Huber",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "get",
    "names",
    "serialize",
]  # fmt: skip

_EPSILON = 1e-7  # clipping of probabilities when no logits are available


def _weighted_mean(per_sample: Any, sample_weight: Any | None) -> float:
    if sample_weight is None:
        return lazy_scalar(per_sample.mean())  # a float, or a device scalar left there
    return lazy_scalar((per_sample * sample_weight).sum() / per_sample.shape[0])


def _scale(grad: Any, denominator: float, sample_weight: Any | None) -> Any:
    """Divide the per-sample gradient by ``denominator`` and weight its rows, in place."""
    grad *= 1.0 / denominator
    if sample_weight is not None:
        grad *= sample_weight[:, None]
    return grad


def _as_2d_targets(y: np.ndarray, units: int, loss: str) -> np.ndarray:
    """Targets shaped like the output ``(batch, units)``; a vector is accepted for units=1."""
    if y.ndim == 1 and units == 1:
        return y[:, None]
    if y.ndim != 2 or y.shape[1] != units:
        raise ValueError(
            f"`y` must have shape (batch, {units}) to match the output layer's units={units} "
            f"for loss {loss!r}. Received: y.shape={y.shape}"
        )
    return y


class Loss(Configurable):
    """Base class. Subclasses implement ``per_sample`` and ``gradient``.

    Keras's form works too: a subclass that defines ``call(y_true, y_pred)``, the loss of
    each sample ``(batch,)``, and ``call_gradient(y_true, y_pred)``, its derivative with
    respect to ``y_pred`` ``(batch, units)`` (layerwise back-propagates by hand, so a loss
    must say its gradient). ``__init__(name=...)`` names it in the logs.
    """

    name = "loss"

    def __init__(self, name: str | None = None, reduction: Any = None, dtype: Any = None
                 ) -> None:
        if name is not None:
            self.name = name
        if type(self).call is not Loss.call and type(self).call_gradient is Loss.call_gradient \
                and type(self).gradient is Loss.gradient:
            raise TypeError(_NO_GRADIENT.format(type(self).__name__))

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Keras's per-sample loss ``(batch,)``; see the class docstring."""
        raise NotImplementedError

    def call_gradient(self, y_true: Any, y_pred: Any) -> Any:
        """d ``call`` / d ``y_pred``, shape ``(batch, units)``."""
        raise NotImplementedError
    #: the output activation whose logits this loss can use directly (softmax, sigmoid)
    logits_activation: str | None = None
    from_logits = False

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> float:
        return _weighted_mean(self.per_sample(y_true, y_pred), sample_weight)

    #: whether a sample's loss sums its units' losses (cross-entropies over classes) rather
    #: than averaging them (element-wise losses, as Keras and PyTorch)
    sums_units = False

    def formulas(self) -> tuple[Any, Any] | None:
        """The math, written once: ``(loss, gradient)``, two plain functions of
        ``(y_true, y_pred, *hyper())`` giving each output unit's loss and its derivative
        with respect to ``y_pred``, shape ``(batch, units)``. The NumPy path reduces them
        here; ``layerwise.compiled`` compiles the same functions. None for a loss given as
        Python code (``call``/``call_gradient``)."""
        return None

    def hyper(self) -> tuple[float, ...]:
        """The hyper-parameters passed to the ``formulas`` (e.g. Huber's δ)."""
        return ()

    def targets_for_formulas(self, y_true: Any, units: int) -> Any:
        """``y_true`` as the formulas take it (class indices become one-hot rows)."""
        return y_true

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        """The loss of each sample, shape ``(batch,)``."""
        if type(self).call is not Loss.call:
            return self.call(y_true, y_pred)
        pair = self.formulas()
        if pair is None:
            raise NotImplementedError
        units = y_pred.shape[-1]
        each = pair[0](self.targets_for_formulas(y_true, units), y_pred, *self.hyper())
        return each.sum(axis=-1) if self.sums_units else each.mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """dL/d(y_pred) of the (weighted) batch mean, shape ``(batch, units)``."""
        if type(self).call_gradient is not Loss.call_gradient:
            grad = xp.asarray(self.call_gradient(y_true, y_pred), dtype=y_pred.dtype)
            return _scale(grad.reshape(y_pred.shape).copy(), y_pred.shape[0], sample_weight)
        pair = self.formulas()
        if pair is None:
            raise TypeError(_NO_GRADIENT.format(type(self).__name__))
        units = y_pred.shape[-1]
        grad = xp.asarray(pair[1](self.targets_for_formulas(y_true, units), y_pred,
                                  *self.hyper()), dtype=y_pred.dtype)
        if grad is y_pred:  # the formula handed back its input: never scale that in place
            grad = grad.copy()
        denominator = grad.shape[0] * (1 if self.sums_units else grad.shape[1])
        return _scale(grad, denominator, sample_weight)

    def loss_and_gradient(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> tuple[float, Any]:
        """(the weighted batch mean of the loss, dL/d(y_pred) of that mean)."""
        return self(y_true, y_pred, sample_weight), self.gradient(y_true, y_pred, sample_weight)

    def prepare_targets(self, y: np.ndarray, units: int, dtype: str) -> np.ndarray:
        """Check ``y`` against an output layer of ``units`` and convert it for this loss."""
        return cast_finite(_as_2d_targets(y, units, self.name), dtype, "y")

    def with_logits(self) -> Loss:
        """A copy that takes logits (used by the model for the fused output layer)."""
        raise ValueError(f"Loss {self.name!r} has no logits form.")


_NO_GRADIENT = (
    "Loss {} gives call() but not its gradient. layerwise back-propagates by hand, so a "
    "custom loss must also define call_gradient(y_true, y_pred), returning d call / d y_pred "
    "with y_pred's shape (batch, units).")

LOSSES: Registry[Loss] = Registry("loss", "loss", Loss)


def _named(name: str, *aliases: str):  # type: ignore[no-untyped-def]
    def decorator(cls: type[Loss]) -> type[Loss]:
        cls.name = name
        return LOSSES.register(name, *aliases)(cls)

    return decorator


# -- the formulas: each unit's loss and its derivative, plain functions of arrays written
# with ``xp`` and free of ``out=``, so that NumPy runs them and numba compiles them unchanged


def _mse(t: Any, p: Any) -> Any:
    d = p - t
    return d * d


def _mse_grad(t: Any, p: Any) -> Any:
    return 2.0 * (p - t)


def _mae(t: Any, p: Any) -> Any:
    return xp.abs(p - t)


def _mae_grad(t: Any, p: Any) -> Any:
    return xp.sign(p - t)


def _huber(t: Any, p: Any, delta: float) -> Any:
    a = xp.abs(p - t)
    quadratic = xp.minimum(a, delta)
    return 0.5 * quadratic * quadratic + delta * (a - quadratic)


def _huber_grad(t: Any, p: Any, delta: float) -> Any:
    return xp.clip(p - t, -delta, delta)


def _bce(t: Any, p: Any) -> Any:
    p = xp.clip(p, _EPSILON, 1.0 - _EPSILON)
    return -(t * xp.log(p) + (1.0 - t) * xp.log1p(-p))


def _bce_grad(t: Any, p: Any) -> Any:
    p = xp.clip(p, _EPSILON, 1.0 - _EPSILON)
    return (p - t) / (p * (1.0 - p))


def _bce_logits(t: Any, z: Any) -> Any:
    return xp.maximum(z, 0.0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))


def _bce_logits_grad(t: Any, z: Any) -> Any:
    return _sigmoid(z) - t


def _log_softmax_parts(z: Any) -> tuple[Any, Any]:
    """(log Σ_j e^(z_j) per row, shape (batch, 1); softmax(z)), stable for any z."""
    m = stable_shift(z)
    e = xp.exp(z - m)
    s = row_sums(e)
    return m + xp.log(s), e / s


def _cce(t: Any, p: Any) -> Any:
    return -(t * xp.log(xp.clip(p, _EPSILON, 1.0)))


def _cce_grad(t: Any, p: Any) -> Any:
    return -t / xp.clip(p, _EPSILON, 1.0)


def _cce_logits(t: Any, z: Any) -> Any:
    lse, _ = _log_softmax_parts(z)
    return t * (lse - z)


def _cce_logits_grad(t: Any, z: Any) -> Any:
    _, s = _log_softmax_parts(z)
    return s * row_sums(t) - t


def _poisson(t: Any, p: Any) -> Any:
    return p - t * xp.log(p + _EPSILON)


def _poisson_grad(t: Any, p: Any) -> Any:
    return 1.0 - t / (p + _EPSILON)


def _poisson_logits(t: Any, z: Any) -> Any:
    return xp.exp(z) - t * z


def _poisson_logits_grad(t: Any, z: Any) -> Any:
    return xp.exp(z) - t


def _kld(t: Any, p: Any) -> Any:
    t, q = xp.clip(t, 1e-7, 1.0), xp.clip(p, 1e-7, 1.0)
    return t * xp.log(t / q)


def _kld_grad(t: Any, p: Any) -> Any:
    inside = (p >= 1e-7) & (p <= 1.0)
    return xp.where(inside, -xp.clip(t, 1e-7, 1.0) / xp.clip(p, 1e-7, 1.0), 0.0)


def _signs(t: Any) -> Any:
    return xp.where(t > 0, 1.0, -1.0)


def _hinge(t: Any, p: Any) -> Any:
    return xp.maximum(1.0 - _signs(t) * p, 0.0)


def _hinge_grad(t: Any, p: Any) -> Any:
    s = _signs(t)
    return xp.where(1.0 - s * p > 0, -s, 0.0)


def _log_cosh(t: Any, p: Any) -> Any:
    d = p - t
    return d + xp.logaddexp(0.0, -2.0 * d) - math.log(2.0)


def _log_cosh_grad(t: Any, p: Any) -> Any:
    return xp.tanh(p - t)


def _focal_parts(t: Any, p: Any, alpha: float, balancing: float) -> tuple[Any, Any]:
    """(p_t, the class weight w), for the focal loss."""
    q = xp.clip(p, 1e-7, 1.0 - 1e-7)
    pt = xp.where(t > 0.5, q, 1.0 - q)
    # w = α or 1 - α with class balancing, else 1
    weight = 1.0 + balancing * (xp.where(t > 0.5, alpha, 1.0 - alpha) - 1.0)
    return pt, weight


def _focal(t: Any, p: Any, gamma: float, alpha: float, balancing: float) -> Any:
    pt, weight = _focal_parts(t, p, alpha, balancing)
    return -weight * (1.0 - pt) ** gamma * xp.log(pt)


def _focal_grad(t: Any, p: Any, gamma: float, alpha: float, balancing: float) -> Any:
    pt, weight = _focal_parts(t, p, alpha, balancing)
    rest = 1.0 - pt  # >= 1e-7: the clip keeps every power below finite
    dpt = gamma * rest ** (gamma - 1.0) * xp.log(pt) - rest ** gamma / pt
    sign = xp.where(t > 0.5, 1.0, -1.0)
    inside = (p >= 1e-7) & (p <= 1.0 - 1e-7)
    return xp.where(inside, weight * dpt * sign, 0.0)


@_named("mean_squared_error", "mse")
class MeanSquaredError(Loss):
    """l = mean_k (ŷ_k - y_k)², dl/dŷ = 2(ŷ - y)/units. The regression loss of the seeds."""

    def formulas(self) -> tuple[Any, Any]:
        return _mse, _mse_grad


@_named("mean_absolute_error", "mae")
class MeanAbsoluteError(Loss):
    """l = mean_k |ŷ_k - y_k|, dl/dŷ = sign(ŷ - y)/units (0 where ŷ = y)."""

    def formulas(self) -> tuple[Any, Any]:
        return _mae, _mae_grad


@_named("huber", "huber_loss")
class Huber(Loss):
    """Huber loss with threshold δ (``delta``): for d = ŷ - y,
    l = ½d² where |d| <= δ, else δ(|d| - ½δ); dl/dd = clip(d, -δ, δ). Averaged over units."""

    def __init__(self, delta: float = 1.0) -> None:
        if not delta > 0:
            raise ValueError(f"`delta` must be positive. Received: delta={delta}")
        self.delta = float(delta)

    def formulas(self) -> tuple[Any, Any]:
        return _huber, _huber_grad

    def hyper(self) -> tuple[float, ...]:
        return (self.delta,)

    def get_config(self) -> dict[str, Any]:
        return {"delta": self.delta}


class _CrossEntropy(Loss):
    #: (loss, gradient) from probabilities and from logits
    _from_probabilities: tuple[Any, Any]
    _from_logits: tuple[Any, Any]

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def formulas(self) -> tuple[Any, Any]:
        return self._from_logits if self.from_logits else self._from_probabilities

    def with_logits(self) -> Loss:
        fused = copy.copy(self)
        fused.from_logits = True
        return fused

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits}


@_named("binary_crossentropy", "bce")
class BinaryCrossentropy(_CrossEntropy):
    """Binary cross-entropy, averaged over output units:
    l = -mean_k [y log p + (1 - y) log(1 - p)], p = σ(z).

    From logits z: l = mean_k [max(z, 0) - z·y + log(1 + e^-|z|)], dl/dz = (σ(z) - y)/units.
    Targets are 0/1 labels (or probabilities in [0, 1]) shaped like the output.
    """

    logits_activation = "sigmoid"
    _from_probabilities = (_bce, _bce_grad)
    _from_logits = (_bce_logits, _bce_logits_grad)

    def prepare_targets(self, y: np.ndarray, units: int, dtype: str) -> np.ndarray:
        y = _as_2d_targets(y, units, self.name)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                "`y` must hold labels in [0, 1] (0/1 classes or probabilities) for "
                f"binary_crossentropy. Received values from {y.min()} to {y.max()}"
            )
        return y.astype(dtype, copy=False)


@_named("categorical_crossentropy", "cce")
class CategoricalCrossentropy(_CrossEntropy):
    """Categorical cross-entropy H(y, p) = -Σ_k y_k log p_k with one-hot (or soft) targets.

    From logits z: l = Σ_k y_k (logsumexp(z) - z_k), dl/dz = softmax(z)·Σ_k y_k - y, which is
    p - y for one-hot targets.
    """

    logits_activation = "softmax"
    sums_units = True
    _from_probabilities = (_cce, _cce_grad)
    _from_logits = (_cce_logits, _cce_logits_grad)

    def prepare_targets(self, y: np.ndarray, units: int, dtype: str) -> np.ndarray:
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and units > 1):
            raise ValueError(
                f"categorical_crossentropy needs one-hot targets of shape (batch, {units}); "
                f"`y` holds class indices, shape {y.shape}. Use "
                "loss='sparse_categorical_crossentropy' or layerwise.utils.to_categorical(y)."
            )
        if y.ndim != 2 or y.shape[1] != units:
            raise ValueError(
                f"`y` is one-hot with width {y.shape[-1]}, but the output layer has "
                f"units={units}: categorical_crossentropy needs y.shape == (batch, {units}). "
                f"Received: y.shape={y.shape}"
            )
        if y.size and y.min() < 0:
            row = int(np.argwhere(y < 0)[0][0])
            raise ValueError(f"categorical_crossentropy needs one-hot (or probability) rows "
                             f"with entries >= 0, but y[{row}] = {y[row].tolist()}.")
        sums = y.sum(axis=1, dtype=np.float64)
        off = np.abs(sums - 1.0) > 1e-3
        if off.any():
            row = int(np.argmax(off))
            raise ValueError(f"categorical_crossentropy needs each row of `y` to sum to 1 "
                             f"(one-hot or probabilities), but y[{row}] sums to {sums[row]:g}.")
        return y.astype(dtype, copy=False)


@_named("sparse_categorical_crossentropy", "scce")
class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class targets ``(batch,)``:
    l = -log p_y; from logits l = logsumexp(z) - z_y and dl/dz = softmax(z) - onehot(y).

    The formulas are categorical cross-entropy's, on one-hot rows made from the indices.
    """

    def targets_for_formulas(self, y_true: Any, units: int) -> Any:
        labels = y_true.reshape(-1).astype("int64", copy=False)
        one_hot = xp.zeros((labels.shape[0], units), dtype="float32")
        one_hot[xp.arange(labels.shape[0]), labels] = 1.0
        return one_hot

    def prepare_targets(self, y: np.ndarray, units: int, dtype: str) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                "sparse_categorical_crossentropy needs integer class indices of shape (batch,); "
                f"`y` has shape {y.shape}. For one-hot targets use "
                "loss='categorical_crossentropy'."
            )
        if y.size and not np.array_equal(y, np.floor(y)):
            raise ValueError("`y` must hold integer class indices for "
                             "sparse_categorical_crossentropy; it holds fractional values.")
        if y.size and (y.min() < 0 or y.max() >= units):
            bad = int(y.max()) if y.max() >= units else int(y.min())
            raise ValueError(
                f"`y` holds class index {bad}, but the output layer has units={units}: "
                f"sparse_categorical_crossentropy needs class indices in [0, {units - 1}]."
            )
        return y.astype("int64", copy=False)


@_named("poisson")
class Poisson(_CrossEntropy):
    """Poisson negative log-likelihood of counts or rates, averaged over output units (the
    constant log y! dropped, as Keras does): l = mean_k [ŷ_k - y_k log(ŷ_k + 1e-7)],
    dl/dŷ_k = (1 - y_k/(ŷ_k + 1e-7))/units.

    With an ``exponential`` output layer the model works from the log-rate z (ŷ = e^z):
    l = mean_k [e^z - y z], dl/dz = (e^z - y)/units, finite wherever e^z is. Targets are
    non-negative. (``from_logits`` as on the cross-entropies.)
    """

    logits_activation = "exponential"
    _from_probabilities = (_poisson, _poisson_grad)
    _from_logits = (_poisson_logits, _poisson_logits_grad)

    def prepare_targets(self, y: np.ndarray, units: int, dtype: str) -> np.ndarray:
        y = _as_2d_targets(y, units, self.name)
        if y.size and y.min() < 0:
            raise ValueError("`y` must be non-negative (counts or rates) for the poisson "
                             f"loss. Received a minimum of {y.min()}")
        return cast_finite(y, dtype, "y")


@_named("kl_divergence", "kld", "kullback_leibler_divergence")
class KLDivergence(Loss):
    """l = Σ_k y_k log(y_k / ŷ_k) (both clipped to [1e-7, 1], as Keras), dl/dŷ_k = -y_k/ŷ_k
    (0 where ŷ was clipped)."""

    sums_units = True

    def formulas(self) -> tuple[Any, Any]:
        return _kld, _kld_grad


@_named("hinge")
class Hinge(Loss):
    """l = mean_k max(0, 1 - t_k ŷ_k) with t = y in {-1, 1} (0/1 labels become -1/1),
    dl/dŷ_k = -t_k/units where 1 - t_k ŷ_k > 0."""

    def formulas(self) -> tuple[Any, Any]:
        return _hinge, _hinge_grad


@_named("log_cosh", "logcosh")
class LogCosh(Loss):
    """l = mean_k log(cosh(ŷ_k - y_k)), computed as d + log(1 + e^(-2d)) - log 2 (stable for
    any d), dl/dŷ_k = tanh(ŷ_k - y_k)/units."""

    def formulas(self) -> tuple[Any, Any]:
        return _log_cosh, _log_cosh_grad


@_named("binary_focal_crossentropy")
class BinaryFocalCrossentropy(Loss):
    """Focal loss (Lin et al. 2017) on probabilities p (clipped to [ε, 1-ε], ε = 1e-7):
    with p_t = p for y = 1 and 1 - p for y = 0, l = mean_k -w (1 - p_t)^γ log p_t, where w
    is α for positives and 1 - α for negatives with ``apply_class_balancing`` (else 1).
    γ = 0 is binary cross-entropy. dl/dp = w (γ (1-p_t)^(γ-1) log p_t - (1-p_t)^γ / p_t)
    · dp_t/dp, with dp_t/dp = ±1."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25,
                 apply_class_balancing: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.gamma, self.alpha = float(gamma), float(alpha)
        self.apply_class_balancing = bool(apply_class_balancing)

    def formulas(self) -> tuple[Any, Any]:
        return _focal, _focal_grad

    def hyper(self) -> tuple[float, ...]:
        return (self.gamma, self.alpha, float(self.apply_class_balancing))

    def get_config(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "alpha": self.alpha,
                "apply_class_balancing": self.apply_class_balancing}


def get(identifier: Any, argument: str = "loss") -> Loss:
    """Resolve a name, config dict, class or instance to a :class:`Loss`. A plain function
    ``f(y_true, y_pred)`` is refused with how to give it a gradient."""
    if callable(identifier) and not isinstance(identifier, (type, Loss)):
        raise TypeError(
            f"`{argument}` is a plain function ({getattr(identifier, '__name__', identifier)}"
            "), which has no gradient. layerwise back-propagates by hand: subclass "
            "layerwise.losses.Loss with call(y_true, y_pred) and call_gradient(y_true, "
            "y_pred) (d call / d y_pred), or use a built-in loss name.")
    return LOSSES.get(identifier, argument)


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` of a loss, which ``get`` turns back into one."""
    return LOSSES.serialize(loss)


def names() -> list[str]:
    """Every registered loss name and alias, sorted (what ``get`` accepts)."""
    return LOSSES.names()
