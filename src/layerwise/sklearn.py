"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor``, drop-in replacements for
``sklearn.neural_network``'s, and ``DenseClassifier``/``DenseRegressor`` (the same estimators
with Keras's parameter names).

``from layerwise.sklearn import MLPClassifier`` in place of scikit-learn's import keeps every
constructor parameter with its name, default and meaning (``alpha`` is scikit-learn's L2
term, ``batch_size="auto"`` is min(200, n), ``learning_rate`` is the schedule's name, ``tol``
with ``n_iter_no_change`` stops training, ``solver="lbfgs"`` runs SciPy's L-BFGS-B), every
fitted attribute (``coefs_``, ``intercepts_``, ``loss_curve_``, ``validation_scores_``,
``n_iter_``, ``t_``, ...) and ``partial_fit``. Starting weights are drawn as scikit-learn draws
them, so the same ``random_state`` starts from the same network. What layerwise adds:
``dropout``, any layerwise activation (also one per hidden layer), ``optimizer`` (any
layerwise optimizer), ``kernel_initializer``, ``class_weight``, ``dtype`` and ``device``.

The network is ``model_``, a layerwise ``Sequential`` trained by its own ``fit`` (the
stopping rules and learning-rate schedules are a callback of it), so it can be saved, exported
to ONNX or inspected like any layerwise model. Needs scikit-learn, and SciPy for ``lbfgs``
(``pip install 'layerwise[sklearn]'``).
"""

from __future__ import annotations

import difflib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("layerwise.sklearn needs scikit-learn: pip install 'layerwise[sklearn]'"
                      ) from exc

from . import activations, backend, callbacks, initializers, layers, optimizers, regularizers
from .guards import NonFiniteLossError
from .input_checks import is_sparse
from .models import Sequential

__all__ = ["DenseClassifier", "DenseRegressor", "MLPClassifier", "MLPRegressor"]

#: scikit-learn's activation names -> layerwise's
_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: the output layer: scikit-learn's ``out_activation_`` -> (activation, loss)
_HEADS = {"softmax": ("softmax", "categorical_crossentropy"),
          "logistic": ("sigmoid", "binary_crossentropy"),
          "identity": ("linear", "mean_squared_error"),
          "exp": ("exponential", "poisson")}
_NONFINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
              "values and need to be preprocessed.")
#: rows of a sparse matrix densified at a time by lbfgs and the validation score
_CHUNK_BYTES = 32 * 1024 * 1024


def _choice(value: Any, allowed: tuple[str, ...], argument: str) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"`{argument}` must be one of {', '.join(map(repr, allowed))}. "
                     f"Received: {argument}={value!r}.{hint}")


def _number(value: Any, argument: str, low: float, high: float = math.inf,
            low_open: bool = False, high_open: bool = False, integer: bool = False) -> Any:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))
    if ok:
        ok = (value > low if low_open else value >= low) and \
             (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        kind = "an integer" if integer else "a number"
        raise ValueError(f"`{argument}` must be {kind} in {left}{low}, {high}{right}. "
                         f"Received: {argument}={value!r}")
    return value


@dataclass
class _Plan:
    """The training settings the estimator's parameters resolve to (checked)."""

    hidden: tuple[int, ...]
    activations: list[str]        # layerwise names, one per hidden layer
    init_factor: float            # scikit-learn's Glorot bound factor (2 for logistic, else 6)
    solver: str                   # "lbfgs", "sgd", "adam" or "optimizer"
    schedule: str                 # "constant", "invscaling", "adaptive"
    max_iter: int
    n_iter_no_change: float
    tol: float
    early_stopping: bool
    per_sample_alpha: bool        # scikit-learn's alpha (True) or Keras's l2 on hidden kernels
    dropout: list[float]
    warn_convergence: bool
    params: dict[str, Any]        # every parameter, under scikit-learn's names


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: the network, the solvers, the rules."""

    def _keep(self, arguments: dict[str, Any]) -> None:
        """Store a constructor's arguments as attributes of the same names (scikit-learn's
        contract: ``__init__`` only records them; ``get_params`` reads its signature)."""
        for name, value in arguments.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # -- parameters ----------------------------------------------------------------------
    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if not hasattr(sizes, "__iter__") else tuple(sizes)
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0
               for s in sizes):
            raise ValueError("`hidden_layer_sizes` must be positive integers. Received: "
                             f"hidden_layer_sizes={self.hidden_layer_sizes!r}")
        return tuple(int(s) for s in sizes)

    def _per_layer(self, value: Any, count: int, argument: str) -> list[Any]:
        if isinstance(value, (list, tuple)):
            if len(value) != count:
                raise ValueError(f"`{argument}` as a list needs one entry per hidden layer "
                                 f"({count}). Received: {argument}={value!r}")
            return list(value)
        return [value] * count

    def _params(self) -> dict[str, Any]:
        """The parameters under scikit-learn's names (``DenseClassifier`` maps Keras's)."""
        return self.get_params(deep=False)

    def _param(self, name: str) -> Any:
        return self._params()[name]

    def _plan(self) -> _Plan:
        p = self._params()
        hidden = self._hidden_sizes()
        acts = []
        for name in self._per_layer(p["activation"], len(hidden), "activation"):
            name = _ACTIVATIONS.get(name, name) if isinstance(name, str) else name
            activations.get(name, "activation")  # unknown names: "did you mean"
            acts.append(name)
        solver = _choice(p["solver"], ("lbfgs", "sgd", "adam"), "solver")
        schedule = _choice(p["learning_rate"], ("constant", "invscaling", "adaptive"),
                           "learning_rate")
        if p.get("optimizer") is not None:
            if solver == "lbfgs":
                raise ValueError("`optimizer` replaces the stochastic solvers; with it, "
                                 "`solver` must be 'adam' or 'sgd'. Received: solver='lbfgs'")
            solver = "optimizer"
        _number(p["alpha"], "alpha", 0.0)
        _number(p["learning_rate_init"], "learning_rate_init", 0.0, low_open=True)
        _number(p["power_t"], "power_t", 0.0)
        max_iter = _number(p["max_iter"], "max_iter", 1, integer=True)
        _number(p["tol"], "tol", 0.0)
        _number(p["momentum"], "momentum", 0.0, 1.0)
        _number(p["validation_fraction"], "validation_fraction", 0.0, 1.0, high_open=True)
        _number(p["beta_1"], "beta_1", 0.0, 1.0, high_open=True)
        _number(p["beta_2"], "beta_2", 0.0, 1.0, high_open=True)
        _number(p["epsilon"], "epsilon", 0.0, low_open=True)
        _number(p["max_fun"], "max_fun", 1, integer=True)
        patience = p["n_iter_no_change"]
        if patience != np.inf:
            _number(patience, "n_iter_no_change", 1, integer=True)
        if p["batch_size"] != "auto":
            _number(p["batch_size"], "batch_size", 1, integer=True)
        rates = [_number(r, "dropout", 0.0, 1.0, high_open=True)
                 for r in self._per_layer(p["dropout"], len(hidden), "dropout")]
        if solver == "lbfgs" and any(rates):
            raise ValueError("`dropout` needs a stochastic solver ('adam' or 'sgd'): L-BFGS "
                             "needs the same loss at every evaluation. Received: "
                             f"dropout={p['dropout']!r} with solver='lbfgs'")
        return _Plan(hidden, acts, 2.0 if p["activation"] == "logistic" else 6.0, solver,
                     schedule, max_iter, patience, float(p["tol"]),
                     bool(p["early_stopping"]), True, rates, True, p)

    # -- the network ---------------------------------------------------------------------
    def _head(self) -> tuple[str, str, float]:
        """(output activation, loss, loss weight) for ``out_activation_``: the weight makes
        layerwise's mean over output units scikit-learn's sum over them."""
        activation, loss = _HEADS[self.out_activation_]
        units = self.n_outputs_
        if loss == "mean_squared_error":
            return activation, loss, units / 2.0  # ½ Σ_k (ŷ_k - y_k)²
        if loss == "categorical_crossentropy":
            return activation, loss, 1.0
        return activation, loss, float(units)

    def _build(self, plan: _Plan, sizes: list[int], dtype: Any) -> None:
        """``model_`` for layer widths ``sizes`` (inputs first), weights left to the caller."""
        dtype = np.dtype(dtype).name
        alpha = plan.params["alpha"]
        self._penalty = (regularizers.L2PerSample(alpha) if plan.per_sample_alpha
                         else regularizers.l2(alpha) if alpha else None)
        hidden_penalty = self._penalty
        out_penalty = self._penalty if plan.per_sample_alpha else None
        seeded = any(plan.dropout) or plan.params["kernel_initializer"] is not None
        # only then a draw: without them, random_state's draws are scikit-learn's own
        seeds = self._random_state.randint(0, 2**31 - 1, size=len(sizes)) if seeded \
            else [None] * len(sizes)
        net: list[Any] = []
        for i, units in enumerate(sizes[1:-1]):
            net.append(layers.Dense(units, activation=plan.activations[i], dtype=dtype,
                                    kernel_regularizer=hidden_penalty,
                                    kernel_initializer=self._initializer(plan, seeds[i]),
                                    input_dim=sizes[0] if i == 0 else None))
            if plan.dropout[i]:
                net.append(layers.Dropout(plan.dropout[i], seed=int(seeds[i]), dtype=dtype))
        activation, loss, weight = self._head()
        net.append(layers.Dense(sizes[-1], activation=activation, dtype=dtype,
                                kernel_regularizer=out_penalty,
                                kernel_initializer=self._initializer(plan, seeds[-1]),
                                input_dim=sizes[0] if len(sizes) == 2 else None))
        model = Sequential(net)
        model.compile(optimizer=self._new_optimizer(plan), loss=loss, loss_weights=weight)
        self.model_ = model

    def _initializer(self, plan: _Plan, seed: Any) -> Any:
        given = plan.params["kernel_initializer"]
        if given is None:
            return "glorot_uniform"  # replaced below by scikit-learn's draws
        init = initializers.get(given)
        config = init.get_config()
        if "seed" in config and config["seed"] is None:  # reproducible with random_state
            init = type(init).from_config({**config, "seed": int(seed)})
        return init

    def _draw_weights(self, plan: _Plan) -> None:
        """scikit-learn's starting weights: W and b uniform in ±√(factor/(fan_in + fan_out)),
        drawn from ``random_state`` in its order (a given kernel_initializer replaces W's
        draw; b then starts at zero)."""
        for layer in self._dense_layers():
            fan_in, fan_out = layer.params["kernel"].shape
            bound = np.sqrt(plan.init_factor / (fan_in + fan_out))
            if plan.params["kernel_initializer"] is None:
                kernel = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
                bias = self._random_state.uniform(-bound, bound, fan_out)
                layer.set_weights([kernel, bias])

    def _new_optimizer(self, plan: _Plan) -> optimizers.Optimizer:
        if plan.solver == "optimizer":
            given = optimizers.get(plan.params["optimizer"])
            config = given.get_config()  # a copy: ours alone, its state fresh
            if isinstance(self, _KerasNames):
                config["learning_rate"] = plan.params["learning_rate_init"]
            return type(given).from_config(config)
        p = plan.params
        if plan.solver == "adam":  # scikit-learn's Adam adds ε before the bias correction
            return optimizers.Adam(p["learning_rate_init"], beta_1=p["beta_1"],
                                   beta_2=p["beta_2"], epsilon=p["epsilon"],
                                   epsilon_style="keras")
        momentum = float(p["momentum"])
        if momentum >= 1.0:
            raise ValueError("`momentum` must be below 1 for layerwise's SGD (1 never "
                             "forgets a gradient). Received: momentum=1")
        return optimizers.SGD(p["learning_rate_init"], momentum=momentum,
                              nesterov=bool(p["nesterovs_momentum"]) and momentum > 0)

    @property
    def _optimizer(self) -> optimizers.Optimizer:
        """The network's optimizer (scikit-learn's name for it; ``learning_rate`` reads the
        same)."""
        return self.model_.optimizer

    def _dense_layers(self) -> list[Any]:
        return [layer for layer in self.model_.layers if isinstance(layer, layers.Dense)]

    def _expose(self) -> None:
        """``coefs_`` and ``intercepts_``: the trained kernels and biases themselves."""
        dense = self._dense_layers()
        self.coefs_ = [layer.params["kernel"] for layer in dense]
        self.intercepts_ = [layer.params["bias"] for layer in dense]

    def _sync_in(self, plan: _Plan | None = None) -> None:
        """Make ``model_`` hold ``coefs_``/``intercepts_`` when they were assigned (as
        scikit-learn users and its tests do), building it if needed."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        model = getattr(self, "model_", None)
        shapes = [tuple(c.shape) if hasattr(c, "shape") else np.shape(c) for c in coefs]
        if model is None or [layer.params["kernel"].shape for layer in
                             self._dense_layers()] != shapes:
            plan = plan or self._plan()
            sizes = [shapes[0][0], *(s[1] for s in shapes)]
            if len(sizes) - 2 != len(plan.hidden):
                plan.hidden = tuple(sizes[1:-1])
                plan.activations = [plan.activations[0]] * len(plan.hidden)
                plan.dropout = [plan.dropout[0]] * len(plan.hidden)
            self.n_outputs_ = sizes[-1]
            self.n_layers_ = len(sizes)
            self._random_state = check_random_state(self.random_state)
            dtype = np.dtype(getattr(coefs[0], "dtype", np.float64))
            self._build(plan, sizes, dtype if dtype.kind == "f" else np.float64)
        for layer, w, b in zip(self._dense_layers(), coefs, intercepts):
            if w is not layer.params["kernel"] or b is not layer.params["bias"]:
                layer.set_weights([w, b.reshape(-1) if hasattr(b, "reshape") else b])
        self._expose()

    # -- training ------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> Any:
        plan = self._plan()
        if incremental and plan.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True: it trains "
                             "on the batch it is given, with no held-out part.")
        first = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first)
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X)
        weights = self._class_weights(Y, weights)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        self.n_outputs_ = Y.shape[1]
        dtype = X.dtype if plan.params["dtype"] is None else np.dtype(plan.params["dtype"])
        self._random_state = check_random_state(self.random_state)
        with backend.using(self.device):  # "gpu": the network lives and trains there
            if first:
                self._initialize(plan, X.shape[1], dtype)
            else:
                self._sync_in(plan)
            try:
                if plan.solver == "lbfgs":
                    self._fit_lbfgs(plan, X, Y, weights)
                else:
                    self._fit_stochastic(plan, X, Y, weights, incremental)
            except NonFiniteLossError as error:
                raise ValueError(f"{_NONFINITE} ({error})") from error
            finally:
                self._expose()
        if not all(np.isfinite(backend.to_numpy(w)).all()
                   for w in (*self.coefs_, *self.intercepts_)):
            raise ValueError(_NONFINITE)
        return self

    def _class_weights(self, Y: np.ndarray, weights: Any) -> Any:
        return weights

    def _initialize(self, plan: _Plan, n_features: int, dtype: Any) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(plan.hidden) + 2
        self.out_activation_ = self._out_activation()
        self._build(plan, [n_features, *plan.hidden, self.n_outputs_], dtype)
        self._draw_weights(plan)
        self._expose()
        self._best_weights = self.model_.get_weights()
        if plan.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if plan.early_stopping:
                self.validation_scores_: list[float] | None = []
                self.best_validation_score_: float | None = -np.inf
                self.best_loss_: float | None = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _normalized_weights(self, plan: _Plan, weights: Any) -> Any:
        """Sample weights rescaled to mean 1, and the penalty by the same factor: each
        batch's loss is then Σ wℓ/Σw + ½α‖W‖²/Σw as in scikit-learn (exactly for a full
        batch, in expectation for mini-batches)."""
        alpha = float(plan.params["alpha"])
        if weights is not None:
            mean = float(np.mean(weights))
            if not mean > 0:
                raise ValueError("`sample_weight` must have a positive sum. Received weights "
                                 f"summing to {float(np.sum(weights))}")
            alpha /= mean
            weights = weights / mean
            if np.all(weights == weights[0]):
                weights = None  # all equal: exactly the unweighted loss
        if isinstance(self._penalty, regularizers.L2PerSample):
            self._penalty.alpha = alpha
        return weights

    def _fit_stochastic(self, plan: _Plan, X: Any, Y: np.ndarray, weights: Any,
                        incremental: bool) -> None:
        model = self.model_
        if not incremental:  # partial_fit continues the optimizer's state
            model.compile(optimizer=self._new_optimizer(plan), loss=model.loss,
                          loss_weights=model.loss_weight)
        for name in ("loss_curve_", "best_loss_", "validation_scores_",
                     "best_validation_score_"):
            if not hasattr(self, name):  # coefs_ assigned by hand, then partial_fit
                setattr(self, name, [] if name == "loss_curve_" else
                        np.inf if name == "best_loss_" else None)
        self.__dict__.setdefault("_no_improvement_count", 0)
        self.__dict__.setdefault("t_", 0)
        val = None
        if plan.early_stopping:
            stratify = Y if self._is_classifier() and self.n_outputs_ == 1 else None
            parts = train_test_split(X, Y, *([] if weights is None else [weights]),
                                     random_state=self._random_state,
                                     test_size=plan.params["validation_fraction"],
                                     stratify=stratify)
            X, X_val, Y, Y_val = parts[:4]
            weights, val_weights = (None, None) if weights is None else parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            val = (X_val, self._decode(Y_val), val_weights)
        n = X.shape[0]
        batch_size = plan.params["batch_size"]
        if batch_size == "auto":
            batch = min(200, n)
        else:
            if batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It "
                              "is going to be clipped", stacklevel=3)
            batch = int(np.clip(batch_size, 1, n))
        weights = self._normalized_weights(plan, weights)
        rules = _StoppingRules(self, plan, n, val, incremental)
        self.n_iter_ = 0
        try:
            model.fit(X, Y.astype(model.dtype), batch_size=batch,
                      epochs=1 if incremental else plan.max_iter, verbose=0,
                      callbacks=[rules], shuffle=bool(plan.params["shuffle"]),
                      sample_weight=weights, seed=_EpochOrders(self._random_state, n))
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        rules.finish()

    def _fit_lbfgs(self, plan: _Plan, X: Any, Y: np.ndarray, weights: Any) -> None:
        try:
            from scipy.optimize import minimize
        except ImportError as exc:  # pragma: no cover - scikit-learn depends on SciPy
            raise ImportError("solver='lbfgs' needs SciPy: pip install 'layerwise[sklearn]'"
                              ) from exc
        weights = self._normalized_weights(plan, weights)
        Y = Y.astype(self.model_.dtype)
        iteration = [0]

        def report(intermediate_result: Any) -> None:
            iteration[0] += 1
            print(f"Iteration {iteration[0]}, loss = {intermediate_result.fun:.8f}")

        result = minimize(self._loss_grad_lbfgs, self._pack(), method="L-BFGS-B", jac=True,
                          args=(X, Y, weights), callback=report if self.verbose else None,
                          options={"maxfun": plan.params["max_fun"],
                                   "maxiter": plan.max_iter, "gtol": plan.tol})
        self._unpack(result.x)
        self.n_iter_ = min(int(result.nit), plan.max_iter)
        self.loss_ = float(result.fun)
        if result.status != 0:
            message = result.message.decode() if isinstance(result.message, bytes) \
                else result.message
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) (status="
                f"{result.status}): {message}. Increase the number of iterations "
                "(max_iter) or max_fun, or scale the data.", ConvergenceWarning, stacklevel=3)

    def _pack(self) -> np.ndarray:
        """The parameters in scikit-learn's order (all kernels, then all biases), float64."""
        dense = self._dense_layers()
        return np.concatenate([backend.to_numpy(layer.params[name]).ravel()
                               for name in ("kernel", "bias") for layer in dense]
                              ).astype(np.float64)

    def _unpack(self, packed: np.ndarray) -> None:
        start = 0
        for name in ("kernel", "bias"):
            for layer in self._dense_layers():
                param = layer.params[name]
                param[...] = backend.xp.asarray(
                    packed[start:start + param.size].reshape(param.shape), dtype=param.dtype)
                start += param.size

    def _loss_grad_lbfgs(self, packed: np.ndarray, X: Any, y: Any, sample_weight: Any,
                         *unused: Any) -> tuple[float, np.ndarray]:
        """The full-batch loss and its gradient at ``packed`` (scikit-learn's order and
        signature; scikit-learn's scratch buffers, if passed, are not needed)."""
        self._unpack(packed)
        model = self.model_
        y = backend.to_device(np.asarray(y, dtype=model.dtype).reshape(len(y), -1))
        if sample_weight is not None:
            sample_weight = backend.to_device(np.asarray(sample_weight, dtype=model.dtype))
        parts = list(_row_chunks(X))
        dense = self._dense_layers()
        if len(parts) == 1:
            loss, _ = model.compute_gradients(
                backend.to_device(_dense_rows(X, parts[0], model.dtype)), y, sample_weight)
            loss = float(backend.scalar(loss))
        else:  # a sparse matrix: the sum over row blocks, each densified on its own
            n = X.shape[0]
            loss, total = 0.0, None
            for rows in parts:
                w = None if sample_weight is None else sample_weight[rows]
                part, _ = model.compute_gradients(
                    backend.to_device(_dense_rows(X, rows, model.dtype)), y[rows], w,
                    penalty=False)
                share = (rows.stop - rows.start) / n
                loss += float(backend.scalar(part)) * share
                grads = [layer.grads[k] * share for layer in dense for k in ("kernel", "bias")]
                total = grads if total is None else [t + g for t, g in zip(total, grads)]
            for (layer, key), g in zip(((lay, k) for lay in dense for k in ("kernel", "bias")),
                                       total):
                layer.grads[key][...] = g
            loss += float(backend.scalar(model.regularization(n, add_gradients=True)))
        grad = np.concatenate([backend.to_numpy(layer.grads[name]).ravel()
                               for name in ("kernel", "bias") for layer in dense])
        return loss, grad.astype(np.float64)

    def _validation_score(self, X: Any, y: Any, weights: Any) -> float:
        """The score (accuracy or R²) on held-out data, from copies of the layers (training
        is in progress: its buffers stay untouched); NaN when outputs are not finite."""
        copies = [layer.inference_copy() for layer in self.model_.layers]
        outputs = np.concatenate([
            backend.to_numpy(self.model_.forward(backend.to_device(
                _dense_rows(X, rows, self.model_.dtype)), layers=copies))
            for rows in _row_chunks(X)])
        if not np.isfinite(outputs).all():
            return float("nan")
        return float(self._score_outputs(outputs, y, weights))

    # -- prediction ----------------------------------------------------------------------
    def _outputs(self, X: Any) -> np.ndarray:
        """The network's outputs ``(n_samples, n_outputs_)`` for checked ``X``."""
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                          dtype=[np.float64, np.float32])
        with backend.using(self.device):
            self._sync_in()
            return self.model_.predict(X, batch_size=4096)

    def _is_classifier(self) -> bool:
        return isinstance(self, ClassifierMixin)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = self.random_state is None
        return tags


class _StoppingRules(callbacks.Callback):
    """scikit-learn's per-epoch rules as a callback of ``model_.fit``: the loss curve, ``tol``
    with ``n_iter_no_change`` on the training loss or the validation score, the
    ``invscaling``/``adaptive`` learning rates, best weights for early stopping, and a
    ``ConvergenceWarning`` at ``max_iter``."""

    wants_batch_logs = False  # still told of a non-finite loss, which stops training

    def __init__(self, estimator: _BaseMLP, plan: _Plan, n_train: int, val: Any,
                 incremental: bool) -> None:
        super().__init__()
        self.est, self.plan, self.n_train, self.val = estimator, plan, n_train, val
        self.incremental = incremental
        self.stopped = self.diverged = False

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = (logs or {}).get("loss")
        if (logs or {}).get("nonfinite_weights") or (loss is not None and
                                                     not math.isfinite(loss)):
            self.diverged = True
            if self.plan.early_stopping:  # as scikit-learn: keep the best epoch's weights
                self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        est, plan = self.est, self.plan
        est.n_iter_ += 1
        est.loss_ = float(logs["loss"])
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        self._count_no_improvement()
        opt = est._optimizer
        if plan.solver == "sgd" and plan.schedule == "invscaling":
            p = plan.params
            opt.learning_rate = float(p["learning_rate_init"]) / (est.t_ + 1) ** p["power_t"]
        if est._no_improvement_count > plan.n_iter_no_change:
            what = "Validation score" if plan.early_stopping else "Training loss"
            message = (f"{what} did not improve more than tol={plan.tol:f} for "
                       f"{plan.n_iter_no_change} consecutive epochs.")
            if plan.solver == "sgd" and plan.schedule == "adaptive" and \
                    opt.learning_rate > 1e-6:
                opt.learning_rate /= 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"{message} Setting learning rate to {opt.learning_rate:f}")
            else:
                if est.verbose:
                    print(f"{message} Stopping.")
                self.stopped = True
                self.model.stop_training = True

    def _count_no_improvement(self) -> None:
        est, tol = self.est, self.plan.tol
        if self.plan.early_stopping:
            score = est._validation_score(*self.val)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_weights = est.model_.get_weights()
            return
        if est.loss_curve_[-1] > est.best_loss_ - tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        est.best_loss_ = min(est.best_loss_, est.loss_curve_[-1])

    def finish(self) -> None:
        est, plan = self.est, self.plan
        if plan.early_stopping:
            if self.diverged:
                est.validation_scores_.append(float("nan"))
            est.model_.set_weights(est._best_weights)
        elif self.diverged:
            raise ValueError(f"{_NONFINITE} The loss became non-finite in epoch "
                             f"{est.n_iter_ + 1}: lower learning_rate_init, or scale X.")
        if self.diverged:
            warnings.warn(f"Training diverged in epoch {est.n_iter_ + 1} (the loss became "
                          "non-finite); the weights of the best validation score are kept.",
                          ConvergenceWarning, stacklevel=4)
        elif plan.warn_convergence and not self.incremental and not self.stopped and \
                est.n_iter_ == plan.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({plan.max_iter}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning, stacklevel=4)


class _EpochOrders:
    """The epochs' sample orders as scikit-learn's MLP draws them from ``random_state``:
    each epoch permutes the previous epoch's order (``sklearn.utils.shuffle``), so the same
    ``random_state`` visits the samples in the same batches."""

    def __init__(self, random_state: np.random.RandomState, n: int) -> None:
        self.random_state, self.order = random_state, np.arange(n)

    def permutation(self, n: int) -> np.ndarray:
        if n != self.order.shape[0]:  # blocks of streamed (sparse) data: plain draws
            return self.random_state.permutation(n)
        self.order = self.order[self.random_state.permutation(n)]
        return self.order


def _row_chunks(X: Any) -> Any:
    """Row slices of ``X``: one for a dense array, blocks of about 32 MB dense for sparse."""
    n = X.shape[0]
    if not is_sparse(X):
        yield slice(0, n)
        return
    rows = max(1, _CHUNK_BYTES // (8 * max(1, X.shape[1])))
    for start in range(0, n, rows):
        yield slice(start, min(n, start + rows))


def _dense_rows(X: Any, rows: slice, dtype: Any) -> Any:
    part = X[rows]
    part = part.toarray() if is_sparse(part) else part
    return np.asarray(part, dtype=dtype)


def _check_solver(estimator: Any) -> bool:
    solver = estimator._param("solver")
    if solver not in ("sgd", "adam"):
        raise AttributeError("partial_fit is only available for stochastic optimizers. "
                             f"{solver} is not stochastic.")
    return True


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, on layerwise.

    Every parameter of ``sklearn.neural_network.MLPClassifier`` (1.9) with its name, default
    and meaning, plus:

    - ``activation`` may be any layerwise activation (``"gelu"``, ``"elu"``, ...) or a list
      with one per hidden layer; ``dropout`` a rate (or one per hidden layer) after each
      hidden layer;
    - ``optimizer``: a layerwise optimizer (object or name) in place of ``solver``'s;
      ``kernel_initializer``: a layerwise initialiser in place of scikit-learn's draws;
    - ``class_weight``: ``{class: weight}`` or ``"balanced"``, multiplying sample weights;
    - ``dtype``: the network's float type (default: X's, float32 or float64);
      ``device``: ``"cpu"``, ``"gpu"`` (CuPy) or None (the current layerwise backend).

    Outputs: softmax for several classes, one logistic unit for two, one per label for a 0/1
    indicator matrix (multi-label). Attributes as scikit-learn's (``classes_``, ``loss_``,
    ``best_loss_``, ``loss_curve_``, ``validation_scores_``, ``best_validation_score_``,
    ``t_``, ``coefs_``, ``intercepts_`` (the network's own arrays), ``n_features_in_``,
    ``feature_names_in_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``),
    and ``model_``, the layerwise ``Sequential``.
    """

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: Any = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: Any = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 dropout: Any = 0.0, optimizer: Any = None, kernel_initializer: Any = None,
                 class_weight: Any = None, dtype: Any = None, device: str | None = None
                 ) -> None:
        self._keep(locals())

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool
                        ) -> tuple[Any, np.ndarray]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        # bool: stratified splitting compares rows; converted to the network's dtype later
        return X, self._label_binarizer.transform(y).astype(bool)

    def _class_weights(self, Y: np.ndarray, weights: Any) -> Any:
        if self._param("class_weight") is None:
            return weights
        if Y.ndim == 2 and Y.shape[1] > 1 and self._label_binarizer.y_type_ != "multiclass":
            raise ValueError("`class_weight` needs single-label targets; for multi-label y "
                             "pass sample_weight. Received: class_weight="
                             f"{self._param('class_weight')!r}")
        labels = self._decode(Y)
        factors = compute_sample_weight(self._param("class_weight"), labels)
        return factors if weights is None else weights * factors

    def _decode(self, Y: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(np.asarray(Y, dtype=np.float64))

    def _score_outputs(self, outputs: np.ndarray, y: Any, weights: Any) -> float:
        return accuracy_score(y, self._labels(outputs), sample_weight=weights)

    def _labels(self, outputs: np.ndarray) -> np.ndarray:
        if self.n_outputs_ == 1:
            outputs = outputs.ravel()
        return self._label_binarizer.inverse_transform(outputs)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train on ``X`` (n_samples, n_features), dense or sparse, and labels ``y``
        (n_samples,) or a 0/1 indicator matrix; returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_check_solver)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
                    ) -> MLPClassifier:
        """One epoch over ``(X, y)``; the first call needs ``classes`` (every label)."""
        if classes is None and not hasattr(self, "classes_"):
            raise ValueError("`classes` must be given on the first call to partial_fit (all "
                             "the labels y can hold). Received: classes=None")
        if classes is not None:
            classes = unique_labels(classes)
            if hasattr(self, "classes_") and hasattr(self, "_label_binarizer"):
                if not np.array_equal(self.classes_, classes):
                    raise ValueError(f"`classes={classes!r}` is not the same as on the last "
                                     f"call to partial_fit, was: {self.classes_!r}")
            else:
                self.classes_ = classes
                self._label_binarizer = LabelBinarizer()
                target = np.asarray(y) if type_of_target(y).startswith("multilabel") \
                    else classes
                self._label_binarizer.fit(target)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (an indicator matrix for multi-label targets)."""
        return self._labels(self._outputs(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` (per label for multi-label)."""
        p = self._outputs(X)
        if self.n_outputs_ == 1:
            p = p.ravel()
        if p.ndim == 1:
            return np.vstack([1 - p, p]).T
        return p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """The output layer's logits: ``(n_samples,)`` for two classes, else per class."""
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                          dtype=[np.float64, np.float32])
        out = []
        with backend.using(self.device):
            self._sync_in()
            model = self.model_
            for rows in _row_chunks(X):
                h = backend.to_device(_dense_rows(X, rows, model.dtype))
                for layer in model.layers[:-1]:
                    h = layer.forward(h, training=False)
                out.append(backend.to_numpy(model.layers[-1].linear(h)))
        z = np.concatenate(out)
        return z[:, 0] if self.n_outputs_ == 1 else z

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, on layerwise.

    Parameters and attributes as :class:`MLPClassifier` (no ``classes_`` or
    ``class_weight``), with scikit-learn's ``loss``: ``"squared_error"`` (identity output) or
    ``"poisson"`` (exponential output, for counts). With several outputs the loss is the sum
    of the outputs' losses, whose gradient scikit-learn also follows (scikit-learn's
    ``loss_`` reports the mean over outputs instead).
    """

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Any = (100,),
                 activation: Any = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Any = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: Any = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 dropout: Any = 0.0, optimizer: Any = None, kernel_initializer: Any = None,
                 dtype: Any = None, device: str | None = None) -> None:
        self._keep(locals())

    def _out_activation(self) -> str:
        loss = _choice(self._param("loss"), ("squared_error", "poisson"), "loss")
        return "exp" if loss == "poisson" else "identity"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool
                        ) -> tuple[Any, np.ndarray]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self._param("loss") == "poisson" and np.any(y < 0):
            raise ValueError("`y` must be non-negative for loss='poisson'. Received a "
                             f"minimum of {y.min()}")
        return X, y

    def _decode(self, Y: np.ndarray) -> np.ndarray:
        return Y[:, 0] if Y.ndim == 2 and Y.shape[1] == 1 else Y

    def _score_outputs(self, outputs: np.ndarray, y: Any, weights: Any) -> float:
        return r2_score(y, self._decode(outputs), sample_weight=weights)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Train on ``X`` (n_samples, n_features), dense or sparse, and targets ``y``
        (n_samples,) or (n_samples, n_outputs); returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_check_solver)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``(X, y)``."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``(n_samples,)``, or ``(n_samples, n_outputs)`` for several targets."""
        return self._decode(self._outputs(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class _KerasNames:
    """The MLP estimators under Keras's parameter names: ``optimizer`` and ``learning_rate``
    (a float), ``epochs``, ``batch_size=32``, ``alpha`` as Keras's ``l2(alpha)`` on the hidden
    kernels (λ·Σw²), ``patience`` for early stopping. Training runs every epoch unless
    ``early_stopping`` stops it, with no ``ConvergenceWarning``; starting weights, training
    and attributes are the MLP estimators' own."""

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: Any = "relu",
                 optimizer: Any = "adam", learning_rate: float = 0.001, batch_size: int = 32,
                 epochs: int = 200, alpha: float = 0.0, dropout: Any = 0.0,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 patience: int = 10, random_state: Any = None, verbose: int = 0,
                 warm_start: bool = False, device: str | None = None) -> None:
        self._keep(locals())

    def _params(self) -> dict[str, Any]:
        mine = self.get_params(deep=False)
        return {"hidden_layer_sizes": mine["hidden_layer_sizes"],
                "activation": mine["activation"], "solver": "adam",
                "alpha": mine["alpha"], "batch_size": mine["batch_size"],
                "learning_rate": "constant", "learning_rate_init": mine["learning_rate"],
                "power_t": 0.5, "max_iter": mine["epochs"], "shuffle": True,
                "random_state": mine["random_state"], "tol": 0.0, "verbose": mine["verbose"],
                "warm_start": mine["warm_start"], "momentum": 0.9, "nesterovs_momentum": True,
                "early_stopping": mine["early_stopping"],
                "validation_fraction": mine["validation_fraction"], "beta_1": 0.9,
                "beta_2": 0.999, "epsilon": 1e-8, "n_iter_no_change": mine["patience"],
                "max_fun": 15000, "dropout": mine["dropout"], "optimizer": mine["optimizer"],
                "kernel_initializer": None, "class_weight": None, "dtype": None,
                "device": mine["device"], "loss": "squared_error"}

    @property
    def history_(self) -> dict[str, list[float]]:
        """Per-epoch logs of the last ``fit``: ``loss``, and ``val_score`` (accuracy or R²
        on the held-out part) with ``early_stopping``."""
        check_is_fitted(self, "coefs_")
        logs = {"loss": list(getattr(self, "loss_curve_", []) or [])}
        if getattr(self, "validation_scores_", None) is not None:
            logs["val_score"] = list(self.validation_scores_)
        return logs

    def _plan(self) -> _Plan:
        plan = _BaseMLP._plan(self)  # type: ignore[arg-type]
        plan.per_sample_alpha = False
        plan.warn_convergence = False
        if not plan.early_stopping:
            plan.n_iter_no_change = np.inf  # every epoch, as Keras's fit
        return plan


class DenseClassifier(_KerasNames, MLPClassifier):
    """:class:`MLPClassifier` with Keras's parameter names (see ``_KerasNames``):
    ``hidden_layer_sizes``, ``activation``, ``optimizer`` (name or object, default Adam),
    ``learning_rate``, ``batch_size``, ``epochs``, ``alpha`` (λ of ``l2(λ)`` on the hidden
    kernels), ``dropout``, ``early_stopping`` on a held-out ``validation_fraction`` with
    ``patience`` epochs, ``random_state``, ``verbose``, ``warm_start``, ``device``.
    Attributes as MLPClassifier's."""


class DenseRegressor(_KerasNames, MLPRegressor):
    """:class:`MLPRegressor` (squared error) with Keras's parameter names, as
    :class:`DenseClassifier`."""
