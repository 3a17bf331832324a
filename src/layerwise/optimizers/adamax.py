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

    def update(self, param: Any, grad: Any, lr: float, slots: dict[str, Any]) -> None:
        t = self.iterations + 1
        m, u = slots["m"], slots["u"]
        m *= self.beta_1
        m += (1.0 - self.beta_1) * grad
        u *= self.beta_2
        xp.maximum(u, xp.abs(grad), out=u)
        param -= (lr / (1.0 - self.beta_1**t)) * m / (u + self.epsilon)
