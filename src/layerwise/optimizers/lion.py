"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"), as Keras 3."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import Optimizer
from .registry import OPTIMIZERS


@OPTIMIZERS.register("lion")
class Lion(Optimizer):
    """θ <- θ - η sign(β₁ m + (1 - β₁) g),  then  m <- β₂ m + (1 - β₂) g.

    Every coordinate moves by exactly η (or 0): the update has the size of the learning
    rate, so Lion wants an η 3-10x smaller than Adam's.
    """

    slot_names = ("m",)

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = self.check_decay_rate(beta_1, "beta_1", closed=True)
        self.beta_2 = self.check_decay_rate(beta_2, "beta_2", closed=True)

    formula_slots = ("m",)

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        return (lr, self.beta_1, self.beta_2)

    @staticmethod
    def formula(p: Any, g: Any, m: Any, lr: Any, beta_1: float, beta_2: float
                ) -> tuple[Any, Any]:
        p = p - lr * xp.sign(beta_1 * m + (1.0 - beta_1) * g)
        return p, beta_2 * m + (1.0 - beta_2) * g

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
