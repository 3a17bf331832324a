"""scikit-learn estimators: ``DenseClassifier`` and ``DenseRegressor``.

They follow the estimator contract (``get_params``/``set_params``, ``fit`` returning ``self``,
``classes_``, ``n_features_in_``, ``feature_names_in_``, ``partial_fit``, ``sample_weight``,
``score``) and so work in ``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and ``clone``.
The trained network is ``model_``, a layerwise ``Sequential``. Needs scikit-learn
(``pip install 'layerwise[data]'``).

The network computes in float32 when ``X`` is float32 and in float64 otherwise, as
scikit-learn's own estimators preserve float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("layerwise.sklearn needs scikit-learn: pip install 'layerwise[data]'"
                      ) from exc

from . import backend, callbacks, initializers, layers, optimizers, regularizers
from .models import Sequential

__all__ = ["DenseClassifier", "DenseRegressor"]


class _DenseEstimator(BaseEstimator):
    """Shared construction and training of the network."""

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 0.001,
        batch_size: int = 32,
        epochs: int = 200,
        alpha: float = 0.0,
        dropout: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 10,
        random_state: Any = None,
        verbose: int = 0,
        warm_start: bool = False,
        device: str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.alpha = alpha
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device

    # what subclasses decide: the output layer and loss for the encoded targets
    def _head(self, n_outputs: int) -> tuple[str | None, str]:
        raise NotImplementedError

    def _build(self, n_features: int, n_outputs: int, dtype: Any, seed: int) -> Sequential:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else tuple(sizes)
        if any(not isinstance(s, (int, np.integer)) or s <= 0 for s in sizes):
            raise ValueError("`hidden_layer_sizes` must be positive integers. Received: "
                             f"hidden_layer_sizes={self.hidden_layer_sizes!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}")
        if self.alpha < 0:
            raise ValueError(f"`alpha` must be >= 0. Received: alpha={self.alpha!r}")
        dtype = np.dtype(dtype).name
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=2 * len(sizes) + 2)
        penalty = regularizers.l2(self.alpha) if self.alpha else None
        net: list[Any] = []
        init = initializers.HeUniform if "relu" in str(self.activation) else \
            initializers.GlorotUniform
        for i, units in enumerate(sizes):
            kernel_init = init(seed=int(seeds[2 * i]))
            net.append(layers.Dense(int(units), activation=self.activation, dtype=dtype,
                                    kernel_initializer=kernel_init, kernel_regularizer=penalty,
                                    input_dim=n_features if i == 0 else None))
            if self.dropout:
                net.append(layers.Dropout(self.dropout, seed=int(seeds[2 * i + 1]), dtype=dtype))
        activation, loss = self._head(n_outputs)
        net.append(layers.Dense(n_outputs, activation=activation, dtype=dtype,
                                kernel_initializer=initializers.GlorotUniform(
                                    seed=int(seeds[-1])),
                                input_dim=None if sizes else n_features))
        model = Sequential(net)
        opt = optimizers.get(self.optimizer)
        opt = type(opt).from_config({**opt.get_config(), "learning_rate": self.learning_rate})
        model.compile(optimizer=opt, loss=loss)
        return model

    def _train(self, X: np.ndarray, y: np.ndarray, sample_weight: Any, epochs: int,
               reset: bool) -> None:
        with backend.using(self.device):  # "gpu": the network lives and trains on the GPU
            self._train_here(X, y, sample_weight, epochs, reset)

    def _train_here(self, X: np.ndarray, y: np.ndarray, sample_weight: Any, epochs: int,
                    reset: bool) -> None:
        if reset or not hasattr(self, "model_"):
            seed = check_random_state(self.random_state).randint(0, 2**31 - 1)
            self.model_ = self._build(X.shape[1], self._n_outputs, X.dtype, seed)
            self._rng = np.random.default_rng(seed)
            self.history_ = {}
        cbs = []
        split = 0.0
        if self.early_stopping:
            split = self.validation_fraction
            cbs.append(callbacks.EarlyStopping("val_loss", patience=self.patience,
                                               restore_best_weights=True))
        history = self.model_.fit(X, y, batch_size=min(self.batch_size, X.shape[0]),
                                  epochs=epochs, verbose=self.verbose, callbacks=cbs,
                                  validation_split=split, sample_weight=sample_weight,
                                  seed=self._rng)
        for key, values in history.history.items():
            self.history_.setdefault(key, []).extend(values)
        self.n_iter_ = len(self.history_.get("loss", []))

    def _check_data(self, X: Any, y: Any = None, reset: bool = True) -> Any:
        return validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32],
                             multi_output=True, y_numeric=isinstance(self, RegressorMixin))

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        with backend.using(self.device):
            return self.model_.predict(X.astype(self.model_.dtype, copy=False),
                                       batch_size=1024)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class DenseClassifier(ClassifierMixin, _DenseEstimator):
    """A fully connected network classifier (binary, multi-class or multi-label).

    Parameters describe the network and its training: ``hidden_layer_sizes`` (units of each
    hidden layer), ``activation`` (of the hidden layers), ``optimizer`` and
    ``learning_rate``, ``batch_size``, ``epochs``, ``alpha`` (L2 penalty λ·Σw² on the hidden
    kernels), ``dropout`` (rate after each hidden layer), ``early_stopping`` on a held-out
    ``validation_fraction`` with ``patience``, ``random_state``, ``verbose`` and
    ``warm_start`` (continue training the existing network on ``fit``), and ``device``
    (``"cpu"``, ``"gpu"`` for the CuPy backend, or None for the current
    ``layerwise.backend``).

    Outputs: softmax + cross-entropy for several classes, one sigmoid unit for two, one
    sigmoid per label for multi-label targets (a 0/1 indicator matrix).

    Attributes: ``classes_``, ``n_features_in_``, ``feature_names_in_`` (for DataFrames),
    ``model_`` (the layerwise ``Sequential``), ``history_`` (per-epoch logs), ``n_iter_``.
    """

    def _head(self, n_outputs: int) -> tuple[str | None, str]:
        if self._target_type == "multiclass":
            return "softmax", "sparse_categorical_crossentropy"
        return "sigmoid", "binary_crossentropy"

    def _encode(self, y: np.ndarray) -> np.ndarray:
        if self._target_type == "multilabel-indicator":
            return y.astype(np.float64)
        index = np.searchsorted(self.classes_, y)
        bad = (index >= len(self.classes_)) | (self.classes_[np.minimum(
            index, len(self.classes_) - 1)] != y)
        if bad.any():
            raise ValueError(f"`y` has labels {sorted(set(np.asarray(y)[bad].tolist()))} that "
                             f"are not in classes_ {self.classes_.tolist()}.")
        return index

    def _set_classes(self, y: np.ndarray, classes: Any = None) -> None:
        kind = type_of_target(y)
        if kind == "multilabel-indicator":
            self._target_type = kind
            self.classes_ = np.arange(y.shape[1])
            self._n_outputs = y.shape[1]
            return
        self.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        if len(self.classes_) < 2:
            raise ValueError(f"A classifier needs samples of at least 2 classes; `y` has 1 "
                             f"class: {self.classes_.tolist()}.")
        self._target_type = "binary" if len(self.classes_) == 2 else "multiclass"
        self._n_outputs = 1 if self._target_type == "binary" else len(self.classes_)

    def _targets(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = self._check_data(X, y, reset=True)
        check_classification_targets(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DenseClassifier:
        """Train on ``X`` (n_samples, n_features) and labels ``y``; returns ``self``."""
        warm = self.warm_start and hasattr(self, "model_")
        X, y = self._targets(X, y)
        if not warm:
            self._set_classes(y)
        sample_weight = None if sample_weight is None else _check_sample_weight(
            sample_weight, X)
        self._train(X, self._encode(y), sample_weight, self.epochs, reset=not warm)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
                    ) -> DenseClassifier:
        """One epoch over ``(X, y)``; the first call needs ``classes`` (all labels)."""
        first = not hasattr(self, "model_")
        X, y = self._check_data(X, y, reset=first)
        check_classification_targets(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if first:
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError("`classes` must be given on the first call to partial_fit.")
            self._set_classes(y, classes)
        sample_weight = None if sample_weight is None else _check_sample_weight(
            sample_weight, X)
        self._train(X, self._encode(y), sample_weight, 1, reset=first)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` (per label for multi-label)."""
        p = self._forward(X)
        if self._target_type == "binary":
            return np.hstack([1.0 - p, p])
        return p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """The output layer's logits: ``(n_samples,)`` for two classes, else per class."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        h = X.astype(self.model_.dtype, copy=False)
        for layer in self.model_.layers[:-1]:
            h = layer.forward(h, training=False)
        z = np.asarray(self.model_.layers[-1].linear(h))
        return z[:, 0] if self._target_type == "binary" else z

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (an indicator matrix for multi-label targets)."""
        p = self._forward(X)
        if self._target_type == "multilabel-indicator":
            return (p > 0.5).astype(np.int64)
        if self._target_type == "binary":
            return self.classes_[(p[:, 0] > 0.5).astype(np.int64)]
        return self.classes_[p.argmax(axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class DenseRegressor(RegressorMixin, _DenseEstimator):
    """A fully connected network regressor (one or several outputs), linear output and mean
    squared error. Parameters and attributes as :class:`DenseClassifier` (no ``classes_``).
    """

    def _head(self, n_outputs: int) -> tuple[str | None, str]:
        return None, "mse"

    def _prepare_y(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = self._check_data(X, y, reset=reset)
        y = np.asarray(y, dtype=np.float64)
        if reset:
            self._single_output = y.ndim == 1
            self._n_outputs = 1 if y.ndim == 1 else y.shape[1]
        return X, y.reshape(len(y), -1)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DenseRegressor:
        """Train on ``X`` (n_samples, n_features) and targets ``y``; returns ``self``."""
        warm = self.warm_start and hasattr(self, "model_")
        X, y = self._prepare_y(X, y, reset=not warm)
        sample_weight = None if sample_weight is None else _check_sample_weight(
            sample_weight, X)
        self._train(X, y, sample_weight, self.epochs, reset=not warm)
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> DenseRegressor:
        """One epoch over ``(X, y)``."""
        first = not hasattr(self, "model_")
        X, y = self._prepare_y(X, y, reset=first)
        sample_weight = None if sample_weight is None else _check_sample_weight(
            sample_weight, X)
        self._train(X, y, sample_weight, 1, reset=first)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``(n_samples,)``, or ``(n_samples, n_outputs)`` for several targets."""
        out = self._forward(X)
        return out[:, 0] if self._single_output else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
