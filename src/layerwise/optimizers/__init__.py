"""Optimizers: each update rule is one class in one file of this package.

``get("adam")`` resolves a name; a new optimizer is a subclass of :class:`Optimizer` in a new
file, registered with ``@OPTIMIZERS.register("name")`` and imported here. Learning-rate
schedules are in :mod:`layerwise.optimizers.schedules`.
"""

from typing import Any

from . import schedules
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .base import Optimizer
from .registry import OPTIMIZERS
from .rmsprop import RMSprop
from .sgd import SGD, Momentum

__all__ = [
    "OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "Momentum", "Optimizer", "RMSprop", "get",
    "names", "schedules", "serialize",
]  # fmt: skip


def get(identifier: Any) -> Optimizer:
    """Resolve a name (``"adam"``), config dict, class or instance to an optimizer."""
    return OPTIMIZERS.get(identifier, "optimizer")


def serialize(optimizer: Optimizer) -> dict:
    return OPTIMIZERS.serialize(optimizer)


def names() -> list[str]:
    return OPTIMIZERS.names()
