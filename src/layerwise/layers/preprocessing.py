"""Preprocessing layers: input scaling that travels with the model (and its saved file).

Neither has trainable parameters; their constants are part of ``get_config``, so a model
saved with them standardises raw inputs by itself at ``predict`` time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import xp
from .base import LAYERS, Layer


@LAYERS.register("Rescaling")
class Rescaling(Layer):
    """y = x · scale + offset, e.g. ``Rescaling(1 / 255)`` for 8-bit pixels."""

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x: Any, training: bool = False) -> Any:
        return x * self.scale + self.offset

    def backward(self, dy: Any) -> Any:
        return dy * self.scale

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@LAYERS.register("Normalization")
class Normalization(Layer):
    """Standardises each feature: y = (x - mean) / √(variance + 1e-7).

    Give ``mean`` and ``variance`` (one value per feature, or scalars) or call
    ``adapt(x_train)`` to compute them from data, as Keras's ``Normalization``.
    """

    def __init__(self, mean: Any = None, variance: Any = None, axis: int | None = -1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis not in (-1, 1, None):
            raise ValueError("`axis` must be -1 (a mean and variance per feature) or None "
                             f"(one over all values). Received: axis={axis!r}")
        self.axis = axis
        if (mean is None) != (variance is None):
            raise ValueError("Pass both `mean` and `variance`, or neither (then call adapt()).")
        self.mean = None if mean is None else np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.variance = None if variance is None else np.atleast_1d(
            np.asarray(variance, dtype=np.float64))
        for argument, values in (("mean", self.mean), ("variance", self.variance)):
            if values is not None and not np.isfinite(values).all():
                raise ValueError(f"`{argument}` must hold finite numbers. Received: "
                                 f"{argument}={values.tolist()[:8]}")
        if self.variance is not None and (self.variance < 0).any():
            raise ValueError("`variance` must be >= 0 for every feature.")
        if self.mean is not None and self.mean.shape != self.variance.shape:
            raise ValueError(f"`mean` and `variance` must have the same length. Received: "
                             f"{self.mean.size} means, {self.variance.size} variances")

    def adapt(self, data: Any) -> None:
        """Set ``mean`` and ``variance`` per feature from ``data`` of shape (batch, features)."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim == 1:
            data = data.reshape(-1, 1)  # one feature, as Keras's tutorials pass it
        if data.ndim != 2 or data.shape[0] == 0:
            raise ValueError(f"adapt() needs a 2-D (batch, features) array. Received shape "
                             f"{data.shape}")
        if not np.isfinite(data).all():
            row, column = (int(i) for i in np.argwhere(~np.isfinite(data))[0])
            raise ValueError(f"adapt() needs finite data, but data[{row}, {column}] is "
                             f"{data[row, column]}. Remove or impute NaN and infinite values "
                             "first.")
        axis = None if self.axis is None else 0
        self.mean = np.atleast_1d(data.mean(axis=axis))
        self.variance = np.atleast_1d(data.var(axis=axis))
        if self.built:
            self.build(self.input_dim)

    def get_constants(self) -> dict[str, Any]:
        return {} if self.mean is None else {"mean": self.mean, "variance": self.variance}

    def set_constants(self, values: dict[str, Any]) -> None:
        mean = np.atleast_1d(np.asarray(values["mean"], dtype=np.float64))
        variance = np.atleast_1d(np.asarray(values["variance"], dtype=np.float64))
        if not (np.isfinite(mean).all() and np.isfinite(variance).all()) or \
                (variance < 0).any() or mean.shape != variance.shape:
            raise ValueError("Normalization constants must be finite means and variances >= 0 "
                             "of one length.")
        self.mean, self.variance = mean, variance
        if self.built:
            self.build(self.input_dim)

    def build(self, input_dim: int) -> None:
        super().build(input_dim)
        if self.mean is None:
            raise ValueError(f"Normalization layer {self.name!r} has no statistics: call "
                             "adapt(x_train) or pass mean= and variance= first.")
        if self.mean.size not in (1, input_dim):
            raise ValueError(f"Normalization layer {self.name!r} holds {self.mean.size} means, "
                             f"but its input has {input_dim} features.")
        self._offset = xp.asarray(self.mean, dtype=self.dtype)
        self._inv_std = xp.asarray(1.0 / np.sqrt(self.variance + 1e-7), dtype=self.dtype)

    def forward(self, x: Any, training: bool = False) -> Any:
        return (x - self._offset) * self._inv_std

    def backward(self, dy: Any) -> Any:
        return dy * self._inv_std

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.axis != -1:
            config["axis"] = self.axis
        if self.mean is not None:
            config.update(mean=self.mean.tolist(), variance=self.variance.tolist())
        return config
