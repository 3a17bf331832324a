"""Optimizers: each update rule is one class in one file of this package.

``get("adam")`` resolves a name; a new optimizer is a subclass of :class:`Optimizer` in a new
file, registered with ``@OPTIMIZERS.register("name")`` and imported here. Learning-rate
schedules are in :mod:`layerwise.optimizers.schedules`.
"""

from typing import Any

from . import schedules
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .base import Optimizer
from .lion import Lion
from .nadam import Nadam
from .registry import OPTIMIZERS
from .rmsprop import RMSprop
from .sgd import SGD, Momentum

__all__ = [
    "OPTIMIZERS", "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Lion", "Momentum",
    "Nadam", "Optimizer", "RMSprop", "get", "names", "schedules", "serialize",
]  # fmt: skip


def get(identifier: Any) -> Optimizer:
    """Resolve a name (``"adam"``), config dict, class or instance to an optimizer."""
    return OPTIMIZERS.get(identifier, "optimizer")


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": ..., "config": ...}`` of an optimizer, which ``get`` turns back into one."""
    return OPTIMIZERS.serialize(optimizer)


def names() -> list[str]:
    """Every registered optimizer name and alias, sorted (what ``get`` accepts)."""
    return OPTIMIZERS.names()
