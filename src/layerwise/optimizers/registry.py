"""The registry of optimizer names."""

from ..registry import Registry
from .base import Optimizer

OPTIMIZERS: Registry[Optimizer] = Registry("optimizer", "optimizer", Optimizer)
