"""Export to ONNX, so ONNX Runtime (or any ONNX runtime) can serve a layerwise model.

``to_onnx(model, "model.onnx")`` writes the inference graph with standard operators only:
Gemm for Dense (MatMul + Add for Maxout's grouped units), then Relu, LeakyRelu, PRelu, Elu,
Selu, Sigmoid, Tanh, Softmax, Softplus, HardSigmoid, Gelu, Mish, Hardmax, Sigmoid·x for
SiLU; Maxout is Reshape + ReduceMax; Dropout is removed (it is the identity at inference)
and RReLU becomes LeakyRelu with the mean slope. The input is ``input`` of shape
``(batch, features)`` with a dynamic batch dimension, the output ``output``. Needs the
optional ``onnx`` package: ``pip install 'layerwise[onnx]'``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .utils import optional_import

__all__ = ["to_onnx", "DEFAULT_OPSET"]

#: opset 20 has Gelu; 18 has ReduceMax with axes as an input and Mish
DEFAULT_OPSET = 20


def _onnx() -> Any:
    return optional_import("onnx", "ONNX export", "onnx")


class _Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx, self.dtype = onnx, dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: Any, dtype: Any = None) -> str:
        array = np.asarray(value, dtype=dtype or self.dtype)
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attributes: Any) -> str:
        out = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out,
                                                     **attributes))
        return out


def _activation(graph: _Graph, activation: Any, x: str, hint: str) -> str:
    from . import activations as acts

    kind = type(activation)
    if kind is acts.Linear:
        return x
    simple = {acts.Sigmoid: "Sigmoid", acts.Tanh: "Tanh", acts.ReLU: "Relu",
              acts.Softplus: "Softplus", acts.Mish: "Mish", acts.Exponential: "Exp"}
    if kind in simple:
        return graph.op(simple[kind], [x], hint)
    if kind is acts.SELU:
        return graph.op("Selu", [x], hint, alpha=acts.SELU.alpha, gamma=acts.SELU.scale)
    if kind is acts.LeakyReLU:
        return graph.op("LeakyRelu", [x], hint, alpha=activation.negative_slope)
    if kind is acts.ELU:
        return graph.op("Elu", [x], hint, alpha=activation.alpha)
    if kind is acts.Softmax:
        return graph.op("Softmax", [x], hint, axis=-1)
    if kind is acts.Hardmax:
        return graph.op("Hardmax", [x], hint, axis=-1)
    if kind is acts.HardSigmoid:
        return graph.op("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)
    if kind is acts.GELU:
        return graph.op("Gelu", [x], hint,
                        approximate="tanh" if activation.approximate else "none")
    if kind is acts.SiLU:
        return graph.op("Mul", [x, graph.op("Sigmoid", [x], hint)], hint)
    raise ValueError(f"Activation {activation!r} has no ONNX equivalent (a custom Python "
                     "function cannot be exported).")


def _layer(graph: _Graph, layer: Any, x: str) -> str:
    from . import layers as lw_layers

    hint = layer.name
    if isinstance(layer, lw_layers.Maxout):
        z = graph.op("MatMul", [x, graph.const(f"{hint}_kernel", layer.params["kernel"])], hint)
        if layer.use_bias:
            z = graph.op("Add", [z, graph.const(f"{hint}_bias", layer.params["bias"])], hint)
        shape = graph.const(f"{hint}_shape", [-1, layer.units, layer.pieces], np.int64)
        groups = graph.op("Reshape", [z, shape], hint)
        axes = graph.const(f"{hint}_axes", [-1], np.int64)
        return graph.op("ReduceMax", [groups, axes], hint, keepdims=0)
    if isinstance(layer, lw_layers.Dense):
        inputs = [x, graph.const(f"{hint}_kernel", layer.params["kernel"])]
        if layer.use_bias:
            inputs.append(graph.const(f"{hint}_bias", layer.params["bias"]))
        z = graph.op("Gemm", inputs, hint)
        return _activation(graph, layer.activation, z, hint)
    if isinstance(layer, lw_layers.PReLU):
        return graph.op("PRelu", [x, graph.const(f"{hint}_alpha", layer.params["alpha"])], hint)
    if isinstance(layer, lw_layers.RReLU):
        return graph.op("LeakyRelu", [x], hint, alpha=(layer.lower + layer.upper) / 2.0)
    if isinstance(layer, lw_layers.Activation):
        return _activation(graph, layer.activation, x, hint)
    if isinstance(layer, lw_layers.Dropout):
        return x
    if isinstance(layer, lw_layers.Normalization):
        shifted = graph.op("Sub", [x, graph.const(f"{hint}_mean", layer.mean)], hint)
        inv_std = 1.0 / np.sqrt(layer.variance + 1e-7)
        return graph.op("Mul", [shifted, graph.const(f"{hint}_inv_std", inv_std)], hint)
    if isinstance(layer, lw_layers.Rescaling):
        scaled = graph.op("Mul", [x, graph.const(f"{hint}_scale", layer.scale)], hint)
        return graph.op("Add", [scaled, graph.const(f"{hint}_offset", layer.offset)], hint)
    raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) has no ONNX export.")


def to_onnx(model: Any, path: str | os.PathLike[str] | None = None, opset: int | None = None
            ) -> Any:
    """Convert a built ``Sequential`` to an ONNX ``ModelProto``; write it to ``path`` if given.

    The model is checked with ``onnx.checker.check_model``; the file is written atomically.
    """
    onnx = _onnx()
    if not model.built:
        raise ValueError("The model is not built: fit it or call build(input_dim) first.")
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset < 18:
        raise ValueError(f"`opset` must be >= 18 (ReduceMax with axes as an input, Mish). "
                         f"Received: opset={opset}")
    dtype = np.dtype(model.dtype)
    graph = _Graph(onnx, dtype)
    x = "input"
    for layer in model.layers:
        x = _layer(graph, layer, x)
    graph.nodes.append(onnx.helper.make_node("Identity", [x], ["output"], name="output"))
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, model.name,
            [onnx.helper.make_tensor_value_info("input", elem, ["batch", model.input_dim])],
            [onnx.helper.make_tensor_value_info("output", elem, ["batch", model.output_dim])],
            graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name="layerwise")
    proto.ir_version = min(proto.ir_version, 10)  # readable by current ONNX Runtime releases
    onnx.checker.check_model(proto)
    if path is not None:
        from .saving import atomic_write

        atomic_write(os.fspath(path), proto.SerializeToString())
    return proto
