"""Weight penalties against over-fitting (SPEC §7), with Keras's semantics.

``Dense(64, kernel_regularizer=l2(0.01))`` adds λ·Σw² to the loss that ``fit`` reports and
2λw to the kernel's gradient; ``l1(λ)`` adds λ·Σ|w| and λ·sign(w); ``l1_l2`` both.
"""

from __future__ import annotations

from typing import Any

from .backend import lazy_scalar, xp
from .registry import Configurable, Registry
from .utils import check_finite_number

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize"]


def _strength(value: float, argument: str) -> float:
    return check_finite_number(value, argument, minimum=0.0)


class Regularizer(Configurable):
    """Base class: ``penalty(w)`` is added to the loss, ``gradient(w)`` to w's gradient."""

    def penalty(self, weight: Any) -> float:
        raise NotImplementedError

    def gradient(self, weight: Any) -> Any:
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


def l1(l1: float = 0.01) -> L1:
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    return L1L2(l1, l2)


def get(identifier: Any, argument: str = "regularizer") -> Regularizer | None:
    """``None``, a name (``"l2"``), a config dict or a ``Regularizer``."""
    if identifier is None:
        return None
    return REGULARIZERS.get(identifier, argument)


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    return None if regularizer is None else REGULARIZERS.serialize(regularizer)
