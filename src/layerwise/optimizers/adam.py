"""Adam (momentum + RMSProp, with bias correction) and AdamW (decoupled weight decay)."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import MomentOptimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("adam")
class Adam(MomentOptimizer):
    """Adam (Kingma & Ba, 2015) with PyTorch's update rule. At step t = 1, 2, ...:

    m <- β₁ m + (1 - β₁) g          (momentum: running mean of gradients)
    v <- β₂ v + (1 - β₂) g²         (RMSProp: running mean of squared gradients)
    θ <- θ - η/(1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)

    The factors 1/(1 - βᵗ) correct the bias of m and v towards their zero start. With
    ``amsgrad=True``, v is replaced by its running maximum, so the step never grows.

    ``epsilon_style="keras"`` adds ε to √v before the bias correction, as Keras, TensorFlow
    and scikit-learn's MLP do: θ <- θ - η√(1 - β₂ᵗ)/(1 - β₁ᵗ) · m / (√v + ε), which is the
    rule above with ε/√(1 - β₂ᵗ) in place of ε.
    """

    nonnegative_slots = ("v", "v_max")
    decays_itself = True  # θ <- θ (1 - η λ) inside the fused pass below

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        amsgrad: bool = False,
        epsilon_style: str = "pytorch",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.amsgrad = bool(amsgrad)
        if epsilon_style not in ("pytorch", "keras"):
            raise ValueError("`epsilon_style` must be 'pytorch' or 'keras'. Received: "
                             f"epsilon_style={epsilon_style!r}")
        self.epsilon_style = epsilon_style
        self.slot_names = ("m", "v", "v_max") if amsgrad else ("m", "v")

    formula_slots = ("m", "v", "v_max")

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        step = lr / (1.0 - self.beta_1**t)
        scale = 1.0 / (1.0 - self.beta_2**t) ** 0.5
        # ε as added to √v̂ (PyTorch), or to √v (Keras: the same as ε·scale added to √v̂)
        eps = self.epsilon * scale if self.epsilon_style == "keras" else self.epsilon
        return (step, scale, eps, 1.0 - lr * self.weight_decay, self.beta_1, self.beta_2,
                float(self.amsgrad))

    @staticmethod
    def formula(p: Any, g: Any, m: Any, v: Any, v_max: Any, step: Any, scale: Any, eps: Any,
                decay: Any, beta_1: float, beta_2: float, amsgrad: float
                ) -> tuple[Any, Any, Any, Any]:
        m = beta_1 * m + (1.0 - beta_1) * g  # momentum: running mean of g
        v = beta_2 * v + (1.0 - beta_2) * (g * g)  # RMSProp: running mean of g²
        if amsgrad:
            v_max = xp.maximum(v_max, v)
            root = xp.sqrt(v_max)
        else:
            root = xp.sqrt(v)
        # θ <- (1 - ηλ) θ - η/(1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)
        return decay * p - step * m / (root * scale + eps), m, v, v_max

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "amsgrad": self.amsgrad}
        if self.epsilon_style != "pytorch":
            config["epsilon_style"] = self.epsilon_style
        return config


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's ``AdamW``:

    θ <- θ (1 - η λ), then the Adam step. The decay acts on the weights directly instead of
    passing through the adaptive denominator, as an L2 penalty in the loss would.
    """

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.01,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay}")
        self.weight_decay = float(weight_decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight_decay": self.weight_decay}
