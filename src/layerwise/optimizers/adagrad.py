"""Adagrad: per-parameter step sizes shrinking with the accumulated squared gradient."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import Optimizer
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

    formula_slots = ("accumulator",)

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        return (lr, self.epsilon)

    @staticmethod
    def formula(p: Any, g: Any, acc: Any, lr: Any, eps: float) -> tuple[Any, Any]:
        acc = acc + g * g  # G <- G + g²
        return p - lr * g / (xp.sqrt(acc) + eps), acc  # θ <- θ - η g / (√G + ε)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value}
