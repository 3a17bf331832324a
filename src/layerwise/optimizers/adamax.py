"""Adamax: Adam with the infinity norm (Kingma & Ba, 2015, section 7), as Keras 3."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import MomentOptimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("adamax")
class Adamax(MomentOptimizer):
    """m <- β₁ m + (1 - β₁) g,  u <- max(β₂ u, |g|),  θ <- θ - η/(1 - β₁ᵗ) · m / (u + ε).

    The running maximum u replaces Adam's √v, so a step is bounded by η/(1 - β₁ᵗ).
    (PyTorch adds ε inside the maximum instead; the two agree to O(ε).)
    """

    slot_names = ("m", "u")
    nonnegative_slots = ("u",)

    formula_slots = ("m", "u")

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        return (lr / (1.0 - self.beta_1**t), self.beta_1, self.beta_2, self.epsilon)

    @staticmethod
    def formula(p: Any, g: Any, m: Any, u: Any, step: Any, beta_1: float, beta_2: float,
                eps: float) -> tuple[Any, Any, Any]:
        m = beta_1 * m + (1.0 - beta_1) * g
        u = xp.maximum(beta_2 * u, xp.abs(g))
        return p - step * m / (u + eps), m, u
