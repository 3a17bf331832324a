"""Layers that shape the input rather than compute on it: ``InputLayer`` (and ``Input``, its
symbolic tensor for the functional form) and ``Flatten``.

A layerwise network is a chain. ``Input(shape=(n,))`` starts one: calling a layer on it
returns the next symbolic tensor, and ``layerwise.Model(inputs, outputs)`` turns the chain
into the same network ``Sequential`` builds. Symbolic tensors carry no data; they only
remember the layers applied, in order, so that a graph that is not a chain (a branch, a
merge, several inputs) is refused with a message saying what is supported.
"""

from __future__ import annotations

import math
from typing import Any

from .base import LAYERS, Layer, check_positive_int


def _shape(shape: Any, argument: str) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape or any(
            s is None for s in shape):
        raise ValueError(f"`{argument}` must be a tuple of feature dimensions without the "
                         f"batch, e.g. (784,) or (28, 28). Received: {argument}={shape!r}")
    return tuple(check_positive_int(s, argument) for s in shape)


class KerasTensor:
    """The symbolic output of ``Input`` or of a layer called on one: a shape (without the
    batch) and the chain of layers that produced it."""

    _symbolic = True  # Layer.__call__ recognises it without importing this module

    def __init__(self, shape: tuple[int, ...], layers: tuple[Layer, ...] = (),
                 source: KerasTensor | None = None) -> None:
        self.shape = (None, *shape)
        self.layers = layers
        self.source = source or self  # the Input this chain starts from
        self.consumers = 0  # layers called on this tensor (a chain has at most one)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}>"


class _Rows(Layer):
    """Flattens each sample to a row (a view); the gradient passes back unchanged."""

    #: the model gives this layer, first, whole samples: ``(batch, 28, 28)`` images
    flattens_samples = True

    def forward(self, x: Any, training: bool = False) -> Any:
        return x.reshape(x.shape[0], -1) if x.ndim > 2 else x

    def backward(self, dy: Any) -> Any:
        return dy


@LAYERS.register("InputLayer")
class InputLayer(_Rows):
    """Declares the input's shape; passes its input through. ``Sequential([InputLayer(
    shape=(8,)), Dense(4)])`` equals ``Sequential([Dense(4, input_dim=8)])``."""

    def __init__(self, shape: Any = None, input_shape: Any = None, batch_size: Any = None,
                 **kwargs: Any) -> None:
        shape = shape if shape is not None else input_shape
        self.feature_shape = _shape(shape, "shape")
        features = math.prod(self.feature_shape)
        super().__init__(input_dim=features, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("input_dim", None)
        return {**config, "shape": list(self.feature_shape)}


def Input(shape: Any = None, batch_size: Any = None, name: str | None = None,
          dtype: Any = None) -> KerasTensor:
    """The start of a functional chain (or the first item of ``Sequential([...])``):
    ``Input(shape=(784,))``, with the shape of one sample."""
    layer = InputLayer(shape=shape, name=name, dtype=dtype)
    tensor = KerasTensor(layer.feature_shape, (layer,))
    tensor.input_layer = layer
    return tensor


@LAYERS.register("Flatten")
class Flatten(_Rows):
    """Flattens each sample: ``(batch, 28, 28)`` -> ``(batch, 784)``. As the first layer,
    ``Flatten(input_shape=(28, 28))`` declares the sample shape."""

    def __init__(self, input_shape: Any = None, **kwargs: Any) -> None:
        self.feature_shape = None if input_shape is None else _shape(input_shape,
                                                                     "input_shape")
        dim = None if self.feature_shape is None else math.prod(self.feature_shape)
        super().__init__(input_dim=kwargs.pop("input_dim", dim), **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.feature_shape is not None:
            config.pop("input_dim", None)
            config["input_shape"] = list(self.feature_shape)
        return config
