"""Optimizers: each update rule is one class in one file of this package.

``get("adam")`` resolves a name; a new optimizer is a subclass of :class:`Optimizer` in a new
file, registered with ``@OPTIMIZERS.register("name")`` and imported here.
"""

from typing import Any

from .base import Optimizer
from .registry import OPTIMIZERS
from .sgd import SGD

__all__ = ["OPTIMIZERS", "SGD", "Optimizer", "get", "names", "serialize"]


def get(identifier: Any) -> Optimizer:
    """Resolve a name (``"sgd"``), config dict, class or instance to an optimizer."""
    return OPTIMIZERS.get(identifier, "optimizer")


def serialize(optimizer: Optimizer) -> dict:
    return OPTIMIZERS.serialize(optimizer)


def names() -> list[str]:
    return OPTIMIZERS.names()
