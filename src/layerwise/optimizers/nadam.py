"""Nadam: Adam with Nesterov momentum (Dozat, 2016), as Keras 3 and PyTorch's ``NAdam``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import xp
from .base import MomentOptimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("nadam")
class Nadam(MomentOptimizer):
    """Adam whose momentum looks one step ahead.

    With μ_t = β₁ (1 - ½·0.96^(0.004 t)) and Π_t = μ_1···μ_t::

        m <- β₁ m + (1 - β₁) g,   v <- β₂ v + (1 - β₂) g²
        θ <- θ - η [(1 - μ_t) g / (1 - Π_t) + μ_{t+1} m / (1 - Π_t μ_{t+1})]
                 / (√(v / (1 - β₂ᵗ)) + ε)
    """

    slot_names = ("m", "v")
    nonnegative_slots = ("v",)

    def _mu(self, t: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (0.004 * t))

    def _product(self, t: int) -> float:
        """Π_t, extended step by step from the last one (O(1) a step; after a resume or
        restore, computed once from the start: the file needs no extra state)."""
        known_t, known = self.__dict__.get("_known_product", (0, 1.0))
        if known_t > t:
            known_t, known = 0, 1.0
        for i in range(known_t + 1, t + 1):
            known *= self._mu(i)
        self._known_product = (t, known)
        return known

    formula_slots = ("m", "v")

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        if isinstance(t, np.ndarray):  # Π_t step by step
            product = np.array([self._product(int(i)) for i in t])
        else:
            product = self._product(t)
        mu, mu_next = self._mu(t), self._mu(t + 1)
        return (lr * (1.0 - mu) / (1.0 - product), lr * mu_next / (1.0 - product * mu_next),
                1.0 / (1.0 - self.beta_2**t), self.beta_1, self.beta_2, self.epsilon)

    @staticmethod
    def formula(p: Any, g: Any, m: Any, v: Any, c_g: Any, c_m: Any, c_v: Any, beta_1: float,
                beta_2: float, eps: float) -> tuple[Any, Any, Any]:
        m = beta_1 * m + (1.0 - beta_1) * g
        v = beta_2 * v + (1.0 - beta_2) * (g * g)
        denominator = xp.sqrt(v * c_v) + eps
        return p - c_g * g / denominator - c_m * m / denominator, m, v
