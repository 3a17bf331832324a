"""The ``Optimizer`` interface: update ``(param, grad)`` pairs in place.

The model hands an optimizer two aligned lists, parameters and their gradients, once per
training step: ``optimizer.apply(params, grads)``. A new optimizer subclasses ``Optimizer``,
declares its per-parameter state in ``slot_names`` and writes ``update`` for one pair; it
never sees the model. Its state (the slots and the step count ``iterations``) is plain arrays,
inspectable through ``get_state()`` and restorable with ``set_state()``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import xp

__all__ = ["Optimizer"]


def _rescale(grad: Any, limit: float, norm: float) -> Any:
    return grad * (limit / norm) if norm > limit else grad


class Optimizer:
    """Base class of all optimizers.

    Args:
        learning_rate: step size η, a float or a schedule called with the step count.
        clipnorm: if set, each gradient array is rescaled to at most this L2 norm.
        clipvalue: if set, each gradient entry is clipped to [-clipvalue, clipvalue].
        global_clipnorm: if set, all gradients together are rescaled to at most this L2 norm
            (PyTorch's ``clip_grad_norm_``).
    """

    #: names of per-parameter state arrays, created as zeros like each parameter
    slot_names: tuple[str, ...] = ()

    def __init__(
        self,
        learning_rate: Any = 0.01,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
    ) -> None:
        if not callable(learning_rate):
            if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
                    or not math.isfinite(learning_rate) or learning_rate <= 0:
                raise ValueError(
                    "`learning_rate` must be a positive number or a schedule. "
                    f"Received: learning_rate={learning_rate!r}"
                )
            learning_rate = float(learning_rate)
        clips = (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                 ("global_clipnorm", global_clipnorm))
        for arg, value in clips:
            if value is not None and not value > 0:
                raise ValueError(f"`{arg}` must be positive or None. Received: {arg}={value!r}")
        self.learning_rate = learning_rate
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.iterations = 0
        self.slots: dict[str, list[Any]] = {}
        self.built = False

    @property
    def name(self) -> str:
        from .registry import OPTIMIZERS

        return OPTIMIZERS.name_of(type(self))

    def current_learning_rate(self) -> float:
        """η for the next step (a schedule is evaluated at ``iterations``)."""
        if callable(self.learning_rate):
            return float(self.learning_rate(self.iterations))
        return self.learning_rate

    def build(self, params: list[Any]) -> None:
        """Create the slots for ``params`` (called by the first ``apply``)."""
        self.slots = {name: [xp.zeros_like(p) for p in params] for name in self.slot_names}
        self.built = True

    def apply(self, params: list[Any], grads: list[Any]) -> None:
        """One update step of every ``params[i]`` from ``grads[i]``, in place."""
        if not self.built:
            self.build(params)
        if self.clipvalue is not None or self.clipnorm is not None or self.global_clipnorm:
            grads = self.clip(grads)
        lr = self.current_learning_rate()
        for i, (param, grad) in enumerate(zip(params, grads)):
            self.update(i, param, grad, lr)
        self.iterations += 1

    def update(self, index: int, param: Any, grad: Any, lr: float) -> None:
        """Update ``param`` in place from ``grad``; ``index`` selects this pair's slots."""
        raise NotImplementedError

    def clip(self, grads: list[Any]) -> list[Any]:
        """Clipped copies of ``grads``: by value, then per-array norm, then global norm."""
        if self.clipvalue is not None:
            grads = [xp.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            grads = [_rescale(g, self.clipnorm, float(xp.sqrt((g * g).sum()))) for g in grads]
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(float((g * g).sum()) for g in grads))
            grads = [_rescale(g, self.global_clipnorm, total) for g in grads]
        return grads

    # -- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """``{"iterations": int, "slots": {name: [array, ...]}}``, copies as NumPy arrays."""
        return {
            "iterations": self.iterations,
            "slots": {k: [np.array(a) for a in v] for k, v in self.slots.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned, so training continues exactly."""
        self.iterations = int(state["iterations"])
        self.slots = {k: [xp.asarray(a) for a in v] for k, v in state["slots"].items()}
        self.built = bool(self.slots) or not self.slot_names

    # -- config --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        lr = self.learning_rate
        if callable(lr) and hasattr(lr, "get_config"):
            from . import schedules

            lr = schedules.serialize(lr)
        return {"learning_rate": lr, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            from . import schedules

            config["learning_rate"] = schedules.get(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
