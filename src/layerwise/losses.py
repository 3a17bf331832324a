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

from .activations import row_sums, stable_shift
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

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        """The loss of each sample, shape ``(batch,)``."""
        if type(self).call is not Loss.call:
            return self.call(y_true, y_pred)
        raise NotImplementedError

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """dL/d(y_pred) of the (weighted) batch mean, shape ``(batch, units)``."""
        if type(self).call_gradient is not Loss.call_gradient:
            grad = xp.asarray(self.call_gradient(y_true, y_pred), dtype=y_pred.dtype)
            return _scale(grad.reshape(y_pred.shape).copy(), y_pred.shape[0], sample_weight)
        raise TypeError(_NO_GRADIENT.format(type(self).__name__))

    def loss_and_gradient(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> tuple[float, Any]:
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


@_named("mean_squared_error", "mse")
class MeanSquaredError(Loss):
    """l = mean_k (ŷ_k - y_k)², dl/dŷ = 2(ŷ - y)/units. The regression loss of the seeds."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        d = y_pred - y_true
        return (d * d).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        g = y_pred - y_true
        return _scale(g, 0.5 * g.shape[0] * g.shape[1], sample_weight)


@_named("mean_absolute_error", "mae")
class MeanAbsoluteError(Loss):
    """l = mean_k |ŷ_k - y_k|, dl/dŷ = sign(ŷ - y)/units (0 where ŷ = y)."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        return xp.abs(y_pred - y_true).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        g = xp.sign(y_pred - y_true)
        return _scale(g, g.shape[0] * g.shape[1], sample_weight)


@_named("huber", "huber_loss")
class Huber(Loss):
    """Huber loss with threshold δ (``delta``): for d = ŷ - y,
    l = ½d² where |d| <= δ, else δ(|d| - ½δ); dl/dd = clip(d, -δ, δ). Averaged over units."""

    def __init__(self, delta: float = 1.0) -> None:
        if not delta > 0:
            raise ValueError(f"`delta` must be positive. Received: delta={delta}")
        self.delta = float(delta)

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        a = xp.abs(y_pred - y_true)
        quadratic = xp.minimum(a, self.delta)
        return (0.5 * quadratic * quadratic + self.delta * (a - quadratic)).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        g = xp.clip(y_pred - y_true, -self.delta, self.delta)
        return _scale(g, g.shape[0] * g.shape[1], sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"delta": self.delta}


class _CrossEntropy(Loss):
    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def with_logits(self) -> Loss:
        fused = copy.copy(self)
        fused.from_logits = True
        return fused

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits}


def _sigmoid(z: Any) -> Any:
    e = xp.exp(-xp.abs(z))
    r = 1.0 / (1.0 + e)
    return xp.where(z >= 0, r, e * r)


@_named("binary_crossentropy", "bce")
class BinaryCrossentropy(_CrossEntropy):
    """Binary cross-entropy, averaged over output units:
    l = -mean_k [y log p + (1 - y) log(1 - p)], p = σ(z).

    From logits z: l = mean_k [max(z, 0) - z·y + log(1 + e^-|z|)], dl/dz = (σ(z) - y)/units.
    Targets are 0/1 labels (or probabilities in [0, 1]) shaped like the output.
    """

    logits_activation = "sigmoid"

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        if self.from_logits:
            z = y_pred
            return (xp.maximum(z, 0.0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))).mean(axis=-1)
        p = xp.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
        return -(y_true * xp.log(p) + (1.0 - y_true) * xp.log1p(-p)).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        if self.from_logits:
            g = _sigmoid(y_pred) - y_true
        else:
            p = xp.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
            g = (p - y_true) / (p * (1.0 - p))
        return _scale(g, g.shape[0] * g.shape[1], sample_weight)

    def prepare_targets(self, y: np.ndarray, units: int, dtype: str) -> np.ndarray:
        y = _as_2d_targets(y, units, self.name)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                "`y` must hold labels in [0, 1] (0/1 classes or probabilities) for "
                f"binary_crossentropy. Received values from {y.min()} to {y.max()}"
            )
        return y.astype(dtype, copy=False)


def _log_softmax_parts(z: Any) -> tuple[Any, Any]:
    """(log Σ_j e^(z_j) per row, shape (batch, 1); softmax(z)), stable for any z."""
    m = stable_shift(z)
    e = xp.exp(z - m)
    s = row_sums(e)
    e /= s
    return m + xp.log(s), e


@_named("categorical_crossentropy", "cce")
class CategoricalCrossentropy(_CrossEntropy):
    """Categorical cross-entropy H(y, p) = -Σ_k y_k log p_k with one-hot (or soft) targets.

    From logits z: l = Σ_k y_k (logsumexp(z) - z_k), dl/dz = softmax(z)·Σ_k y_k - y, which is
    p - y for one-hot targets.
    """

    logits_activation = "softmax"

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        if self.from_logits:
            lse, _ = _log_softmax_parts(y_pred)
            return (y_true * (lse - y_pred)).sum(axis=-1)
        return -(y_true * xp.log(xp.clip(y_pred, _EPSILON, 1.0))).sum(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        if self.from_logits:
            _, g = _log_softmax_parts(y_pred)
            g *= y_true.sum(axis=-1, keepdims=True)
            g -= y_true
        else:
            g = -y_true / xp.clip(y_pred, _EPSILON, 1.0)
        return _scale(g, g.shape[0], sample_weight)

    def loss_and_gradient(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> tuple[float, Any]:
        if not self.from_logits:
            return super().loss_and_gradient(y_true, y_pred, sample_weight)
        lse, g = _log_softmax_parts(y_pred)
        loss = _weighted_mean((y_true * (lse - y_pred)).sum(axis=-1), sample_weight)
        g *= y_true.sum(axis=-1, keepdims=True)
        g -= y_true
        return loss, _scale(g, g.shape[0], sample_weight)

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
class SparseCategoricalCrossentropy(_CrossEntropy):
    """Categorical cross-entropy with integer class targets ``(batch,)``:
    l = -log p_y; from logits l = logsumexp(z) - z_y and dl/dz = softmax(z) - onehot(y)."""

    logits_activation = "softmax"

    @staticmethod
    def _rows(y_true: Any) -> tuple[Any, Any]:
        labels = y_true.reshape(-1).astype("int64", copy=False)
        return xp.arange(labels.shape[0]), labels

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        rows, labels = self._rows(y_true)
        if self.from_logits:
            lse, _ = _log_softmax_parts(y_pred)
            return lse[:, 0] - y_pred[rows, labels]
        return -xp.log(xp.clip(y_pred[rows, labels], _EPSILON, 1.0))

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        return self.loss_and_gradient(y_true, y_pred, sample_weight)[1]

    def loss_and_gradient(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> tuple[float, Any]:
        rows, labels = self._rows(y_true)
        if self.from_logits:
            lse, g = _log_softmax_parts(y_pred)
            loss = _weighted_mean(lse[:, 0] - y_pred[rows, labels], sample_weight)
            g[rows, labels] -= 1.0
        else:
            picked = xp.clip(y_pred[rows, labels], _EPSILON, 1.0)
            loss = _weighted_mean(-xp.log(picked), sample_weight)
            g = xp.zeros_like(y_pred)
            g[rows, labels] = -1.0 / picked
        return loss, _scale(g, g.shape[0], sample_weight)

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

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        if self.from_logits:
            return (xp.exp(y_pred) - y_true * y_pred).mean(axis=-1)
        return (y_pred - y_true * xp.log(y_pred + _EPSILON)).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        if self.from_logits:
            g = xp.exp(y_pred) - y_true
        else:
            g = 1.0 - y_true / (y_pred + _EPSILON)
        return _scale(g, g.shape[0] * g.shape[1], sample_weight)

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

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        t, p = xp.clip(y_true, 1e-7, 1.0), xp.clip(y_pred, 1e-7, 1.0)
        return (t * xp.log(t / p)).sum(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        t = xp.clip(y_true, 1e-7, 1.0)
        inside = (y_pred >= 1e-7) & (y_pred <= 1.0)
        g = xp.where(inside, -t / xp.clip(y_pred, 1e-7, 1.0), 0.0).astype(y_pred.dtype)
        return _scale(g, g.shape[0], sample_weight)


@_named("hinge")
class Hinge(Loss):
    """l = mean_k max(0, 1 - t_k ŷ_k) with t = y in {-1, 1} (0/1 labels become -1/1),
    dl/dŷ_k = -t_k/units where 1 - t_k ŷ_k > 0."""

    @staticmethod
    def _signs(y_true: Any) -> Any:
        return xp.where(y_true > 0, 1.0, -1.0).astype(y_true.dtype)

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        return xp.maximum(1.0 - self._signs(y_true) * y_pred, 0.0).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        t = self._signs(y_true)
        g = xp.where(1.0 - t * y_pred > 0, -t, 0.0).astype(y_pred.dtype)
        return _scale(g, g.shape[0] * g.shape[1], sample_weight)


@_named("log_cosh", "logcosh")
class LogCosh(Loss):
    """l = mean_k log(cosh(ŷ_k - y_k)), computed as d + log(1 + e^(-2d)) - log 2 (stable for
    any d), dl/dŷ_k = tanh(ŷ_k - y_k)/units."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        d = y_pred - y_true
        return (d + xp.logaddexp(0.0, -2.0 * d) - math.log(2.0)).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        g = xp.tanh(y_pred - y_true)
        return _scale(g, g.shape[0] * g.shape[1], sample_weight)


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

    def _parts(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        p = xp.clip(y_pred, 1e-7, 1.0 - 1e-7)
        pt = xp.where(y_true > 0.5, p, 1.0 - p)
        weight = xp.where(y_true > 0.5, self.alpha, 1.0 - self.alpha) \
            if self.apply_class_balancing else 1.0
        return pt, weight

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        pt, weight = self._parts(y_true, y_pred)
        return (-weight * (1.0 - pt) ** self.gamma * xp.log(pt)).mean(axis=-1)

    def gradient(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        pt, weight = self._parts(y_true, y_pred)
        rest = 1.0 - pt  # >= 1e-7: the clip keeps every power below finite
        dpt = self.gamma * rest ** (self.gamma - 1.0) * xp.log(pt) - rest ** self.gamma / pt
        sign = xp.where(y_true > 0.5, 1.0, -1.0)
        inside = (y_pred >= 1e-7) & (y_pred <= 1.0 - 1e-7)
        g = xp.where(inside, weight * dpt * sign, 0.0).astype(y_pred.dtype)
        return _scale(g, g.shape[0] * g.shape[1], sample_weight)

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
    return LOSSES.serialize(loss)


def names() -> list[str]:
    return LOSSES.names()
