"""Learning-rate schedules (SPEC §6: learning-rate decay), usable as ``learning_rate=``.

A schedule maps the optimizer's step count (0 for the first update) to a learning rate:
``Adam(learning_rate=ExponentialDecay(0.01, decay_steps=100, decay_rate=0.5))``.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from ..registry import Configurable, Registry

__all__ = [
    "LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
    "CosineDecay", "get", "serialize",
]  # fmt: skip


class LearningRateSchedule(Configurable):
    """Base class: ``schedule(step) -> learning rate``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError


SCHEDULES: Registry[LearningRateSchedule] = Registry(
    "learning-rate schedule", "learning_rate", LearningRateSchedule
)


def _positive(value: float, argument: str) -> float:
    if not value > 0:
        raise ValueError(f"`{argument}` must be positive. Received: {argument}={value!r}")
    return float(value)


class _Decay(LearningRateSchedule):
    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False) -> None:
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _positive(decay_steps, "decay_steps")
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def _progress(self, step: int) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


@SCHEDULES.register("exponential_decay")
class ExponentialDecay(_Decay):
    """η(t) = η₀ · r^(t / T); with ``staircase=True`` the exponent is ⌊t / T⌋ (step decay)."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


@SCHEDULES.register("inverse_time_decay")
class InverseTimeDecay(_Decay):
    """η(t) = η₀ / (1 + r · t / T); with ``staircase=True``, t / T is rounded down."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


@SCHEDULES.register("piecewise_constant_decay", "step_decay")
class PiecewiseConstantDecay(LearningRateSchedule):
    """Step decay: ``values[0]`` for t <= boundaries[0], ``values[1]`` for
    boundaries[0] < t <= boundaries[1], ..., ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries: list[int], values: list[float]) -> None:
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                "`values` must have one more entry than `boundaries`. Received: "
                f"{len(boundaries)} boundaries and {len(values)} values"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"`boundaries` must increase. Received: boundaries={boundaries}")
        self.boundaries = [int(b) for b in boundaries]
        self.values = [_positive(v, "values") for v in values]

    def __call__(self, step: int) -> float:
        return self.values[bisect.bisect_left(self.boundaries, step)]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values}


@SCHEDULES.register("cosine_decay")
class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warm-up (SGDR without restarts).

    With ``warmup_steps`` W and ``warmup_target`` η_w, η rises linearly from η₀ to η_w over
    W steps; then, for s = min(t - W, T) over ``decay_steps`` T,
    η = η_peak · ((1 - α) · ½(1 + cos(π s / T)) + α), η_peak being η_w (or η₀ without
    warm-up) and α (``alpha``) the final fraction.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0) -> None:
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _positive(decay_steps, "decay_steps")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha}")
        if warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0. Received: warmup_steps={warmup_steps}")
        self.alpha = float(alpha)
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        peak = self.initial_learning_rate
        if self.warmup_target is not None:
            if step < self.warmup_steps:
                return peak + (self.warmup_target - peak) * step / self.warmup_steps
            peak = self.warmup_target
        s = min(max(step - self.warmup_steps, 0), self.decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * s / self.decay_steps))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


def get(identifier: Any) -> LearningRateSchedule:
    """Resolve a config dict or instance to a schedule."""
    return SCHEDULES.get(identifier, "learning_rate")


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` of a schedule, which ``get`` turns back into one."""
    return SCHEDULES.serialize(schedule)
