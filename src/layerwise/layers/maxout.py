"""``Maxout``: a learned piece-wise linear activation (Goodfellow et al., 2013)."""

from __future__ import annotations

from typing import Any

from .. import initializers
from ..backend import xp
from .base import LAYERS, Layer, check_positive_int


@LAYERS.register("Maxout")
class Maxout(Layer):
    """A Dense layer of ``units * pieces`` linear outputs followed by a max over each group.

    z = x W + b with W shaped ``(inputs, units * pieces)``; output unit j is
    y_j = max_k z[j * pieces + k] (consecutive groups, as ONNX's Reshape + ReduceMax).
    The gradient flows to the arg-max piece of each group only; ReLU is the special case
    max(z, 0) of two pieces with one fixed at zero.

    Args:
        units: number of output units.
        pieces: linear pieces per unit (k >= 2 for a non-linear function).
        use_bias, kernel_initializer, bias_initializer: as ``Dense``.
    """

    def __init__(
        self,
        units: int,
        pieces: int = 2,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units")
        self.pieces = check_positive_int(pieces, "pieces")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")

    def compute_output_dim(self, input_dim: int) -> int:
        return self.units

    def build(self, input_dim: int) -> None:
        super().build(input_dim)
        width = self.units * self.pieces
        self.add_weight("kernel", (self.input_dim, width), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (width,), self.bias_initializer)

    def forward(self, x: Any, training: bool = False) -> Any:
        z = x @ self.params["kernel"]
        if self.use_bias:
            z += self.params["bias"]
        groups = z.reshape(x.shape[0], self.units, self.pieces)  # (batch, units, pieces)
        self._x = x
        self._argmax = groups.argmax(axis=-1)[..., None]  # (batch, units, 1)
        return xp.take_along_axis(groups, self._argmax, axis=-1)[..., 0]

    def backward(self, dy: Any) -> Any:
        dz = xp.zeros((dy.shape[0], self.units, self.pieces), dtype=dy.dtype)
        xp.put_along_axis(dz, self._argmax, dy[..., None], axis=-1)
        dz = dz.reshape(dy.shape[0], self.units * self.pieces)
        xp.dot(self._x.T, dz, out=self.grads["kernel"])
        if self.use_bias:
            dz.sum(axis=0, out=self.grads["bias"])
        return dz @ self.params["kernel"].T

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "pieces": self.pieces,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }
