"""Metrics reported beside the loss: a per-sample value, averaged over all samples seen.

``metrics=["accuracy"]`` picks binary, categorical or sparse accuracy from the loss and the
output's width, as Keras does: sparse accuracy for ``sparse_categorical_crossentropy``,
categorical (arg-max) accuracy for ``categorical_crossentropy`` or a multi-unit output, and
binary accuracy (threshold 0.5) for ``binary_crossentropy`` or a one-unit output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import scalar, to_numpy, xp
from .registry import Registry

__all__ = [
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "AUC",
    "FalseNegatives",
    "FalsePositives",
    "Precision",
    "Recall",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "Variable",
    "get",
    "names",
]  # fmt: skip


class Variable:
    """A metric's state (Keras's ``add_variable``): ``assign``, ``assign_add``, ``value``."""

    def __init__(self, value: np.ndarray, name: str | None = None) -> None:
        self.value = value
        self.name = name
        self._initial = value.copy()

    def assign(self, value: Any) -> None:
        """Set the value."""
        self.value = np.asarray(to_numpy(value), dtype=self.value.dtype).reshape(
            self.value.shape).copy()

    def assign_add(self, value: Any) -> None:
        """Add to the value."""
        self.assign(self.value + to_numpy(value))

    def reset(self) -> None:
        """Back to the initial value."""
        self.value = self._initial.copy()

    def numpy(self) -> np.ndarray:
        """The value as a NumPy array."""
        return self.value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype=dtype)

    def __float__(self) -> float:
        return float(self.value)


class Metric:
    """Base class of metrics.

    Most metrics are a mean over samples: they define ``per_sample(y_true, y_pred)``, one
    value per sample ``(batch,)``, and ``fit`` sums them where the data is. A metric that
    is not a mean over samples (precision, AUC) keeps state instead, with Keras's protocol:
    ``update_state(y_true, y_pred, sample_weight=None)`` after each batch, ``result()`` at
    the end of the epoch (so it covers the whole epoch, not a mean of batch values) and
    ``reset_state()`` before the next one; its state lives in ``add_variable`` variables.
    """

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or METRICS.name_of(type(self))
        self._variables: list[Variable] = []

    @property
    def stateful(self) -> bool:
        """Whether this metric keeps state (overrides ``update_state``)."""
        return type(self).update_state is not Metric.update_state

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        """The metric of each sample, shape ``(batch,)``; the metric is their mean."""
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        if self.stateful:
            self.reset_state()
            self.update_state(y_true, y_pred)
            return float(self.result())
        return scalar(self.per_sample(y_true, y_pred).mean())

    # -- Keras's stateful protocol (the default keeps a sum and a count of per_sample) ----
    def add_variable(self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None,
                     name: str | None = None) -> Variable:
        """A state variable of ``shape``, initialised with zeros (or ``initializer``'s
        constant, a number)."""
        start = 0.0 if initializer in ("zeros", None) else float(initializer)
        variable = Variable(np.full(shape, start, dtype=dtype or np.float64), name)
        self.__dict__.setdefault("_variables", []).append(variable)
        return variable

    add_weight = add_variable

    @property
    def variables(self) -> list[Variable]:
        """The state variables made by ``add_variable``."""
        return list(self.__dict__.get("_variables", []))

    def reset_state(self) -> None:
        """Every state variable back to its initial value (``fit`` does it each epoch)."""
        for variable in self.variables:
            variable.reset()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add one batch to the state (a stateful metric overrides this and ``result``)."""
        raise NotImplementedError(f"{type(self).__name__} is a mean of per_sample values.")

    def result(self) -> Any:
        """The metric of every batch given to ``update_state`` since the last reset."""
        raise NotImplementedError(f"{type(self).__name__} is a mean of per_sample values.")

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, for ``from_config``."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """A new metric from ``get_config``'s dict."""
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


class _Confusion(Metric):
    """Counts of true/false positives/negatives over the epoch, each output element taken as
    a binary decision ``y_pred > threshold`` against ``y_true > 0.5`` (Keras's reading)."""

    def __init__(self, thresholds: Any = None, name: str | None = None,
                 dtype: Any = None) -> None:
        super().__init__(name, dtype)
        values = [0.5] if thresholds is None else np.atleast_1d(thresholds).tolist()
        if not all(0.0 <= t <= 1.0 for t in values):
            raise ValueError(f"`thresholds` must be in [0, 1]. Received: thresholds={values}")
        self.thresholds = np.asarray(values, dtype=np.float64)
        shape = (len(values),)
        self.tp, self.fp = self.add_variable(shape, name="tp"), self.add_variable(shape)
        self.tn, self.fn = self.add_variable(shape), self.add_variable(shape)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        truth = to_numpy(y_true).reshape(-1) > 0.5  # a documented read: counts on the host
        scores = to_numpy(y_pred).astype(np.float64).reshape(-1)
        if truth.size != scores.size:
            raise ValueError(f"{type(self).__name__} needs targets shaped like the outputs "
                             f"(one 0/1 per output); received {truth.size} targets for "
                             f"{scores.size} outputs.")
        weight = np.ones_like(scores) if sample_weight is None else np.repeat(
            np.asarray(to_numpy(sample_weight), dtype=np.float64).reshape(-1),
            scores.size // max(1, np.size(sample_weight)))
        positive = scores[None, :] > self.thresholds[:, None]  # (thresholds, elements)
        self.tp.assign_add((positive & truth) @ weight)
        self.fp.assign_add((positive & ~truth) @ weight)
        self.tn.assign_add((~positive & ~truth) @ weight)
        self.fn.assign_add((~positive & truth) @ weight)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self.thresholds.tolist()}


def _count(kind: str, doc: str) -> type[Metric]:
    class Count(_Confusion):
        def result(self) -> Any:
            values = getattr(self, kind).value
            return float(values[0]) if values.size == 1 else values

    Count.__name__ = Count.__qualname__ = {"tp": "TruePositives", "fp": "FalsePositives",
                                           "tn": "TrueNegatives", "fn": "FalseNegatives"}[kind]
    Count.__doc__ = doc
    return Count


TruePositives = register("true_positives")(_count("tp", "Elements predicted positive that are."))
FalsePositives = register("false_positives")(_count("fp", "Elements wrongly predicted positive."))
TrueNegatives = register("true_negatives")(_count("tn", "Elements predicted negative that are."))
FalseNegatives = register("false_negatives")(_count("fn", "Elements wrongly predicted negative."))


@register("precision")
class Precision(_Confusion):
    """TP / (TP + FP) over the epoch: of the elements predicted positive, the share that are."""

    def result(self) -> Any:
        tp, fp = self.tp.value, self.fp.value
        values = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        return float(values[0]) if values.size == 1 else values


@register("recall")
class Recall(_Confusion):
    """TP / (TP + FN) over the epoch: of the positive elements, the share predicted so."""

    def result(self) -> Any:
        tp, fn = self.tp.value, self.fn.value
        values = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
        return float(values[0]) if values.size == 1 else values


@register("auc")
class AUC(_Confusion):
    """Area under the ROC curve (``curve="ROC"``) or the precision-recall curve (``"PR"``),
    from the confusion counts at ``num_thresholds`` thresholds over the epoch, by the
    trapezoidal rule."""

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 name: str | None = None, dtype: Any = None, **kwargs: Any) -> None:
        if curve.upper() not in ("ROC", "PR"):
            raise ValueError(f"`curve` must be 'ROC' or 'PR'. Received: curve={curve!r}")
        if num_thresholds < 2:
            raise ValueError(f"`num_thresholds` must be > 1. Received: {num_thresholds}")
        eps = 1e-7
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        super().__init__([0.0, *inner, 1.0], name, dtype)
        self.thresholds[0], self.thresholds[-1] = -eps, 1.0 + eps
        self.num_thresholds, self.curve = num_thresholds, curve.upper()

    def result(self) -> float:
        tp, fp, tn, fn = (v.value for v in (self.tp, self.fp, self.tn, self.fn))
        recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
        if self.curve == "ROC":
            x = np.divide(fp, fp + tn, out=np.zeros_like(fp), where=(fp + tn) > 0)
            y = recall
        else:
            x = recall
            y = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
        # thresholds rise, so x falls: the area between consecutive points
        return float(np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2.0))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve}


@register("top_k_categorical_accuracy")
class TopKCategoricalAccuracy(Metric):
    """1 where the one-hot target's class is among the ``k`` highest outputs."""

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.k = int(k)

    def _in_top_k(self, classes: Any, y_pred: Any) -> Any:
        target = xp.take_along_axis(y_pred, classes.reshape(-1, 1).astype("int64"), axis=-1)
        return ((y_pred > target).sum(axis=-1) < self.k).astype("float64")

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        return self._in_top_k(y_true.argmax(axis=-1), y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k}


@register("sparse_top_k_categorical_accuracy")
class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """1 where the integer class target is among the ``k`` highest outputs."""

    def per_sample(self, y_true: Any, y_pred: Any) -> Any:
        return self._in_top_k(y_true.reshape(-1), y_pred)


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
    """Every registered metric name and alias, sorted (what ``get`` accepts)."""
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
