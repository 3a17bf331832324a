"""Adagrad: per-parameter step sizes shrinking with the accumulated squared gradient."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import Optimizer
from .chunked import CHUNK, chunks
from .registry import OPTIMIZERS


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), RMSProp's ancestor, with PyTorch's update rule:

    G <- G + g²;  θ <- θ - η g / (√G + ε).

    Every parameter gets its own effective step η/√G, large for rarely-updated parameters;
    since G only grows, the steps only shrink.
    """

    slot_names = ("accumulator",)
    nonnegative_slots = ("accumulator",)

    def __init__(
        self,
        learning_rate: Any = 0.01,
        initial_accumulator_value: float = 0.0,
        epsilon: float = 1e-10,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if initial_accumulator_value < 0:
            raise ValueError(
                "`initial_accumulator_value` must be >= 0. Received: "
                f"initial_accumulator_value={initial_accumulator_value}"
            )
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = self.check_epsilon(epsilon)

    def initialize_slots(self) -> None:
        for acc in self.slots["accumulator"]:
            acc += self.initial_accumulator_value

    def update(self, param: Any, grad: Any, lr: float, slots: dict[str, Any]) -> None:
        p, g, acc = param.reshape(-1), grad.reshape(-1), slots["accumulator"].reshape(-1)
        (work,) = self.scratch(min(p.shape[0], CHUNK), p.dtype)
        for part in chunks(p.shape[0]):
            pp, gg, aa = p[part], g[part], acc[part]
            w = xp.multiply(gg, gg, out=work[: pp.shape[0]])
            aa += w  # G <- G + g²
            xp.sqrt(aa, out=w)  # θ <- θ - η g / (√G + ε)
            w += self.epsilon
            xp.divide(gg, w, out=w)
            w *= lr
            pp -= w

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value}
