"""Metrics reported beside the loss: a per-sample value, averaged over all samples seen.

``metrics=["accuracy"]`` picks binary, categorical or sparse accuracy from the loss and the
output's width, as Keras does: sparse accuracy for ``sparse_categorical_crossentropy``,
categorical (arg-max) accuracy for ``categorical_crossentropy`` or a multi-unit output, and
binary accuracy (threshold 0.5) for ``binary_crossentropy`` or a one-unit output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import scalar, xp
from .registry import Registry

__all__ = [
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "get",
    "names",
]  # fmt: skip


class Metric:
    """Base class: ``per_sample(y_true, y_pred)`` gives one value per sample, ``(batch,)``."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or METRICS.name_of(type(self))

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        return scalar(self.per_sample(y_true, y_pred).mean())

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


METRICS: Registry[Metric] = Registry("metric", "metrics", Metric)
register = METRICS.register
_ACCURACY_NAMES = ("accuracy", "acc")
METRICS.extra_names = _ACCURACY_NAMES  # resolved by `get` from the loss and output width


@register("binary_accuracy")
class BinaryAccuracy(Metric):
    """Fraction of outputs on the right side of ``threshold`` (0.5), averaged over units."""

    def __init__(self, name: str | None = None, threshold: float = 0.5) -> None:
        super().__init__(name)
        self.threshold = float(threshold)

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        y_true = y_true.reshape(y_pred.shape)
        return ((y_pred > self.threshold) == (y_true > 0.5)).mean(axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}


@register("categorical_accuracy")
class CategoricalAccuracy(Metric):
    """1 where the arg-max of the output equals the arg-max of the one-hot target."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        return (y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).astype("float64")


@register("sparse_categorical_accuracy")
class SparseCategoricalAccuracy(Metric):
    """1 where the arg-max of the output equals the integer class target."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        return (y_pred.argmax(axis=-1) == y_true.reshape(-1)).astype("float64")


@register("mean_squared_error", "mse")
class MeanSquaredError(Metric):
    """Mean over output units of (ŷ - y)²."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        d = y_pred - y_true.reshape(y_pred.shape)
        return (d * d).mean(axis=-1)


@register("mean_absolute_error", "mae")
class MeanAbsoluteError(Metric):
    """Mean over output units of |ŷ - y|."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        return xp.abs(y_pred - y_true.reshape(y_pred.shape)).mean(axis=-1)


def get(identifier: Any, loss_name: str | None = None, units: int | None = None) -> Metric:
    """Resolve a metric; ``"accuracy"``/``"acc"`` becomes the variant that fits the loss.

    The returned metric's ``name`` is the string the user gave, so ``metrics=["acc"]`` is
    reported as ``acc`` in logs and history.
    """
    if isinstance(identifier, str) and identifier.lower() in _ACCURACY_NAMES:
        if loss_name == "sparse_categorical_crossentropy":
            cls: type[Metric] = SparseCategoricalAccuracy
        elif loss_name == "categorical_crossentropy" or (
            loss_name != "binary_crossentropy" and units is not None and units > 1
        ):
            cls = CategoricalAccuracy
        else:
            cls = BinaryAccuracy
        return cls(name=identifier)
    if isinstance(identifier, str):
        return METRICS.lookup(identifier, "metrics")(name=identifier)
    return METRICS.get(identifier, "metrics")


def names() -> list[str]:
    return METRICS.names()


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> Any:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class."""


    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"`y_true` and `y_pred` differ in length: {y_true.shape[0]} and "
                         f"{y_pred.shape[0]}")
    n = num_classes or int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination 1 - Σ(y - ŷ)² / Σ(y - ȳ)², averaged over outputs."""


    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / np.where(total == 0, 1.0, total)))
