"""The ``Layer`` base class: what every layer knows and nothing more.

A layer owns its ``build(input_dim)``, ``forward(x, training)``, ``backward(dy)``, its
parameters and their gradients, and its ``get_config``. Parameters live in ``self.params``
and gradients in ``self.grads``, two dicts with the same keys in Keras's weight order
(kernel, then bias, then any other array). ``backward`` writes each parameter's gradient into
its preallocated array in ``self.grads`` and returns dL/d(input); an optimizer then updates
``(params[k], grads[k])`` pairs in place.

What a layer remembers of the current batch (``_x``, ``_z``, ``_y``, masks, its reused
buffers) lives on the layer. A model serving ``predict`` from many threads at once gives each
concurrent call its own ``inference_copy()`` of the layers: the parameters are shared, the
per-batch state is the call's own. Training a model stays single-threaded.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import defaultdict
from typing import Any

import numpy as np

from .. import initializers, regularizers
from ..backend import floatx, to_numpy, xp
from ..registry import Registry

__all__ = ["LAYERS", "Layer", "check_float_dtype", "check_positive_int"]

_NAME_COUNTERS: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)


def _snake(name: str) -> str:
    """Dense -> dense, LeakyReLU -> leaky_relu, PReLU -> p_relu."""
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def check_positive_int(value: Any, argument: str) -> int:
    """``value`` as an int, or a ValueError in Keras's form naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{argument}` must be a positive integer. Received: {argument}={value!r}")
    return int(value)


def check_float_dtype(dtype: Any, argument: str = "dtype") -> str:
    """The name of a float dtype (float16, float32, float64), or a clear error."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.kind != "f" or resolved.itemsize > 8:
        raise ValueError(f"`{argument}` must be a float dtype: 'float16', 'float32' or "
                         f"'float64'. Received: {argument}={dtype!r}")
    return resolved.name


#: the per-batch attributes layers cache between forward and backward
_BATCH_ATTRIBUTES = ("_x", "_z", "_y", "_mask", "_slope", "_positive", "_argmax")


class Layer:
    """Base class of all layers.

    Args:
        name: unique name shown in ``summary()``; generated from the class name by default.
        dtype: float dtype of parameters and outputs; ``layerwise.backend.floatx()`` by default.
        input_dim: number of input features, for the first layer of a model.
        input_shape: ``(input_dim,)``, Keras's spelling of the same.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        dtype: str | None = None,
        input_dim: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        trainable: bool = True,
    ) -> None:
        base = _snake(type(self).__name__)
        count = next(_NAME_COUNTERS[base])
        self.name = name or (base if count == 0 else f"{base}_{count}")
        self.dtype = check_float_dtype(dtype or floatx())
        if input_shape is not None:
            shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
            if shape is None or len(shape) != 1:
                raise ValueError(
                    "`input_shape` must be a 1-tuple (features,) for a dense network. "
                    f"Received: input_shape={input_shape!r}"
                )
            if input_dim is not None and input_dim != shape[0]:
                raise ValueError(
                    f"`input_dim` and `input_shape` disagree. Received: input_dim={input_dim}, "
                    f"input_shape={input_shape}"
                )
            input_dim = shape[0]
        self.input_dim: int | None = (
            None if input_dim is None else check_positive_int(input_dim, "input_dim")
        )
        self._declared_input_dim = self.input_dim  # what the user gave, kept in the config
        self.output_dim: int | None = None
        self.built = False
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        #: parameter name -> Regularizer; the model adds their penalties and gradients
        self.regularizers: dict[str, regularizers.Regularizer] = {}
        #: False when nothing needs dL/d(input) (the first layer): backward may skip it
        self.input_gradient = True
        #: False freezes the layer: fit leaves its parameters as they are (as in Keras,
        #: the change takes effect at the next fit, with the optimizer's state started
        #: afresh for the new set of parameters)
        self.trainable = bool(trainable)
        #: set by the model inside its own loops: outputs and gradients may then live in
        #: buffers this layer reuses from batch to batch, instead of new arrays
        self.reuse_buffers = False
        self._buffers: dict[str, Any] = {}

    # -- structure -----------------------------------------------------------------------
    def compute_output_dim(self, input_dim: int) -> int:
        """Number of output features for ``input_dim`` input features (default: unchanged)."""
        return input_dim

    def build(self, input_dim: int) -> None:
        """Create the parameters for ``input_dim`` input features. Subclasses extend this."""
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.output_dim = self.compute_output_dim(self.input_dim)
        self.built = True

    def add_weight(
        self, name: str, shape: tuple[int, ...], initializer: Any, regularizer: Any = None
    ) -> Any:
        """Create parameter ``name`` with its zeroed gradient buffer; returns the parameter.

        When the layer is being loaded from a file, the stored array is used instead of the
        initialiser (no random draw), after checking that it has exactly ``shape``: a file
        cannot make the loader allocate more than the file holds.
        """
        preset = self.__dict__.get("_preset")
        if preset is not None:
            key = f"{self.__dict__.get('_preset_prefix', '')}{name}"
            value = preset.pop(name, None)
            if value is None:
                raise ValueError(f"layer {self.name!r} has a weight {name!r}, but no tensor "
                                 f"{key!r} is stored")
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"tensor {key!r} has shape {tuple(value.shape)}, but the "
                                 f"architecture needs {tuple(shape)}")
            self.params[name] = xp.array(value, dtype=self.dtype)  # a copy, ours alone
        else:
            self.params[name] = initializers.get(initializer)(shape, self.dtype)
        self.grads[name] = xp.zeros(shape, dtype=self.dtype)
        if regularizer is not None:
            self.regularizers[name] = regularizer
        return self.params[name]

    def buffer(self, name: str, shape: tuple[int, ...], dtype: Any = None) -> Any:
        """A scratch array of ``shape`` for this batch.

        With ``reuse_buffers`` (inside the model's loops) the same memory serves every batch:
        a buffer is allocated once for the largest batch and later batches use its first rows.
        Otherwise a new array is returned, so arrays handed to callers stay theirs.
        """
        dtype = dtype or self.dtype
        if not self.reuse_buffers:
            return xp.empty(shape, dtype=dtype)
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != shape[1:] \
                or buf.dtype != dtype:
            buf = self._buffers[name] = xp.empty(shape, dtype=dtype)
        return buf[: shape[0]]

    def release_buffers(self) -> None:
        """Drop the reused buffers and cached batch arrays (the model calls this after a loop)."""
        self._buffers.clear()
        for attr in _BATCH_ATTRIBUTES:
            if attr in self.__dict__:
                setattr(self, attr, None)

    def inference_copy(self) -> Layer:
        """A copy for one inference call running beside others: it shares this layer's
        parameters (the same arrays) and configuration, and has its own per-batch state and
        buffers. Layers that keep other per-batch state extend this."""
        clone = copy.copy(self)
        clone.reuse_buffers = False
        clone._buffers = {}
        for attr in _BATCH_ATTRIBUTES:
            clone.__dict__.pop(attr, None)
        return clone

    # -- computation ---------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        """Output for input ``x`` of shape ``(batch, input_dim)``; caches what backward needs."""
        raise NotImplementedError

    def backward(self, dy: Any) -> Any:
        """dL/d(input) from dL/d(output) ``dy``; fills ``self.grads`` for the last forward.

        With ``reuse_buffers`` set, ``dy`` may be overwritten. Returns None when
        ``input_gradient`` is False and the layer can skip the computation.
        """
        raise NotImplementedError

    def __call__(self, x: Any, training: bool = False) -> Any:
        if getattr(x, "_symbolic", False):  # the functional form: Dense(64)(inputs)
            return self._call_symbolic(x)
        if not self.built:
            self.build(x.shape[-1])
        return self.forward(x, training)

    def _call_symbolic(self, tensor: Any) -> Any:
        from .structure import KerasTensor

        if tensor.consumers:
            raise ValueError(
                f"Layer {self.name!r} is called on a tensor another layer already took: a "
                "branch. layerwise builds chains (Input -> layer -> layer -> output), the "
                "networks Sequential holds; branches, merges and several inputs are not "
                "supported.")
        tensor.consumers += 1
        features = 1
        for size in tensor.shape[1:]:
            features *= size
        if not self.built:
            self.build(features)
        elif self.input_dim != features:
            raise ValueError(f"Layer {self.name!r} was built for input_dim={self.input_dim}, "
                             f"but it is called on a tensor of {features} features.")
        return KerasTensor((self.output_dim,), (*tensor.layers, self), tensor.source)

    # -- weights -------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters, in Keras's order."""
        return [to_numpy(v).copy() for v in self.params.values()]

    def set_weights(self, weights: list[Any]) -> None:
        """Replace the parameters' values in place (shapes must match; a read-only
        parameter array is replaced by a new one)."""
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(
                f"Layer {self.name!r} expects {len(self.params)} weight arrays "
                f"({', '.join(self.params)}). Received: {len(weights)} arrays"
            )
        for (key, param), value in zip(self.params.items(), weights):
            value = to_numpy(value)
            if value.shape != param.shape:
                raise ValueError(
                    f"Weight {key!r} of layer {self.name!r} has shape {param.shape}. "
                    f"Received: shape {value.shape}"
                )
            if getattr(param, "flags", None) is not None and not param.flags.writeable:
                # read-only (e.g. unpickled from a joblib memmap): a new array of our own
                self.params[key] = xp.array(value, dtype=param.dtype)
                continue
            param[...] = xp.asarray(value, dtype=param.dtype)

    @property
    def weights(self) -> list[Any]:
        """The parameter arrays themselves (Keras's ``layer.weights``)."""
        return list(self.params.values())

    @property
    def trainable_weights(self) -> list[Any]:
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Any]:
        return [] if self.trainable else self.weights

    def get_constants(self) -> dict[str, Any]:
        """Non-trainable state computed from data (e.g. Normalization's mean and variance),
        which data-parallel training broadcasts from rank 0; {} for most layers."""
        return {}

    def set_constants(self, values: dict[str, Any]) -> None:
        """Set what ``get_constants`` returns (and rebuild what depends on it)."""
        if values:
            raise ValueError(f"Layer {self.name!r} has no constants. Received: "
                             f"{sorted(values)}")

    def count_params(self) -> int:
        """The number of parameters (weights and biases) of this layer."""
        return int(sum(p.size for p in self.params.values()))

    # -- config --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (not its weights)."""
        config: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if not self.trainable:
            config["trainable"] = False
        if self._declared_input_dim is not None:
            config["input_dim"] = self._declared_input_dim
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} output_dim={self.output_dim}>"


LAYERS: Registry[Layer] = Registry("layer", "layer", Layer)
