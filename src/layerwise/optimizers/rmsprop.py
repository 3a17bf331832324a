"""RMSProp: steps divided by a running root-mean-square of recent gradients."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import Optimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSProp (Hinton, 2012) with PyTorch's update rule (``rho`` is PyTorch's ``alpha``):

    s <- ρ s + (1 - ρ) g²;  d = √s + ε;  θ <- θ - η g / d.

    Unlike Adagrad's ever-growing sum, the moving average forgets old gradients, so the step
    does not vanish. With ``centered=True`` the running mean m of g is tracked as well and
    d = √(s - m²) + ε (the variance, not the second moment). With ``momentum`` μ > 0:
    b <- μ b + g / d;  θ <- θ - η b.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-8,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"`rho` must be in [0, 1). Received: rho={rho}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum}")
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        self.slot_names = ("square_avg",) + (("grad_avg",) if centered else ()) + (
            ("momentum_buffer",) if momentum else ())

    def update(self, index: int, param: Any, grad: Any, lr: float) -> None:
        s = self.slots["square_avg"][index]
        s *= self.rho
        s += (1.0 - self.rho) * grad * grad
        if self.centered:
            m = self.slots["grad_avg"][index]
            m *= self.rho
            m += (1.0 - self.rho) * grad
            denom = xp.sqrt(s - m * m) + self.epsilon
        else:
            denom = xp.sqrt(s) + self.epsilon
        if self.momentum:
            b = self.slots["momentum_buffer"][index]
            b *= self.momentum
            b += grad / denom
            param -= lr * b
        else:
            param -= lr * grad / denom

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
