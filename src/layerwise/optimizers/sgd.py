"""Gradient descent, with the seed's momentum and Nesterov's variant."""

from __future__ import annotations

from typing import Any

from .base import Optimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("sgd", "gradient_descent")
class SGD(Optimizer):
    """Gradient descent θ <- θ - η∇L, optionally with momentum.

    With ``momentum`` λ > 0 (the seed's formula, v⁰ = 0):
    v <- λv - η∇L; θ <- θ + v.
    With ``nesterov=True`` the step looks ahead along the velocity: θ <- θ + λv - η∇L.
    With a constant η both equal PyTorch's ``torch.optim.SGD`` (whose buffer b = -v/η).

    Whether it is batch, stochastic or mini-batch gradient descent is set by ``fit``'s
    ``batch_size``, not here.
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("`nesterov=True` needs a momentum > 0. Received: momentum=0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slot_names = ("velocity",) if self.momentum else ()

    formula_slots = ("velocity",)

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        return (lr, self.momentum, float(self.nesterov))

    @staticmethod
    def formula(p: Any, g: Any, v: Any, lr: Any, momentum: float, nesterov: float
                ) -> tuple[Any, Any]:
        if not momentum:  # θ <- θ - η∇L
            return p - lr * g, v
        v = momentum * v - lr * g  # v <- λv - η∇L
        if nesterov:  # θ <- θ + λv - η∇L
            return p + momentum * v - lr * g, v
        return p + v, v  # θ <- θ + v

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@OPTIMIZERS.register("momentum")
class Momentum(SGD):
    """``SGD`` with the seed's momentum on by default (λ = 0.9); the string ``'momentum'``."""

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.9, nesterov: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
