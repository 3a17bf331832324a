"""``Maxout``: a learned piece-wise linear activation (Goodfellow et al., 2013)."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import LAYERS, check_positive_int
from .dense import Dense


@LAYERS.register("Maxout")
class Maxout(Dense):
    """A Dense layer of ``units * pieces`` linear outputs followed by a max over each group.

    z = x W + b with W shaped ``(inputs, units * pieces)``; output unit j is
    y_j = max_k z[j * pieces + k] (consecutive groups, as ONNX's Reshape + ReduceMax).
    The gradient flows to the arg-max piece of each group only; ReLU is the special case
    max(z, 0) of two pieces with one fixed at zero.

    Args:
        units: number of output units.
        pieces: linear pieces per unit (k >= 2 for a non-linear function).
        **kwargs: ``use_bias``, initialisers and regularisers, as ``Dense`` (no activation).
    """

    def __init__(self, units: int, pieces: int = 2, **kwargs: Any) -> None:
        if kwargs.get("activation") is not None:
            raise ValueError("Maxout is its own activation; it takes no `activation`. "
                             f"Received: activation={kwargs['activation']!r}")
        kwargs.pop("activation", None)
        self.pieces = check_positive_int(pieces, "pieces")
        super().__init__(units, **kwargs)

    def linear_width(self) -> int:
        return self.units * self.pieces

    def forward(self, x: Any, training: bool = False) -> Any:
        groups = self.linear(x).reshape(x.shape[0], self.units, self.pieces)
        self._argmax = groups.argmax(axis=-1)[..., None]  # (batch, units, 1)
        return xp.take_along_axis(groups, self._argmax, axis=-1)[..., 0]

    def backward(self, dy: Any) -> Any:
        # dL/dz is dy at each group's arg-max piece and 0 elsewhere (a one-hot mask times dy,
        # which every backend has; CuPy lacks put_along_axis)
        winners = xp.arange(self.pieces) == self._argmax  # (batch, units, pieces)
        dz = xp.multiply(winners, dy[..., None], dtype=dy.dtype)
        return self.backward_logits(dz.reshape(dy.shape[0], self.units * self.pieces))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["activation"]
        return {**config, "pieces": self.pieces}
