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

    ``initial_accumulator`` chooses where s starts:

    - ``"zeros"`` (default; PyTorch and Keras): s⁰ = 0, so the first step is
      s¹ = (1 - ρ) g¹², θ¹ = θ⁰ - η g¹ / (√(1 - ρ) |g¹| + ε): about 3.16 η for ρ = 0.9.
    - ``"first_gradient"`` (seed 002, Hung-yi Lee's lecture: "在第一个时间点,σ就是第一个算出来
      GD的值"): σ¹ = |g¹|, that is s¹ = g¹², and σᵗ = √(ρ (σᵗ⁻¹)² + (1 - ρ) (gᵗ)²) after;
      the first step is η g¹ / (|g¹| + ε) ≈ η.
    """

    nonnegative_slots = ("square_avg",)

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-8,
        centered: bool = False,
        initial_accumulator: str = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"`rho` must be in [0, 1). Received: rho={rho}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum}")
        self.rho, self.momentum = float(rho), float(momentum)
        self.epsilon = self.check_epsilon(epsilon)
        self.centered = bool(centered)
        if initial_accumulator not in ("zeros", "first_gradient"):
            raise ValueError("`initial_accumulator` must be 'zeros' or 'first_gradient'. "
                             f"Received: initial_accumulator={initial_accumulator!r}")
        if initial_accumulator == "first_gradient" and self.centered:
            raise ValueError("initial_accumulator='first_gradient' is the seed's uncentered "
                             "rule; with centered=True the first variance would be 0.")
        self.initial_accumulator = initial_accumulator
        self.slot_names = ("square_avg",) + (("grad_avg",) if centered else ()) + (
            ("momentum_buffer",) if momentum else ())

    formula_slots = ("square_avg", "grad_avg", "momentum_buffer")

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        first = 1.0 * (t == 1) if self.initial_accumulator == "first_gradient" else 0.0
        return (lr, self.rho, self.epsilon, self.momentum, float(self.centered), first)

    @staticmethod
    def formula(p: Any, g: Any, s: Any, m: Any, b: Any, lr: Any, rho: float, eps: float,
                momentum: float, centered: float, first: Any) -> tuple[Any, Any, Any, Any]:
        g2 = g * g
        if first:  # the seed's σ¹ = |g¹|: s¹ = g¹²
            s = g2
        else:  # s <- ρ s + (1 - ρ) g²
            s = rho * s + (1.0 - rho) * g2
        if centered:  # m <- ρ m + (1 - ρ) g;  d = √(s - m²) + ε
            m = rho * m + (1.0 - rho) * g
            d = xp.sqrt(s - m * m) + eps
        else:  # d = √s + ε
            d = xp.sqrt(s) + eps
        if momentum:  # b <- μ b + g / d;  θ <- θ - η b
            b = momentum * b + g / d
            return p - lr * b, s, m, b
        return p - lr * (g / d), s, m, b

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                  "epsilon": self.epsilon, "centered": self.centered}
        if self.initial_accumulator != "zeros":
            config["initial_accumulator"] = self.initial_accumulator
        return config
