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

    formula_slots = ("accumulated_grad", "accumulated_delta")

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        return (lr, self.rho, self.epsilon)

    @staticmethod
    def formula(p: Any, g: Any, a: Any, d: Any, lr: Any, rho: float, eps: float
                ) -> tuple[Any, Any, Any]:
        a = rho * a + (1.0 - rho) * (g * g)
        delta = xp.sqrt(d + eps) / xp.sqrt(a + eps) * g
        d = rho * d + (1.0 - rho) * (delta * delta)
        return p - lr * delta, a, d

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
