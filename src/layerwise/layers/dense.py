"""``Dense``: the fully connected layer, y = f(x W + b)."""

from __future__ import annotations

from typing import Any

from .. import activations, initializers, regularizers
from ..blas import add_bias, matmul
from .base import LAYERS, Layer, check_positive_int


@LAYERS.register("Dense")
class Dense(Layer):
    """Fully connected layer: every input feature connects to every unit.

    Forward, for x of shape ``(batch, inputs)``: z = x W + b, y = f(z), with the kernel W
    shaped ``(inputs, units)`` and the bias b ``(units,)``. Backward, from dL/dy: dL/dz by the
    activation's derivative, then dL/dW = xᵀ dL/dz, dL/db = Σ_batch dL/dz, and
    dL/dx = dL/dz Wᵀ is returned to the layer below.

    Args:
        units: number of neurons (output features).
        activation: name, ``Activation`` object or ``(function, derivative)`` pair; linear if
            None.
        use_bias: whether to add the bias b.
        kernel_initializer: initialiser of W (default ``glorot_uniform``).
        bias_initializer: initialiser of b (default ``zeros``).
        kernel_regularizer: a penalty on W such as ``l2(0.01)`` (see
            ``layerwise.regularizers``).
        bias_regularizer: a penalty on b, the same way.
        **kwargs: ``name``, ``dtype``, ``input_dim``, ``input_shape`` (see ``Layer``).
    """

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer = regularizers.get(kernel_regularizer, "kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, "bias_regularizer")

    @property
    def kernel(self) -> Any:
        """W, ``(inputs, units)`` (None before the layer is built)."""
        return self.params.get("kernel")

    @property
    def bias(self) -> Any:
        """b, ``(units,)`` (None without a bias or before the layer is built)."""
        return self.params.get("bias")

    def compute_output_dim(self, input_dim: int) -> int:
        return self.units

    def linear_width(self) -> int:
        """Number of linear outputs z (``units``; ``Maxout`` has ``units * pieces``)."""
        return self.units

    def build(self, input_dim: int) -> None:
        super().build(input_dim)
        width = self.linear_width()
        self.add_weight("kernel", (self.input_dim, width), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (width,), self.bias_initializer, self.bias_regularizer)

    def linear(self, x: Any) -> Any:
        """z = x W + b, shape ``(batch, linear_width)``; caches x for the backward pass."""
        kernel = self.params["kernel"]
        z = matmul(x, kernel, self.buffer("z", (x.shape[0], kernel.shape[1])))
        if self.use_bias:
            add_bias(z, self.params["bias"])
        self._x = x
        return z

    def forward(self, x: Any, training: bool = False) -> Any:
        self._z = z = self.linear(x)
        if isinstance(self.activation, activations.Linear) or self.activation.in_place:
            out = z  # z is not needed after the activation (see ``Activation.in_place``)
        else:
            out = self.buffer("y", z.shape)
        self._y = self.activation.forward(z, out=out)
        return self._y

    def backward(self, dy: Any) -> Any:
        out = dy if self.reuse_buffers else None  # dy is ours to overwrite in the model's loop
        return self.backward_logits(self.activation.backward(self._z, self._y, dy, out=out))

    def backward_logits(self, dz: Any) -> Any:
        """Backward from dL/dz (the pre-activation), used with a fused loss."""
        kernel = self.params["kernel"]
        matmul(self._x.T, dz, self.grads["kernel"])  # transposed view: no copy
        if self.use_bias:
            dz.sum(axis=0, out=self.grads["bias"])
        if not self.input_gradient:
            return None
        return matmul(dz, kernel.T, self.buffer("dx", (dz.shape[0], kernel.shape[0])))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }
