"""Adamax: Adam with the infinity norm (Kingma & Ba, 2015, section 7), as Keras 3."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import Optimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("adamax")
class Adamax(Optimizer):
    """m <- β₁ m + (1 - β₁) g,  u <- max(β₂ u, |g|),  θ <- θ - η/(1 - β₁ᵗ) · m / (u + ε).

    The running maximum u replaces Adam's √v, so a step is bounded by η/(1 - β₁ᵗ).
    (PyTorch adds ε inside the maximum instead; the two agree to O(ε).)
    """

    slot_names = ("m", "u")
    nonnegative_slots = ("u",)

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = self.check_decay_rate(beta_1, "beta_1")
        self.beta_2 = self.check_decay_rate(beta_2, "beta_2")
        self.epsilon = self.check_epsilon(epsilon)

    def update(self, param: Any, grad: Any, lr: float, slots: dict[str, Any]) -> None:
        t = self.iterations + 1
        m, u = slots["m"], slots["u"]
        m *= self.beta_1
        m += (1.0 - self.beta_1) * grad
        u *= self.beta_2
        xp.maximum(u, xp.abs(grad), out=u)
        param -= (lr / (1.0 - self.beta_1**t)) * m / (u + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
