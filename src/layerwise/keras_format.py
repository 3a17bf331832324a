"""Keras 3's ``.keras`` files, both ways (``pip install 'layerwise[keras]'``, for h5py).

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (the architecture, in Keras's
serialisation) and ``model.weights.h5`` (each layer's variables under
``layers/<name>/vars/<i>``). ``model.save("m.keras")`` writes one that
``keras.models.load_model`` reads, and ``layerwise.models.load_model("m.keras")`` reads a
``Sequential`` of the layers both libraries have, written by Keras 3:

- Dense, Dropout, Activation, Softmax, LeakyReLU, ELU, PReLU, Flatten, InputLayer,
  Normalization and Rescaling;
- the activations whose formulas are the same in both: linear, relu, sigmoid, tanh,
  softmax, elu, selu, softplus, silu (swish), gelu, hard_sigmoid and mish.

Anything else is refused with a message naming the first layer or activation Keras and
layerwise do not share (Maxout and RReLU, which Keras lacks, stay in layerwise's safetensors
format). No code in a file is run: the configuration is read as data.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from typing import Any

import numpy as np

from .backend import to_numpy
from .utils import optional_import

__all__ = ["load_keras", "save_keras"]

#: layerwise activation name -> Keras's, for activations with the same formula in both
_ACTIVATIONS = {"linear": "linear", "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh",
                "softmax": "softmax", "elu": "elu", "selu": "selu", "softplus": "softplus",
                "silu": "silu", "gelu": "gelu", "hard_sigmoid": "hard_sigmoid",
                "mish": "mish"}
_FROM_KERAS = {**{v: k for k, v in _ACTIVATIONS.items()}, "swish": "silu"}
_KERAS_VERSION = "3.0.0"


def _h5py() -> Any:
    return optional_import("h5py", "Reading and writing .keras files", "keras")


def _dtype(name: str) -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _activation_name(activation: Any, where: str) -> str:
    name = getattr(activation, "name", None)
    config = activation.get_config() if hasattr(activation, "get_config") else {}
    if name == "gelu" and config.get("approximate"):
        raise ValueError(f"{where}: gelu(approximate=True) has no Keras activation name; "
                         "save to layerwise's .safetensors format instead.")
    if name not in _ACTIVATIONS:
        raise ValueError(f"{where}: the activation {name!r} is not one Keras shares with "
                         "layerwise; save to layerwise's .safetensors format instead.")
    return _ACTIVATIONS[name]


def _layer_config(layer: Any, index: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Keras's config of ``layer`` and its variables in Keras's order."""
    kind = type(layer).__name__
    base = {"name": layer.name, "trainable": layer.trainable, "dtype": _dtype(layer.dtype)}
    where = f"layer {index} ({layer.name!r}, {kind})"
    weights = [to_numpy(w) for w in layer.params.values()]
    if kind == "Dense":
        config = {**base, "units": layer.units,
                  "activation": _activation_name(layer.activation, where),
                  "use_bias": layer.use_bias, "kernel_initializer": None,
                  "bias_initializer": None, "kernel_regularizer": None,
                  "bias_regularizer": None, "kernel_constraint": None,
                  "bias_constraint": None}
    elif kind == "Dropout":
        config = {**base, "rate": layer.rate, "seed": layer.seed, "noise_shape": None}
    elif kind == "Activation":
        config = {**base, "activation": _activation_name(layer.activation, where)}
    elif kind == "Softmax":
        config = {**base, "axis": -1}
    elif kind == "LeakyReLU":
        config = {**base, "negative_slope": layer.activation.negative_slope}
    elif kind == "ELU":
        config = {**base, "alpha": layer.activation.alpha}
    elif kind == "PReLU":
        config = {**base, "alpha_initializer": None, "alpha_regularizer": None,
                  "alpha_constraint": None, "shared_axes": None}
    elif kind == "Flatten":
        config = {**base, "data_format": "channels_last"}
    elif kind == "Rescaling":
        config = {**base, "scale": layer.scale, "offset": layer.offset}
    elif kind == "Normalization":
        if layer.mean is None:
            raise ValueError(f"{where} has no statistics: adapt() it before saving.")
        axis = -1 if layer.axis == -1 else None
        config = {**base, "axis": axis, "invert": False, "mean": None, "variance": None}
        shape = (layer.input_dim,) if axis == -1 else ()
        mean = np.broadcast_to(layer.mean, shape) if shape else layer.mean.reshape(())
        variance = np.broadcast_to(layer.variance, shape) if shape else \
            layer.variance.reshape(())
        weights = [np.asarray(mean, dtype=np.float32), np.asarray(variance, dtype=np.float32),
                   np.asarray(0, dtype=np.int64)]
    else:
        raise ValueError(f"{where}: Keras has no {kind} layer, so this model cannot be saved "
                         "as .keras; save it to layerwise's .safetensors format instead.")
    return {"module": "keras.layers", "class_name": kind, "config": config,
            "registered_name": None}, weights


def save_keras(model: Any, path: str) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file (atomically)."""
    from .saving import atomic_write

    h5py = _h5py()
    if not model.built:
        raise ValueError("The model is not built: build it before saving.")
    first = model.layers[0]
    shape = list(getattr(first, "feature_shape", None) or (model.input_dim,))
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, *shape], "dtype": model.dtype,
                          "sparse": False, "name": "input_layer"},
               "registered_name": None}]
    variables = []
    kept = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    for layer, keras_path in zip(kept, _keras_paths([type(x).__name__ for x in kept])):
        config, weights = _layer_config(layer, model.layers.index(layer))
        layers.append(config)
        variables.append((keras_path, weights))
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": model.name, "trainable": True, "dtype": _dtype(model.dtype),
                         "layers": layers},
              "registered_name": None, "build_config": {"input_shape": [None, *shape]}}
    weights_file = io.BytesIO()
    with h5py.File(weights_file, "w") as h5:
        group = h5.create_group("layers")
        for name, weights in variables:
            holder = group.create_group(name).create_group("vars")
            for i, weight in enumerate(weights):
                holder.create_dataset(str(i), data=weight)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("metadata.json", json.dumps(
            {"keras_version": _KERAS_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights_file.getvalue())
    atomic_write(path, archive.getvalue())


def _snake(name: str) -> str:
    """Keras's snake case of a class name: LeakyReLU -> leaky_re_lu, PReLU -> p_re_lu."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_paths(kinds: list[str]) -> list[str]:
    """Where Keras keeps each layer's variables: its class in snake case, numbered from the
    second of a class on (dense, dense_1, ...), whatever the layers are named."""
    counters: dict[str, int] = {}
    paths = []
    for kind in kinds:
        snake = _snake(kind)
        count = counters.get(snake, 0)
        counters[snake] = count + 1
        paths.append(snake if count == 0 else f"{snake}_{count}")
    return paths


def _keras_activation(value: Any, where: str) -> str:
    if isinstance(value, dict):
        value = value.get("config", {}).get("name") or value.get("class_name")
    if not isinstance(value, str) or value.lower() not in _FROM_KERAS:
        raise ValueError(f"{where}: the activation {value!r} is not one layerwise shares with "
                         "Keras.")
    return _FROM_KERAS[value.lower()]


def load_keras(path: str, compile: bool = True) -> Any:
    """Read a ``.keras`` file written by Keras 3 (a Sequential of shared layers)."""
    from .layers import (
        ELU,
        Activation,
        Dense,
        Dropout,
        Flatten,
        InputLayer,
        LeakyReLU,
        Normalization,
        PReLU,
        Rescaling,
        Softmax,
    )
    from .models import Sequential

    h5py = _h5py()
    try:
        with zipfile.ZipFile(os.fspath(path)) as zf:
            config = json.loads(zf.read("config.json"))
            weights_bytes = zf.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable .keras file: {exc}") from None
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        raise ValueError(f"{path}: layerwise reads Sequential .keras models; this one is "
                         f"{config.get('class_name') if isinstance(config, dict) else config!r}.")
    layer_configs = config.get("config", {}).get("layers", [])
    layers: list[Any] = []
    pending_weights: list[tuple[Any, str, str]] = []  # (layer, its name, Keras's path name)
    input_shape = None
    kinds = [item.get("class_name", "") if isinstance(item, dict) else "" for item in
             layer_configs]
    paths = iter(_keras_paths([k for k in kinds if k != "InputLayer"]))
    for index, item in enumerate(layer_configs):
        kind = item.get("class_name") if isinstance(item, dict) else None
        options = item.get("config", {}) if isinstance(item, dict) else {}
        name = options.get("name")
        where = f"{path}: layer {index} ({name!r}, {kind})"
        keras_path = "" if kind == "InputLayer" else next(paths)
        common = {"name": name} if isinstance(name, str) else {}
        if kind == "InputLayer":
            shape = options.get("batch_shape") or [None, *options.get("shape", [])]
            input_shape = tuple(shape[1:])
            layers.append(InputLayer(shape=input_shape, **common))
            continue
        if kind == "Dense":
            layer = Dense(int(options["units"]),
                          activation=_keras_activation(options.get("activation"), where),
                          use_bias=bool(options.get("use_bias", True)), **common)
        elif kind == "Dropout":
            layer = Dropout(float(options.get("rate", 0.0)), **common)
        elif kind == "Activation":
            layer = Activation(_keras_activation(options.get("activation"), where), **common)
        elif kind == "Softmax":
            layer = Softmax(**common)
        elif kind == "LeakyReLU":
            layer = LeakyReLU(float(options.get("negative_slope", 0.3)), **common)
        elif kind == "ELU":
            layer = ELU(float(options.get("alpha", 1.0)), **common)
        elif kind == "PReLU":
            layer = PReLU(**common)
        elif kind == "Flatten":
            layer = Flatten(**common)
        elif kind == "Rescaling":
            layer = Rescaling(float(options.get("scale", 1.0)),
                              float(options.get("offset", 0.0)), **common)
        elif kind == "Normalization":
            axis = options.get("axis", -1)
            axis = -1 if axis in (-1, [-1], 1, [1]) else None
            layer = Normalization(mean=[0.0], variance=[1.0], axis=axis, **common)
        else:
            raise ValueError(f"{where}: layerwise has no {kind} layer; it reads Sequential "
                             "models of Dense, Dropout, activations, Normalization, Flatten, "
                             "Rescaling and InputLayer.")
        layers.append(layer)
        pending_weights.append((layer, name or "", keras_path))
    model = Sequential(layers, name=config.get("config", {}).get("name"))
    if not model.built and input_shape is not None:
        model.build(int(np.prod(input_shape)))
    with h5py.File(io.BytesIO(weights_bytes), "r") as h5:
        group = h5.get("layers")
        for layer, name, keras_path in pending_weights:
            holder = None
            for candidate in (keras_path, name):
                if group is not None and candidate in group and "vars" in group[candidate]:
                    holder = group[candidate]["vars"]
                    break
            values = [] if holder is None else [np.asarray(holder[str(i)])
                                                for i in range(len(holder))]
            _set_layer_weights(layer, values, path)
    return model


def _set_layer_weights(layer: Any, values: list[np.ndarray], path: str) -> None:
    kind = type(layer).__name__
    if kind == "Normalization":
        if len(values) < 2:
            raise ValueError(f"{path}: Normalization {layer.name!r} has no mean and variance.")
        layer.set_constants({"mean": np.atleast_1d(values[0]).astype(np.float64),
                             "variance": np.atleast_1d(values[1]).astype(np.float64)})
        return
    if len(values) != len(layer.params):
        raise ValueError(f"{path}: layer {layer.name!r} holds {len(values)} weight arrays; "
                         f"layerwise's {kind} has {len(layer.params)}.")
    for value in values:
        if not np.isfinite(value).all():
            raise ValueError(f"{path}: layer {layer.name!r} holds NaN or infinite weights.")
    if kind == "PReLU":
        values = [v.reshape(-1) for v in values]
    layer.set_weights(values)
