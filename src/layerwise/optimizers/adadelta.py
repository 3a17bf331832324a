"""Adadelta (Zeiler, 2012): steps in the units of the parameters, as Keras 3 and PyTorch."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import Optimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("adadelta")
class Adadelta(Optimizer):
    """With running means of squared gradients a and of squared steps d::

        a <- ρ a + (1 - ρ) g²
        Δ = √(d + ε) / √(a + ε) · g
        d <- ρ d + (1 - ρ) Δ²
        θ <- θ - η Δ

    The ratio of the two root mean squares gives each step the units of θ, so η = 1 is the
    paper's rule (Keras's default η is 0.001, PyTorch's 1.0).
    """

    slot_names = ("accumulated_grad", "accumulated_delta")
    nonnegative_slots = ("accumulated_grad", "accumulated_delta")

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"`rho` must be in [0, 1). Received: rho={rho}")
        self.rho = float(rho)
        self.epsilon = self.check_epsilon(epsilon)

    def update(self, param: Any, grad: Any, lr: float, slots: dict[str, Any]) -> None:
        a, d = slots["accumulated_grad"], slots["accumulated_delta"]
        a *= self.rho
        a += (1.0 - self.rho) * grad * grad
        delta = xp.sqrt(d + self.epsilon) / xp.sqrt(a + self.epsilon) * grad
        d *= self.rho
        d += (1.0 - self.rho) * delta * delta
        param -= lr * delta

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
