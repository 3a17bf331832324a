"""Layers: ``Dense``, ``Maxout``, and activations as layers.

A new layer is one class in one file of this package, registered with
``@LAYERS.register("Name")`` and imported here.
"""

from .activation_layers import ELU, Activation, LeakyReLU, PReLU, RReLU, Softmax
from .base import LAYERS, Layer
from .dense import Dense
from .dropout import Dropout
from .maxout import Maxout
from .preprocessing import Normalization, Rescaling
from .structure import Flatten, Input, InputLayer, KerasTensor

__all__ = [
    "ELU",
    "Activation",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "LeakyReLU",
    "Maxout",
    "Normalization",
    "PReLU",
    "RReLU",
    "Rescaling",
    "Softmax",
    "deserialize",
    "get",
    "serialize",
]  # fmt: skip


def get(identifier: object) -> Layer:
    """A layer from a config dict ``{"class_name": ..., "config": ...}`` or an instance."""
    return LAYERS.get(identifier, "layer")


def serialize(layer: Layer) -> dict:
    """``{"class_name": ..., "config": ...}`` of a layer (the inverse of ``deserialize``)."""
    return LAYERS.serialize(layer)


def deserialize(config: dict) -> Layer:
    """A new layer from the dict ``serialize`` wrote."""
    return LAYERS.from_config(config)
