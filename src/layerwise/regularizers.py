"""Weight penalties against over-fitting (SPEC §7), with Keras's semantics.

``Dense(64, kernel_regularizer=l2(0.01))`` adds λ·Σw² to the loss that ``fit`` reports and
2λw to the kernel's gradient; ``l1(λ)`` adds λ·Σ|w| and λ·sign(w); ``l1_l2`` both.
"""

from __future__ import annotations

from typing import Any

from .backend import lazy_scalar, xp
from .registry import Configurable, Registry
from .utils import check_finite_number

__all__ = ["Regularizer", "L1", "L2", "L1L2", "L2PerSample", "l1", "l2", "l1_l2", "get",
           "serialize"]


def _strength(value: float, argument: str) -> float:
    return check_finite_number(value, argument, minimum=0.0)


class Regularizer(Configurable):
    """Base class: ``penalty(w)`` is added to the loss, ``gradient(w)`` to w's gradient.

    A regularizer with ``per_sample = True`` is divided by the number of samples in the
    batch (the model does the division), so its strength relative to the mean data loss
    does not depend on the batch size.
    """

    per_sample = False

    def penalty(self, weight: Any) -> float:
        """The penalty added to the loss for ``weight``."""
        raise NotImplementedError

    def gradient(self, weight: Any) -> Any:
        """d(penalty)/d(weight), shaped like ``weight``."""
        raise NotImplementedError

    def __call__(self, weight: Any) -> float:
        return self.penalty(weight)


REGULARIZERS: Registry[Regularizer] = Registry("regularizer", "regularizer", Regularizer)


@REGULARIZERS.register("l1_l2")
class L1L2(Regularizer):
    """λ₁·Σ|w| + λ₂·Σw²; gradient λ₁·sign(w) + 2λ₂·w."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _strength(l1, "l1")
        self.l2 = _strength(l2, "l2")

    def penalty(self, weight: Any) -> float:
        total = 0.0
        if self.l1:
            total += self.l1 * lazy_scalar(xp.abs(weight).sum())
        if self.l2:
            total += self.l2 * lazy_scalar((weight * weight).sum())
        return total

    def gradient(self, weight: Any) -> Any:
        grad = xp.zeros_like(weight)
        if self.l1:
            grad += self.l1 * xp.sign(weight)
        if self.l2:
            grad += (2.0 * self.l2) * weight
        return grad

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


@REGULARIZERS.register("l1")
class L1(L1L2):
    """λ·Σ|w| (drives weights to exactly zero: sparse models); default λ = 0.01."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


@REGULARIZERS.register("l2")
class L2(L1L2):
    """λ·Σw² (weight decay: shrinks weights towards zero); default λ = 0.01."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


@REGULARIZERS.register("l2_per_sample")
class L2PerSample(Regularizer):
    """½·α·Σw² divided by the batch's sample count n; gradient α·w/n.

    scikit-learn's ``alpha`` in ``MLPClassifier``/``MLPRegressor``: the penalty is added to
    the summed (not averaged) data loss, so against the batch mean it weighs 1/n.
    """

    per_sample = True

    def __init__(self, alpha: float = 0.0001) -> None:
        self.alpha = _strength(alpha, "alpha")

    def penalty(self, weight: Any) -> float:
        return 0.5 * self.alpha * lazy_scalar((weight * weight).sum())

    def gradient(self, weight: Any) -> Any:
        return self.alpha * weight

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


def l1(l1: float = 0.01) -> L1:
    """``L1(l1)``: the penalty l1 · Σ|w|, as Keras's ``regularizers.l1``."""
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    """``L2(l2)``: the penalty l2 · Σw², as Keras's ``regularizers.l2``."""
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """``L1L2(l1, l2)``: the penalty l1 · Σ|w| + l2 · Σw²."""
    return L1L2(l1, l2)


def get(identifier: Any, argument: str = "regularizer") -> Regularizer | None:
    """``None``, a name (``"l2"``), a config dict or a ``Regularizer``."""
    if identifier is None:
        return None
    return REGULARIZERS.get(identifier, argument)


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """``{"class_name": ..., "config": ...}`` of a regularizer (None for None)."""
    return None if regularizer is None else REGULARIZERS.serialize(regularizer)
