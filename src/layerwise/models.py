"""``Sequential``: a stack of layers, and the one training loop.

Data flow of one training step (``train_step``)::

    x (batch, features) -> layer.forward(x, training=True) for each layer in order
      -> loss and dL/d(output) -> layer.backward(dy) from last to first, filling grads
      -> gradient_reducer(grads) (hook, e.g. averaging over MPI ranks)
      -> optimizer.apply(params, grads)

The model knows only the order of its layers. When the last layer ends in softmax (or
sigmoid) and the loss is the matching cross-entropy, the loss is computed from that layer's
logits and its fused gradient p - y enters ``backward_logits``, skipping the activation's
Jacobian (stable for any logits, and cheaper).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import activations, blas, data, distributed, losses, optimizers, threads
from . import metrics as metrics_module
from .backend import scalar, to_device, to_numpy, xp
from .callbacks import Callback, CallbackList, History, ProgbarLogger, format_logs
from .guards import (
    InterruptGuard,
    NonFiniteLossError,
    NonFiniteWeightsError,
    StatePoint,
    all_finite,
    check_interval,
    lr_text,
)
from .input_checks import (
    as_feature_array,
    as_sample_weights,
    as_target_array,
    cast_finite,
    check_features,
    check_lengths,
    is_device_array,
)
from .layers import InputLayer, Layer
from .layers.base import LAYERS, check_positive_int
from .optimizers.base import tiling_base
from .utils import global_rng, make_rng

__all__ = ["Model", "Sequential", "NonFiniteLossError", "NonFiniteWeightsError", "clone_model",
           "load_model", "model_from_json"]


class Sequential:
    """A linear stack of layers, with Keras's ``compile``/``fit``/``evaluate``/``predict``.

    Args:
        layers: the layers, first to last; more can be appended with ``add``.
        name: the model's name, shown by ``summary``.

    Example::

        model = Sequential()
        model.add(Dense(input_dim=10, units=500, activation="sigmoid"))
        model.add(Dense(units=10, activation="softmax"))
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=100, epochs=20)
    """

    def __init__(self, layers: list[Layer] | None = None, name: str | None = None) -> None:
        self.name = name or "sequential"
        self.layers: list[Layer] = []
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.metrics: list[metrics_module.Metric] = []
        self.stop_training = False
        self.history: History | None = None
        #: called with the list of gradient arrays after backward, before the optimizer;
        #: it may change them in place (e.g. average them across data-parallel workers)
        self.gradient_reducer: Callable[[list[Any]], None] | None = None
        self._fused: losses.Loss | None = None  # set at the start of fit/evaluate
        self._regularized = False
        self._begun: losses.Loss | None = None  # the loss _begin last prepared for
        #: ``compile(loss_weights=...)``: the factor on the data loss and its gradient
        self.loss_weight = 1.0
        #: ``compile(jit_compile=...)``: whether fit may run its steps in the compiled kernel
        self.jit_compile: bool | str = "auto"
        self._param_list: list[Any] = []  # params/grads as handed to the optimizer
        self._grad_list: list[Any] = []
        self._flat_params: Any = None  # the buffer the parameters tile, when packed
        #: the gradient buffer, with ``_grad_tail`` trailing elements that carry the loss and
        #: the sample count in the same allreduce under ``layerwise.distributed``
        self._grad_buffer: Any = None
        self._grad_tail = 0
        self._strategy: Any = None  # the distributed context during fit, evaluate
        self._check_every = 1  # steps between weight checks (see guards.check_interval)
        self._buffer_depth = 0
        #: held by the call using the layers' own per-batch state (fit, or one inference
        #: call); a concurrent inference call works on its own copies instead
        self._lock = threading.RLock()
        self._guard: InterruptGuard | None = None  # set inside fit's loop
        self._governor: threads.Governor | None = None  # likewise (see layerwise.threads)
        self._last_governor: threads.Governor | None = None  # kept for the next fit
        self._layer_names: set[str] = set()
        #: names of the output classes (e.g. string labels read from a CSV), saved with the model
        self.class_names: list[Any] | None = None
        #: the columns of the first DataFrame given to fit, required of later DataFrames
        self.feature_names: list[str] | None = None
        #: the name of the target column the model was trained on (set by the command line)
        self.target_name: str | None = None
        self._metric_ids: list[Any] = []
        for layer in layers or []:
            self.add(layer)

    # -- structure -----------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append ``layer``; it is built at once if the model's input size is known.

        Also takes ``Input(shape=...)`` (the input's declaration, first) and another
        ``Sequential``, whose layers are appended (shared, as Keras nests a model)."""
        if getattr(layer, "_symbolic", False) and hasattr(layer, "input_layer"):
            layer = layer.input_layer  # Sequential([Input(shape=(8,)), ...])
        if isinstance(layer, Sequential):
            for inner in layer.layers:
                self.add(inner)
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"`layer` must be a layerwise Layer instance. Received: layer={layer!r}"
            )
        # a layer re-used from another model is checked against its input by build below
        if self.layers and layer._declared_input_dim is not None and not layer.built and \
                not isinstance(layer, InputLayer):
            raise ValueError(
                f"Only the first layer takes `input_dim`; layer {layer.name!r} is added at "
                f"position {len(self.layers)}. Received: input_dim={layer.input_dim}"
            )
        if len(self._layer_names) != len(self.layers):  # self.layers was edited directly
            self._layer_names = {existing.name for existing in self.layers}
        if layer.name in self._layer_names:
            raise ValueError(f"A layer named {layer.name!r} is already in the model.")
        self.layers.append(layer)
        self._layer_names.add(layer.name)
        if not self.layers[0].built and self.layers[0].input_dim is not None:
            self.build(self.layers[0].input_dim)
        elif len(self.layers) > 1 and self.layers[-2].built and not layer.built:
            layer.build(self.layers[-2].output_dim)
        elif len(self.layers) > 1 and self.layers[-2].built and \
                layer.input_dim != self.layers[-2].output_dim:  # a re-used, built layer
            self.layers.pop()
            self._layer_names.discard(layer.name)
            raise ValueError(
                f"Layer {layer.name!r} was built for input_dim={layer.input_dim}, but the "
                f"layer before it gives {self.layers[-1].output_dim} features. A built layer "
                "keeps its weights' shape: re-use it only where its input has that size.")

    def build(self, input_dim: int | None = None, input_shape: tuple[int] | None = None) -> None:
        """Create every layer's parameters for ``input_dim`` input features."""
        if input_shape is not None:
            input_dim = tuple(input_shape)[-1]
        if input_dim is None:
            input_dim = self.layers[0].input_dim if self.layers else None
        if input_dim is None:
            raise ValueError("`input_dim` is unknown: pass build(input_dim) or input_dim= "
                             "to the first layer.")
        if not self.layers:
            raise ValueError("The model has no layers; add some before building it.")
        dim = check_positive_int(input_dim, "input_dim")
        for layer in self.layers:
            if layer.built and layer.input_dim != dim:
                raise ValueError(
                    f"Layer {layer.name!r} was built for input_dim={layer.input_dim}, but the "
                    f"layer before it gives {dim} features."
                )
            if not layer.built:
                layer.build(dim)
            dim = layer.output_dim

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_dim(self) -> int | None:
        return self.layers[0].input_dim if self.layers else None

    @property
    def output_dim(self) -> int | None:
        return self.layers[-1].output_dim if self.layers else None

    @property
    def dtype(self) -> str:
        return self.layers[0].dtype if self.layers else "float32"

    @property
    def params(self) -> list[Any]:
        """Every trainable array, in layer order (the arrays themselves, not copies)."""
        return [p for layer in self.layers for p in layer.params.values()]

    @property
    def grads(self) -> list[Any]:
        """The gradient buffer of each array in ``params``, in the same order."""
        return [g for layer in self.layers for g in layer.grads.values()]

    @property
    def weights(self) -> list[Any]:
        """Every parameter array (Keras's ``model.weights``), in layer order."""
        return self.params

    @property
    def trainable_weights(self) -> list[Any]:
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Any]:
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    # -- compile -------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "sgd",
        loss: Any = None,
        metrics: list[Any] | None = None,
        loss_weights: Any = None,
        jit_compile: bool | str = "auto",
    ) -> None:
        """Choose the optimizer, the loss and the metrics reported during training.

        Args:
            optimizer: name (``"sgd"``, ...) or ``Optimizer`` object.
            loss: name (``"categorical_crossentropy"``, ``"mse"``, ...) or ``Loss`` object.
            metrics: names or ``Metric`` objects; ``"accuracy"`` adapts to the loss.
            loss_weights: a positive factor on the data loss and its gradient (the weight
                penalties are not scaled), as Keras's ``loss_weights`` for a model with one
                output; a one-element list or dict is accepted too.
            jit_compile: whether ``fit`` runs its steps in a compiled kernel (numba, the
                ``fast`` extra; see ``layerwise.compiled``) instead of step by step in
                Python. ``"auto"``: when numba is installed, every part of the model has a
                compiled form and the run is long enough to repay compiling (about a
                second, once per network shape and process). ``True``: whenever possible
                (a warning says why not otherwise); ``False``: never. Results equal the
                Python path's to float rounding.
        """
        if jit_compile not in (True, False, "auto"):
            raise ValueError("`jit_compile` must be True, False or 'auto'. Received: "
                             f"jit_compile={jit_compile!r}")
        if loss is None:
            raise ValueError(
                f"`loss` is required. Valid names are: {', '.join(losses.names())}. "
                "Received: loss=None"
            )
        # resolve everything first, then assign: a failed compile leaves the model as it was
        new_optimizer = optimizers.get(optimizer)
        new_loss = losses.get(loss)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"`metrics` must be a list. Received: metrics={metrics!r}")
        metric_ids = list(metrics or [])
        resolved = self._resolve_metrics(new_loss, metric_ids)
        weight = _loss_weight(loss_weights)
        self.optimizer, self.loss, self.loss_weight = new_optimizer, new_loss, weight
        self.jit_compile = jit_compile
        self._metric_ids, self.metrics = metric_ids, resolved

    def _resolve_metrics(self, loss: losses.Loss | None = None,
                         metric_ids: list[Any] | None = None) -> list[metrics_module.Metric]:
        """The metric objects for ``metric_ids`` (default: the compiled ones, which are then
        refreshed for the current output size)."""
        refresh = metric_ids is None
        loss = loss or self.loss
        resolved = [metrics_module.get(m, loss_name=loss.name, units=self.output_dim)
                    for m in (self._metric_ids if refresh else metric_ids)]
        if refresh:
            self.metrics = resolved
        return resolved

    def _fused_loss(self) -> losses.Loss | None:
        """The logits form of the loss when the last layer's activation matches it."""
        last = self.layers[-1]
        act = getattr(last, "activation", None)
        if (self.loss.logits_activation and not self.loss.from_logits
                and hasattr(last, "backward_logits") and act is not None
                and act == activations.get(self.loss.logits_activation)):
            return self.loss.with_logits()
        return None

    def _check_compiled(self, method: str) -> None:
        if self.loss is None or self.optimizer is None:
            raise RuntimeError(
                f"You must call compile() before {method}(): the model has no loss and optimizer."
            )

    # -- forward / backward --------------------------------------------------------------
    def forward(self, x: Any, training: bool = False, layers: list[Layer] | None = None) -> Any:
        """Output of the network for ``x`` of shape ``(batch, input_dim)`` (through
        ``layers``, per-call copies of the model's layers, when given)."""
        for layer in self.layers if layers is None else layers:
            x = layer.forward(x, training)
        return x

    def __call__(self, x: Any, training: bool = False) -> Any:
        """``model(x)``: the outputs for ``x`` as ``predict`` gives them (building the model
        first if needed); on a symbolic tensor, the chain continues through every layer."""
        if getattr(x, "_symbolic", False):
            for layer in self.layers:
                x = layer(x)
            return x
        if training:
            x = self._prepare(x, None)[0]
            return self.forward(to_device(x), training=True)
        return self.predict(x, batch_size=max(1, len(x)), verbose=0)

    def backward(self, dy: Any, start: int | None = None) -> Any:
        """Back-propagate dL/d(output) ``dy`` through layers ``start-1 .. 0``."""
        for layer in reversed(self.layers[:start]):
            if dy is None:  # the layers below need no gradient (no parameters there)
                break
            dy = layer.backward(dy)
        return dy

    def compute_gradients(
        self, x: Any, y: Any, sample_weight: Any | None = None, penalty: bool = True
    ) -> tuple[float, Any]:
        """Forward and backward on one batch; fills every layer's ``grads``.

        Returns the batch's loss (the data loss times ``loss_weights``, plus the weight
        penalties unless ``penalty`` is False, before any update) and the network's output.
        ``penalty=False`` serves a caller that sums the gradients of several parts of one
        batch and adds the penalties once (``regularization``).
        """
        if self._begun is not self.loss:
            self._begin("compute_gradients")
            self._mark_input_gradients()
        y_pred = self.forward(x, training=True)
        weight = self.loss_weight
        if self._fused is not None:
            last = self.layers[-1]
            loss, dz = self._fused.loss_and_gradient(y, last._z, sample_weight)
            if weight != 1.0:
                loss, dz = loss * weight, dz * weight
            dy = last.backward_logits(dz)
            if dy is not None:
                self.backward(dy, start=-1)
        else:
            loss, dy = self.loss.loss_and_gradient(y, y_pred, sample_weight)
            if weight != 1.0:
                loss, dy = loss * weight, dy * weight
            self.backward(dy)
        if self._regularized and penalty:
            loss += self.regularization(x.shape[0], add_gradients=True)
        return loss, y_pred

    def regularization(self, samples: int, add_gradients: bool = False) -> float:
        """Sum of the layers' weight penalties for a batch of ``samples`` rows (per-sample
        regularizers such as ``L2PerSample`` divide by it); with ``add_gradients``, their
        gradients are added to the layers' ``grads``."""
        total = 0.0
        for layer in self.layers:
            for name, regularizer in layer.regularizers.items():
                scale = 1.0 / max(samples, 1) if regularizer.per_sample else 1.0
                total += scale * regularizer.penalty(layer.params[name])
                if add_gradients:
                    grad = regularizer.gradient(layer.params[name])
                    if scale != 1.0:
                        grad *= scale
                    layer.grads[name] += grad
        return total

    def train_step(self, x: Any, y: Any, sample_weight: Any | None = None,
                   check_weights: bool | None = None) -> tuple[float, Any]:
        """One optimisation step on one batch: gradients, reduction hook, optimizer update.

        Raises ``NonFiniteLossError`` before updating when the loss is NaN or infinite, so
        the weights stay those from before this batch, and ``NonFiniteWeightsError`` when the
        update made weights NaN or infinite. Weights are checked after every
        ``guards.check_interval`` steps (every step for small models), or when
        ``check_weights`` is True.
        """
        if not self._param_list:
            self._prepare_step()
        strategy = self._strategy
        if strategy is not None and x.shape[0] == 0:  # an empty part of a global batch
            loss, y_pred = 0.0, None
            for grad in self._grad_list:
                grad[...] = 0.0
        else:
            loss, y_pred = self.compute_gradients(x, y, sample_weight)
        if strategy is not None:  # the global batch's gradient and loss, on every rank
            loss = strategy.reduce_step(self, loss, x.shape[0])
        elif self.gradient_reducer is not None:
            self.gradient_reducer(self._grad_list)
        if check_weights and not isinstance(loss, float):
            loss = scalar(loss)  # a device loss read now, when the caller asks for checks
        host = isinstance(loss, float)  # a device loss is checked by fit at its read points
        if host and not math.isfinite(loss):  # under layerwise.distributed: the global loss
            raise NonFiniteLossError(loss)
        guard = self._guard
        if guard is None:
            self.optimizer.apply(self._param_list, self._grad_list)
        else:  # a Ctrl-C now waits until the step is whole
            guard.critical = True
            try:
                self.optimizer.apply(self._param_list, self._grad_list)
            finally:
                guard.critical = False
        every = self._check_every
        if check_weights is None:
            check_weights = host and (every == 1 or self.optimizer.iterations % every == 0)
        if check_weights and not self.weights_finite():
            raise NonFiniteWeightsError(loss, every=every)
        if guard is not None:
            guard.deliver()
        return loss, y_pred

    def weights_finite(self) -> bool:
        """Whether every parameter is finite (one reduction over the flat buffer)."""
        flat = self._flat_params
        return all_finite([flat] if flat is not None else self.params)

    # -- data ----------------------------------------------------------------------------
    def _prepare(
        self, x: Any, y: Any | None, sample_weight: Any | None = None,
        class_weight: dict[Any, float] | None = None, names: tuple[str, str] = ("x", "y"),
        rows: Any = None,
    ) -> tuple[np.ndarray, Any, Any]:
        """Validate and convert ``x``, ``y`` and the weights before any computation.

        ``rows`` maps the rows of a streamed batch to rows of the whole data, for messages."""
        x = self._samples_as_rows(self._check_columns(x, names[0]))
        x = as_feature_array(x, self.dtype, names[0], rows)
        if not self.built:
            self.build(x.shape[1])
        check_features(x, self.input_dim, names[0])
        if y is None:
            return x, None, None
        y = as_target_array(y, names[1], rows)
        check_lengths(x, y, *names)
        y = self.loss.prepare_targets(y, self.output_dim, self.dtype)
        weights = as_sample_weights(y, sample_weight, class_weight, self.output_dim, self.dtype)
        if is_device_array(x):  # device data stays there: its targets and weights join it
            y = to_device(y)
            weights = None if weights is None else to_device(weights)
        return x, y, weights

    def _samples_as_rows(self, x: Any) -> Any:
        """Keras's shapes as layerwise's rows: 1-D ``x`` for a model of one input feature
        (a pandas Series, ``np.linspace``), and ``(batch, 28, 28)`` images for a model that
        starts with ``Flatten`` or ``Input``/``InputLayer`` (a view, no copy)."""
        ndim = getattr(x, "ndim", None)
        if ndim is None and isinstance(x, (list, tuple)):
            ndim = np.ndim(x)
        if ndim == 1 and self.input_dim in (None, 1) and not hasattr(x, "columns"):
            return (x.to_numpy() if hasattr(x, "to_numpy") else np.asarray(x)).reshape(-1, 1)
        if ndim is not None and ndim > 2 and self.layers and \
                getattr(self.layers[0], "flattens_samples", False):
            return x.reshape(x.shape[0], -1)
        return x

    def _check_columns(self, x: Any, argument: str) -> Any:
        """A DataFrame's values, after checking its columns against those seen in training.

        pandas and polars DataFrames are accepted wherever arrays are; the first one given to
        ``fit`` fixes ``feature_names``, and later data must have the same columns in the
        same order.
        """
        columns = getattr(x, "columns", None)
        if columns is None or not hasattr(x, "to_numpy"):
            return x
        columns = [str(c) for c in columns]
        if self.feature_names is None:
            self.feature_names = columns
        elif columns != self.feature_names:
            missing = [c for c in self.feature_names if c not in columns]
            extra = [c for c in columns if c not in self.feature_names]
            detail = (f"missing: {missing}; unexpected: {extra}" if missing or extra
                      else "the same columns in another order")
            raise ValueError(
                f"`{argument}` has columns {columns}, but the model was trained on "
                f"{self.feature_names} ({detail}). Select them in the training order, e.g. "
                f"{argument}[model.feature_names]."
            )
        values = x.to_numpy()
        if values.dtype == object:  # mixed columns, e.g. bool and float: numbers if they can
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                pass  # strings: the input checks say so, naming the argument
        return values

    def _begin(self, method: str) -> None:
        self._check_compiled(method)
        if not self.layers:
            raise ValueError(f"The model has no layers; add some before {method}().")
        self._fused = self._fused_loss()
        self._regularized = any(layer.regularizers for layer in self.layers)
        self._begun = self.loss

    def _prepare_step(self) -> None:
        """Once the model is built: pack the parameters and fix what backward must compute."""
        self._pack()
        self._mark_input_gradients()

    def _mark_input_gradients(self) -> None:
        below_has_params = False
        for layer in self.layers:  # dL/d(input) is needed only if a layer below learns
            layer.input_gradient = below_has_params
            below_has_params = below_has_params or bool(layer.params)

    def _pack(self) -> None:
        """Move every parameter into one flat buffer, and every gradient into another.

        Each layer keeps its own arrays, now views into the buffers, so nothing else changes;
        an optimizer then updates all parameters in one pass (see ``Optimizer.build``).
        """
        trainable = [layer for layer in self.layers if layer.trainable]
        names = tuple(layer.name for layer in trainable if layer.params)
        previous, self._trainable_layers = getattr(self, "_trainable_layers", None), names
        if previous is not None and previous != names and self.optimizer is not None and \
                self.optimizer.built:  # frozen or unfrozen since: the state starts afresh
            self.optimizer.set_state({"iterations": self.optimizer.iterations, "slots": {}})
        params = [p for layer in trainable for p in layer.params.values()]
        grads = [g for layer in trainable for g in layer.grads.values()]
        if not params or len({p.dtype for p in params}) != 1:
            self._param_list, self._grad_list = params, grads
            self._flat_params = self._grad_buffer = None
            self._check_every = check_interval(sum(int(p.size) for p in params))
            return
        tail = self._grad_tail
        if tiling_base(params) is None or tiling_base(grads, tail) is None:
            total = sum(p.size for p in params)
            flat_params = xp.empty(total, dtype=params[0].dtype)
            flat_grads = xp.zeros(total + tail, dtype=params[0].dtype)
            offset = 0
            for layer in trainable:
                for name, param in layer.params.items():
                    view = flat_params[offset:offset + param.size].reshape(param.shape)
                    view[...] = param
                    layer.params[name] = view
                    layer.grads[name] = flat_grads[offset:offset + param.size].reshape(
                        param.shape)
                    offset += param.size
            grads = [g for layer in trainable for g in layer.grads.values()]
            params = [p for layer in trainable for p in layer.params.values()]
        if [id(p) for p in self._param_list] != [id(p) for p in params]:
            self._param_list, self._grad_list = params, grads
        self._flat_params = tiling_base(self._param_list)
        grads = tiling_base(self._grad_list, tail)
        self._grad_buffer = None if grads is None else (grads.base if tail else grads)
        self._check_every = check_interval(sum(int(p.size) for p in self._param_list))

    def __getstate__(self) -> dict[str, Any]:
        # parameters unpickle as separate arrays (views become copies): pack them again
        state = dict(self.__dict__)
        state.update(_param_list=[], _grad_list=[], _flat_params=None, _guard=None,
                     _governor=None, _last_governor=None, _buffer_depth=0, _grad_buffer=None,
                     _strategy=None)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self.__dict__.setdefault("_layer_names", {layer.name for layer in self.layers})

    @contextlib.contextmanager
    def _reusing_buffers(self, batch: int | None = None) -> Iterator[None]:
        """Inside the model's own loops, layers reuse their per-batch arrays (and with MKL,
        NumPy's BLAS keeps to one thread: see ``blas.one_thread_pool``). Under
        ``set_blas("auto")`` the first loop first measures MKL against NumPy on this model's
        heaviest product for ``batch`` rows (``blas.decide``)."""
        if blas.pending():
            self._decide_blas(batch or 128)
        self._buffer_depth += 1
        for layer in self.layers:
            layer.reuse_buffers = True
        try:
            with blas.one_thread_pool():
                yield
        finally:
            self._buffer_depth -= 1
            if not self._buffer_depth:
                for layer in self.layers:
                    layer.reuse_buffers = False
                    layer.release_buffers()

    def _decide_blas(self, batch: int) -> None:
        kernels = [layer.params["kernel"] for layer in self.layers
                   if getattr(layer.params.get("kernel"), "ndim", 0) == 2]
        if kernels:
            k, n = max((w.shape for w in kernels), key=lambda shape: shape[0] * shape[1])
            blas.decide(batch, k, n, kernels[0].dtype)

    @contextlib.contextmanager
    def _inference_layers(self) -> Iterator[list[Layer]]:
        """The layers an inference call runs through: the model's own, or, while another
        thread is using those (a web server calling ``predict`` from many threads), copies
        that share the parameters and keep this call's per-batch state apart."""
        if self._lock.acquire(blocking=False):
            try:
                with self._reusing_buffers():
                    yield self.layers
            finally:
                self._lock.release()
            return
        layers = [layer.inference_copy() for layer in self.layers]
        for layer in layers:
            layer.reuse_buffers = True
        with blas.one_thread_pool():
            yield layers

    def _sources(
        self, x: Any, y: Any, sample_weight: Any, class_weight: Any, batch_size: int,
        validation_split: float, validation_data: tuple[Any, ...] | None,
        preprocess: Callable[[Any], Any] | None, steps: int | None,
    ) -> tuple[Any, Any]:
        """(training source, validation source or None), every check done up front."""
        if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"`validation_split` must be in [0, 1). Received: "
                             f"validation_split={validation_split!r}")
        streaming = data.is_streamed(x, preprocess)
        if validation_split and data.is_stream(x):
            raise ValueError("`validation_split` needs array data; with a Sequence or "
                             "generator pass validation_data= instead.")
        val = None
        if validation_data is not None:
            is_tuple = isinstance(validation_data, (tuple, list))
            if not data.is_stream(validation_data) and (
                    not is_tuple or len(validation_data) not in (2, 3)):
                raise ValueError(
                    "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, "
                    f"sample_weight_val). Received: {type(validation_data).__name__}")
            if data.is_stream(validation_data):
                val = self._source(validation_data, None, None, None, batch_size, preprocess,
                                   None, names=("x_val", "y_val"))
            else:
                vx, vy, vw = (*validation_data, None)[:3]
                val = self._source(vx, vy, vw, None, batch_size, preprocess, None,
                                   names=("x_val", "y_val"), streaming=streaming)
        if not streaming:
            x, y, weights = self._prepare(x, y, sample_weight, class_weight)
            if validation_split and validation_data is None:
                split = self._split_index(x.shape[0], validation_split)
                val = data.ArraySource(x[split:], y[split:], _part(weights, split, None),
                                       batch_size)
                x, y, weights = x[:split], y[:split], _part(weights, None, split)
            return data.ArraySource(x, y, weights, batch_size), val
        if y is None and not data.is_stream(x):
            raise ValueError("`y` is required when `x` is an array.")
        if validation_split and validation_data is None:
            split = self._split_index(x.shape[0], validation_split)
            val = self._source(x[split:], _part(y, split, None), _part(sample_weight, split,
                               None), class_weight, batch_size, preprocess, None)
            x, y = x[:split], _part(y, None, split)
            sample_weight = _part(sample_weight, None, split)
        return self._source(x, y, sample_weight, class_weight, batch_size, preprocess,
                            steps), val

    def _source(self, x: Any, y: Any, sample_weight: Any, class_weight: Any, batch_size: int,
                preprocess: Callable[[Any], Any] | None, steps: int | None,
                names: tuple[str, str] = ("x", "y"), streaming: bool = True) -> Any:
        """A batch source for ``x``; streamed sources check each batch, the first one now."""
        if not streaming:
            x, y, weights = self._prepare(x, y, sample_weight, class_weight, names=names)
            return data.ArraySource(x, y, weights, batch_size)

        def prepare(xb: Any, yb: Any, wb: Any, rows: Any = None) -> Any:
            return self._prepare(xb, yb, wb, class_weight, names=names, rows=rows)

        source = data.batch_source(x, y, sample_weight, batch_size, prepare, preprocess, steps)
        if isinstance(source, data.StreamedArraySource):
            if y is not None and len(y) != x.shape[0]:
                raise ValueError(
                    f"`{names[0]}` and `{names[1]}` must have the same number of samples. "
                    f"Received: {names[0]}.shape[0]={x.shape[0]}, len({names[1]})={len(y)}")
            head = slice(0, min(batch_size, x.shape[0]))
            source.prepare(x[head], _part(y, None, head.stop),
                           _part(sample_weight, None, head.stop))  # fail before training
        elif isinstance(source, data.SequenceSource):
            if source.steps == 0:
                raise ValueError(f"`{names[0]}` is an empty Sequence.")
            source.prepare(*data._unpack(x[0], f"{names[0]}[0]"))
        return source

    @staticmethod
    def _split_index(n: int, validation_split: float) -> int:
        split = int(n * (1.0 - validation_split))  # the last fraction is held out, as Keras
        if split == 0 or split == n:
            raise ValueError(
                f"validation_split={validation_split} of {n} samples leaves an empty "
                "training or validation set."
            )
        return split

    # -- Keras API -----------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any = None,
        batch_size: int | None = 32,
        epochs: int = 1,
        verbose: int = 1,
        callbacks: list[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple[Any, ...] | None = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | None = None,
        sample_weight: Any | None = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        preprocess: Callable[[Any], Any] | None = None,
        seed: Any = None,
    ) -> History:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches of ``batch_size``.

        ``batch_size=1`` is stochastic gradient descent, ``batch_size=len(x)`` batch gradient
        descent, anything between mini-batch; the last partial batch is used. With
        ``shuffle=True`` the samples are reshuffled before every epoch.

        Args:
            x: features ``(samples, features)``; a ``numpy.memmap`` is streamed from disk
                block by block, and a SciPy sparse matrix is densified one batch at a time;
                a :class:`layerwise.data.Sequence` or a generator yields
                ``(x, y)`` or ``(x, y, sample_weight)`` batches itself (then ``y`` is None).
            validation_split: fraction of the data, taken from the end before shuffling, held
                out to compute ``val_loss`` and ``val_<metric>`` after each epoch.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``;
                overrides ``validation_split``.
            class_weight: ``{class: weight}`` multiplying each sample's loss by its class's
                weight.
            sample_weight: one weight per sample, multiplying its loss.
            initial_epoch: epoch to start counting from (when resuming training).
            steps_per_epoch: batches per epoch taken from a generator (default: until it ends).
            preprocess: applied to each batch of ``x`` before it enters the network, e.g.
                ``lambda b: b.astype("float32") / 255`` for uint8 images; implies streaming.
            verbose: 0 silent, 1 progress bar (one line per epoch when not on a terminal),
                2 one line per epoch.
            seed: an int, or a ``numpy.random.Generator`` or ``RandomState`` (anything with
                ``permutation(n)``, called once per epoch), for the shuffling order; the
                global generator (``layerwise.utils.set_random_seed``) when None.

        Returns a ``History`` whose ``history`` maps ``"loss"`` and each metric to its
        per-epoch values (the mean over the epoch's batches, weighted by batch size).
        Arguments and data (for streamed data: the first batch, then each batch before it is
        used) are checked before the first update.
        """
        self._begin("fit")
        batch_size = check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        for arg, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"`{arg}` must be a non-negative integer. Received: "
                                 f"{arg}={value!r}")
        verbose = _verbosity(verbose)
        if steps_per_epoch is not None:
            steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"`shuffle` must be True or False. Received: shuffle={shuffle!r}")
        streamed = seed is not None and not isinstance(seed, (int, np.integer)) and \
            callable(getattr(seed, "permutation", None))  # a Generator or RandomState
        if seed is not None and not streamed:
            make_rng(seed)  # validates
        context = distributed.current()
        if context is not None:  # data-parallel: see layerwise.distributed
            seed = self._distributed_checks(context, x, validation_data, seed)
        if any(getattr(cb, "writes_model_files", False) for cb in callbacks or []):
            from .saving import check_savable

            check_savable(self)  # refuse now, not after an epoch's work
        train, val = self._sources(x, y, sample_weight, class_weight, batch_size,
                                   validation_split, validation_data, preprocess,
                                   steps_per_epoch)
        if steps_per_epoch is not None and isinstance(train, data.ArraySource):
            train.max_steps = steps_per_epoch  # arrays: this many batches of each epoch
            train.steps = min(train.steps, steps_per_epoch)
        self._resolve_metrics()

        self.history = History()
        cbs = [*(callbacks or []), self.history]
        if verbose and distributed.is_chief():  # one progress line per epoch, from rank 0
            cbs.append(ProgbarLogger(verbose))
        keys = list(self._logs(np.zeros(1 + len(self.metrics))))
        params = {"epochs": epochs, "steps": train.steps, "batch_size": batch_size,
                  "samples": train.samples, "verbose": verbose,
                  "metrics": keys + ([f"val_{k}" for k in keys] if val else [])}
        callback_list = CallbackList(cbs, self, params)
        self.stop_training = False
        self._prepare_step()
        if context is not None:
            context.broadcast_model(self)  # every rank starts from rank 0's state
            for source in (train, val):
                if source is not None:
                    source.shard = context.shard
        # the order of epoch e: from (seed, e) for an int seed, so a run resumed with
        # initial_epoch continues the same orders; else from the given or global generator
        if not shuffle:
            orders: Callable[[int], np.random.Generator | None] = lambda epoch: None  # noqa: E731
        elif seed is None or streamed:
            stream = global_rng() if seed is None else seed
            orders = lambda epoch: stream  # noqa: E731
        else:
            orders = lambda epoch: np.random.default_rng([int(seed), epoch])  # noqa: E731
        # a diverging run is reported once, by NonFiniteLossError, not by NumPy warnings
        with self._lock, np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                self._reusing_buffers(batch_size), InterruptGuard() as guard, \
                threads.governor(getattr(self, "_last_governor", None)) as governor:
            self._guard, self._governor, self._strategy = guard, governor, context
            self._last_governor = governor  # the next fit continues its measurement
            try:
                self._train_epochs(train, val, epochs, initial_epoch, orders, callback_list)
            finally:
                self._guard = self._governor = self._strategy = None
        return self.history

    def _train_epochs(self, train: Any, val: Any, epochs: int, initial_epoch: int,
                      orders: Callable[[int], np.random.Generator | None],
                      callback_list: CallbackList) -> None:
        """The training loop: epochs of batches (shuffled by ``orders(epoch)``), with the
        callbacks' hooks. ``on_train_end`` runs on every exit, errors and Ctrl-C included."""
        self._last_logs: dict[str, float] = {}
        self.training_failed = False
        callback_list.on_train_begin()
        resume = self.__dict__.pop("_resume_epoch", None)  # set by BackupAndRestore
        if resume is not None:
            initial_epoch = max(initial_epoch, resume)
        try:
            self._run_epochs(train, val, epochs, initial_epoch, orders, callback_list)
        except BaseException as error:
            self.training_failed = True  # callbacks see it in on_train_end
            self._end_after_error(callback_list, error)
            raise
        callback_list.on_train_end(dict(self._last_logs))

    def _run_epochs(self, train: Any, val: Any, epochs: int, initial_epoch: int,
                    orders: Callable[[int], np.random.Generator | None],
                    callback_list: CallbackList) -> None:
        batch_hooks = callback_list.wants_batches
        governor, strategy = self._governor, self._strategy
        device = xp.__name__ != "numpy"  # losses and metrics then stay on the device
        point = StatePoint()
        kernel = self._epoch_kernel(train, batch_hooks, epochs - initial_epoch,
                                    callback_list.params.get("verbose", 0))
        callback_list.params["jit_compiled"] = kernel is not None  # History.params shows it
        for epoch in range(initial_epoch, epochs):
            if strategy is not None:
                strategy.seed_noise(epoch)
            train.epoch = epoch  # a Sequence learns the epoch (see data.Sequence)
            callback_list.on_epoch_begin(epoch)
            point.take(self._live_params(), self.optimizer)
            totals = _Totals(1 + len(self.metrics), device)
            self._reset_metric_states()
            seen = 0
            if kernel is not None:  # the epoch's steps in the compiled kernel
                seen, step = self._compiled_epoch(kernel, train, orders(epoch), point, epoch,
                                                  callback_list, totals)
            for step, batch in enumerate(() if kernel is not None else
                                         train.batches(orders(epoch))):
                xb, yb, wb = _on_device(batch)  # the batch going in: one documented transfer
                if batch_hooks:
                    callback_list.on_train_batch_begin(step)
                try:
                    loss, y_pred = self.train_step(xb, yb, wb)
                except NonFiniteLossError as error:
                    self._step_failed(error, point, epoch, step, callback_list)
                    break  # stopped quietly by a callback (e.g. TerminateOnNaN)
                if governor is not None:  # measures the step rate under each thread count
                    governor.step()
                count = xb.shape[0]
                seen += count
                totals.add(0, loss * count)
                for i, metric in enumerate(self.metrics, start=1):
                    if count:
                        self._add_metric(totals, i, metric, yb, y_pred, wb)
                if device and (batch_hooks or (step + 1) % DEVICE_CHECK_STEPS == 0):
                    if not self._device_check(totals, point, epoch, step, callback_list):
                        break  # rolled back, and stopped quietly by a callback
                if batch_hooks:  # running means over the epoch so far, as Keras reports
                    callback_list.on_train_batch_end(step, {**self._logs(totals.read() / seen),
                                                            "size": count})
                if self.stop_training:
                    break
            if device and seen and not self.stop_training and \
                    not self._device_check(totals, point, epoch, step, callback_list):
                break  # the epoch's one read: losses, metrics and the weights' finiteness
            totals = totals.read()
            if strategy is not None:  # every rank logs the same epoch means
                reduced = strategy.sum(np.append(totals, seen))
                totals, seen = reduced[:-1], reduced[-1]
                self._reduce_metric_states(strategy)
            if seen == 0:
                break
            if not device and self._check_every > 1 and not self.stop_training and \
                    not self.weights_finite():
                # the last steps since a check: nothing sees the epoch's weights unchecked
                error = NonFiniteWeightsError(totals[0] / seen, every=self._check_every)
                self._roll_back(point, error, epoch, step, callback_list)
                break
            logs = self._logs(totals / seen)
            if val is not None:
                logs.update(self._evaluate_source(val, prefix="val_", strategy=strategy))
            callback_list.on_epoch_end(epoch, logs)
            self._last_logs = logs
            if self.stop_training:
                break
            if getattr(train, "exhausted", False):
                if epoch + 1 < epochs:
                    warnings.warn(
                        f"The generator ran out of data in epoch {epoch + 1} of {epochs}; "
                        "training stopped. Make it yield at least steps_per_epoch x epochs "
                        "batches (for example loop forever and pass steps_per_epoch=), or use "
                        "a layerwise.data.Sequence, which is read again every epoch.",
                        UserWarning, stacklevel=4)
                break

    def _step_failed(self, error: NonFiniteLossError, point: StatePoint, epoch: int,
                     step: int, callback_list: CallbackList) -> None:
        """After batch ``step`` gave a non-finite loss or weights: roll back or raise with a
        true message; returns only when a callback stopped training quietly."""
        if isinstance(error, NonFiniteWeightsError):
            self._roll_back(point, error, epoch, step, callback_list)
            return
        if self._check_every > 1 and not self.weights_finite():
            # an unchecked update broke the weights, hence this loss
            self._roll_back(point, NonFiniteWeightsError(
                error.loss, every=self._check_every), epoch, step, callback_list)
            return
        callback_list.on_train_batch_end(step, {"loss": error.loss, "size": 0})
        if self.stop_training:
            return
        raise NonFiniteLossError(error.loss, epoch, step, self.optimizer) from None

    def _epoch_kernel(self, train: Any, batch_hooks: bool, epochs: int, verbose: int) -> Any:
        """The compiled kernel ``fit`` runs its epochs in, or None (see ``compiled``).
        Under ``"auto"``, a run too short to repay compiling trains in Python quietly; a
        longer one that cannot be compiled says why in ``verbose=2``."""
        mode = getattr(self, "jit_compile", "auto")
        if mode is False:
            return None
        from . import compiled

        steps = train.steps if isinstance(train, data.ArraySource) else 0
        reason = compiled.reason_not_compiled(self, train, batch_hooks)
        if mode == "auto" and epochs * steps < compiled.AUTO_MIN_STEPS and (
                reason is not None or not compiled.EpochKernel.is_compiled(self)):
            return None
        if reason is not None:
            if mode is True:
                warnings.warn(f"jit_compile=True, but fit trains step by step in Python: "
                              f"{reason}.", UserWarning, stacklevel=4)
            elif verbose == 2 and compiled.available() and distributed.is_chief():
                print(f"Training step by step in Python: {reason}.")
            return None
        optimizer = self.optimizer
        if not optimizer.built:
            optimizer.build(self._param_list, self._grad_list)
        flat = optimizer._flat
        if flat is None or (flat[0] is not self._flat_params and \
                flat[0].__array_interface__ != self._flat_params.__array_interface__):
            return None
        if verbose and distributed.is_chief() and not compiled.EpochKernel.is_compiled(self):
            print("Compiling the training kernel of this network (once: it is kept in the "
                  "cache directory, see docs/compiled.md)...", flush=True)
        try:
            kernel = compiled.EpochKernel(self, train.batch_size)
            kernel.prepare(train)
        except compiled.CompileError as error:  # e.g. a user's formula numba cannot compile
            warnings.warn(f"fit trains step by step in Python: the compiled kernel failed to "
                          f"build ({error}).", UserWarning, stacklevel=4)
            return None
        return kernel

    def _predict_kernel(self, x: Any, batch_size: int) -> Any:
        """The compiled inference kernel ``predict`` runs ``x`` through, or None (then it
        runs layer by layer). As for ``fit``: never under ``jit_compile=False``; under
        ``"auto"`` only when the kernel is compiled already or ``x`` makes at least
        ``compiled.AUTO_MIN_STEPS`` batches (compiling takes seconds, once)."""
        mode = getattr(self, "jit_compile", "auto")
        if mode is False or getattr(self, "_predict_failed", False):
            return None
        from . import compiled

        if compiled.reason_not_predicted(self, x) is not None:
            return None
        if mode == "auto" and x.shape[0] < compiled.AUTO_MIN_STEPS * batch_size and \
                not compiled.PredictKernel.is_compiled(self):
            return None
        return compiled.PredictKernel(self)

    def _compiled_epoch(self, kernel: Any, train: Any, rng: Any, point: StatePoint,
                        epoch: int, callback_list: CallbackList, totals: _Totals
                        ) -> tuple[int, int]:
        """One epoch in the compiled kernel, in stretches of at most ``compiled.MAX_STEPS``
        steps. Returns the samples seen and the index of the last batch, as the Python loop
        leaves them."""
        from .compiled import MAX_STEPS, STRETCH

        n, batch, steps = train.samples, train.batch_size, train.steps
        order = np.arange(n) if rng is None else rng.permutation(n)
        optimizer, guard, governor = self.optimizer, self._guard, self._governor
        seen = step = 0
        while step < steps:
            # stretches of about STRETCH seconds: the thread governor measures between them
            chunk = min(steps - step, MAX_STEPS, max(1, int(STRETCH / kernel.step_time)))
            started = time.perf_counter()
            if guard is not None:  # a Ctrl-C now waits until the stretch is whole
                guard.critical = True
            try:
                done, status, total, last = kernel.run(order, step, chunk, batch)
                optimizer.iterations += done  # the kernel flushed tiny state as apply does
            finally:
                if guard is not None:
                    guard.critical = False
            if done:
                kernel.step_time = (time.perf_counter() - started) / done
                if governor is not None:
                    governor.step(done)
            seen += min(n, (step + done) * batch) - step * batch
            totals.add(0, total)
            step += done
            if status:
                error = NonFiniteLossError(last) if status == 1 else \
                    NonFiniteWeightsError(last, every=self._check_every)
                self._step_failed(error, point, epoch, step - (status == 2), callback_list)
                return seen, step
            if guard is not None:
                guard.deliver()
        return seen, steps - 1

    def _device_check(self, totals: _Totals, point: StatePoint, epoch: int, step: int,
                      callback_list: CallbackList) -> bool:
        """On a device backend: read the running sums and whether the weights are finite in
        one transfer. A non-finite loss or weight since the last read rolls back to the
        epoch's start (see ``_roll_back``). Returns False when a callback stopped training
        quietly after such a roll-back."""
        flat = self._live_params()
        finite = xp.stack([xp.isfinite(xp.sum(p)) for p in flat]).all()
        values = to_numpy(xp.concatenate([totals.values, finite.astype(totals.values.dtype)[
            None]]))
        totals.cache(values[:-1])
        if math.isfinite(values[0]) and values[-1]:
            return True
        every = f"read every {DEVICE_CHECK_STEPS} steps and at each epoch's end on a device"
        if not math.isfinite(values[0]):
            error: NonFiniteLossError = NonFiniteLossError(float(values[0]), message=(
                f"The loss became {values[0]} in epoch {epoch + 1} (found after batch "
                f"{step + 1}; {every})."))
        else:
            error = NonFiniteWeightsError(float(values[0]), every=DEVICE_CHECK_STEPS)
        self._roll_back(point, error, epoch, step, callback_list)
        return False

    def _roll_back(self, point: StatePoint, error: NonFiniteLossError, epoch: int,
                   step: int, callback_list: CallbackList) -> None:
        """Restore the epoch's starting state after ``error``; raise it with a true message
        unless a callback stops training quietly."""
        point.restore(self._live_params(), self.optimizer)
        callback_list.on_train_batch_end(step, {"loss": error.loss, "size": 0,
                                                "nonfinite_weights": True})
        if self.stop_training:  # e.g. TerminateOnNaN
            return
        if not isinstance(error, NonFiniteWeightsError):  # a loss found late, on a device
            error.add_note_to_message(
                f"The weights and optimizer state were rolled back to the start of epoch "
                f"{epoch + 1}. The learning rate{lr_text(self.optimizer)} is probably too "
                "high: try a lower learning_rate, or clipnorm=1.0.")
            raise error
        raise NonFiniteWeightsError(
            error.loss, epoch, step, self.optimizer, every=error.every,
            restored=f"The weights and optimizer state were rolled back to the start of "
                     f"epoch {epoch + 1}.") from None

    def _distributed_checks(self, context: Any, x: Any, validation_data: Any,
                            seed: Any) -> int:
        """What data-parallel fit needs: batches every rank can split the same way, and a
        seed every rank shares. Returns the seed of the epoch orders."""
        for value in (x, validation_data):
            if data.is_stream(value) and not isinstance(value, data.Sequence):
                raise ValueError(_NO_GENERATORS)
            if isinstance(value, data.Sequence):  # before its first batch is checked
                value.rank, value.world_size = context.rank, context.size
        if xp.__name__ != "numpy":
            raise ValueError("layerwise.distributed trains on the NumPy backend; a device "
                             f"backend ({xp.__name__}) with MPI is not supported yet.")
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError("Under layerwise.distributed, `seed` must be an int that every "
                             "rank passes (or None: the job's shared seed). Received: a "
                             "numpy Generator")
        self._grad_tail = 2 if context.size > 1 else 0  # the loss and count ride along
        return context.seed if seed is None else seed

    def _live_params(self) -> list[Any]:
        return [self._flat_params] if self._flat_params is not None else self.params

    def _end_after_error(self, callback_list: CallbackList, error: BaseException) -> None:
        """``on_train_end`` after an error; the error's message then says truly what the
        weights are (a callback such as EarlyStopping may have restored others)."""
        if not isinstance(error, NonFiniteLossError):
            callback_list.on_train_end()
            return
        before = [to_numpy(p).copy() for p in self._live_params()]
        callback_list.on_train_end()
        if any(
                not np.array_equal(b, to_numpy(p), equal_nan=True)
                for b, p in zip(before, self._live_params())):
            error.add_note_to_message(
                "Then a callback's on_train_end replaced them (e.g. EarlyStopping with "
                "restore_best_weights=True restored its best epoch's weights).")

    def _logs(self, means: np.ndarray, prefix: str = "") -> dict[str, float]:
        names = ["loss", *(m.name for m in self.metrics)]
        logs = {prefix + name: float(v) for name, v in zip(names, means)}
        for metric in self.metrics:  # stateful metrics: the result over what they have seen
            if metric.stateful:
                result = metric.result()
                logs[prefix + metric.name] = float(np.asarray(to_numpy(result)).ravel()[0]) \
                    if np.ndim(to_numpy(result)) else float(result)
        return logs

    def _reduce_metric_states(self, strategy: Any) -> None:
        """Stateful metrics' variables summed over the ranks (their states are sums)."""
        for metric in self.metrics:
            for variable in metric.variables if metric.stateful else []:
                variable.assign(strategy.sum(variable.value))

    def _reset_metric_states(self) -> None:
        for metric in self.metrics:
            if metric.stateful:
                metric.reset_state()

    @staticmethod
    def _add_metric(totals: _Totals, index: int, metric: Any, y_true: Any, y_pred: Any,
                    weights: Any) -> None:
        """One batch into a metric: a per-sample sum where the data is, or the state of a
        stateful metric (precision, AUC, a user's ``update_state``)."""
        if metric.stateful:
            metric.update_state(y_true, y_pred, weights)
        else:
            totals.add(index, metric.per_sample(y_true, y_pred).sum())

    def _evaluate_source(self, source: Any, prefix: str = "",
                         layers: list[Layer] | None = None, strategy: Any = None,
                         hooks: CallbackList | None = None) -> dict[str, float]:
        """Loss and metrics over every batch of ``source``, in inference mode (through
        ``layers``, see ``forward``; summed over the ranks of ``strategy``)."""
        layers = self.layers if layers is None else layers
        totals = _Totals(1 + len(self.metrics), xp.__name__ != "numpy")
        self._reset_metric_states()
        seen = 0
        for step, batch in enumerate(source.batches(None)):
            xb, yb, wb = _on_device(batch)
            if xb.shape[0] == 0:  # an empty part of a batch split across ranks
                continue
            if hooks is not None:
                hooks.on_test_batch_begin(step)
            y_pred = self.forward(xb, training=False, layers=layers)
            scale = xb.shape[0] * self.loss_weight
            if self._fused is not None:
                totals.add(0, self._fused(yb, layers[-1]._z, wb) * scale)
            else:
                totals.add(0, self.loss(yb, y_pred, wb) * scale)
            for i, metric in enumerate(self.metrics, start=1):
                self._add_metric(totals, i, metric, yb, y_pred, wb)
            seen += xb.shape[0]
            if hooks is not None:  # running means, as Keras reports them
                hooks.on_test_batch_end(step, {**self._logs(totals.read() / seen),
                                               "size": xb.shape[0]})
        totals = totals.read()  # the one read of an evaluation
        if strategy is not None:
            reduced = strategy.sum(np.append(totals, seen))
            totals, seen = reduced[:-1], reduced[-1]
            self._reduce_metric_states(strategy)
        if seen == 0:
            raise ValueError("The evaluation data yielded no batches.")
        means = totals / seen
        if self._regularized:
            means[0] += scalar(self.regularization(int(seen)))
        return self._logs(means, prefix)

    def evaluate(
        self, x: Any, y: Any = None, batch_size: int | None = None, verbose: int = 1,
        sample_weight: Any | None = None, class_weight: dict[int, float] | None = None,
        steps: int | None = None, preprocess: Callable[[Any], Any] | None = None,
        return_dict: bool = False, callbacks: list[Callback] | None = None,
    ) -> float | list[float] | dict[str, float]:
        """Loss (and metrics) on ``(x, y)`` in inference mode (dropout off).

        The loss includes any regularisation penalty, as in ``fit``'s logs, and is weighted
        by ``sample_weight`` and ``class_weight`` as in ``fit``. ``x`` may be streamed as in
        ``fit`` (memmap, ``preprocess``, Sequence, generator with ``steps``). Returns
        ``[loss, *metrics]``, or the loss alone when there are no metrics, or with
        ``return_dict=True`` ``{"loss": ..., metric: ...}``. ``callbacks`` get
        ``on_test_begin``/``_end`` (with the logs) and, per batch, ``on_test_batch_*``.
        """
        verbose = _verbosity(verbose)
        self._begin("evaluate")
        batch_size = check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        streaming = data.is_streamed(x, preprocess)
        if not streaming and y is None:
            raise ValueError("`y` is required when `x` is an array.")
        source = self._source(x, y, sample_weight, class_weight, batch_size, preprocess, steps,
                              streaming=streaming)
        self._resolve_metrics()
        context = distributed.current()
        if context is not None:  # every rank evaluates its part; the sums are reduced
            if isinstance(source, data.IteratorSource):
                raise ValueError(_NO_GENERATORS)
            source.shard = context.shard
        hooks = CallbackList(list(callbacks or []), self,
                             {"verbose": verbose, "steps": getattr(source, "steps", None)})
        hooks.on_test_begin()
        with self._inference_layers() as layers:
            logs = self._evaluate_source(source, layers=layers, strategy=context,
                                         hooks=hooks if hooks.wants("test") else None)
        hooks.on_test_end(dict(logs))
        if verbose and distributed.is_chief():
            print(format_logs(logs))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = 0,
                steps: int | None = None, preprocess: Callable[[Any], Any] | None = None,
                callbacks: list[Callback] | None = None) -> np.ndarray:
        """The network's outputs for ``x``, shape ``(batch, output_dim)``, in inference mode.

        ``x`` may be streamed as in ``fit``; a Sequence or generator may yield bare ``x``
        batches or ``(x, ...)`` tuples. ``callbacks`` get ``on_predict_begin``/``_end`` and,
        per batch, ``on_predict_batch_begin``/``_end`` (logs ``{"outputs": ...}``).
        """
        if not self.layers:
            raise ValueError("The model has no layers; add some before predict().")
        _verbosity(verbose)
        batch_size = check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        hooks = CallbackList(list(callbacks or []), self, {"verbose": verbose})
        hooks.on_predict_begin()
        result = self._predict(x, batch_size, steps, preprocess,
                               hooks if hooks.wants("predict") else None)
        hooks.on_predict_end()
        return result

    def _predict(self, x: Any, batch_size: int, steps: int | None,
                 preprocess: Callable[[Any], Any] | None, hooks: CallbackList | None
                 ) -> np.ndarray:
        streaming = data.is_streamed(x, preprocess)
        if not streaming:
            # checked whole for shape and type, converted batch by batch: a float64 or uint8
            # input is never copied whole into the model's dtype
            x = as_feature_array(self._samples_as_rows(self._check_columns(x, "x")), None,
                                 "x")
            if not self.built:
                self.build(x.shape[1])
            check_features(x, self.input_dim, "x")
            out = np.empty((x.shape[0], self.output_dim), dtype=self.dtype)
            kernel = self._predict_kernel(x, batch_size) if hooks is None else None
            if kernel is not None:
                from .compiled import CompileError

                cast_finite(x, self.dtype, "x")  # checked whole: no copy, one summing pass
                try:
                    kernel.run(x, out, batch_size)
                    return out
                except CompileError as error:
                    warnings.warn(f"predict runs layer by layer in Python: the compiled "
                                  f"kernel failed to build ({error}).", UserWarning,
                                  stacklevel=4)
                    self._predict_failed = True
            with self._inference_layers() as layers:
                for step, start in enumerate(range(0, x.shape[0], batch_size)):
                    stop = min(start + batch_size, x.shape[0])
                    if hooks is not None:
                        hooks.on_predict_batch_begin(step)
                    if is_device_array(x):  # checked whole above, on the device
                        xb = xp.ascontiguousarray(x[start:stop], dtype=self.dtype)
                    else:
                        xb = cast_finite(x[start:stop], self.dtype, "x", rows=start)
                    out[start:stop] = to_numpy(self.forward(to_device(xb), training=False,
                                                            layers=layers))
                    if hooks is not None:
                        hooks.on_predict_batch_end(step, {"outputs": out[start:stop]})
            return out
        if data.is_stream(x):
            x = _features_only(x)
        source = self._source(x, None, None, None, batch_size, preprocess, steps)
        parts = []
        with self._inference_layers() as layers:
            for step, (xb, _, _) in enumerate(source.batches(None)):
                if hooks is not None:
                    hooks.on_predict_batch_begin(step)
                parts.append(to_numpy(self.forward(to_device(xb), training=False,
                                                   layers=layers)).copy())
                if hooks is not None:
                    hooks.on_predict_batch_end(step, {"outputs": parts[-1]})
        if not parts:
            return np.empty((0, self.output_dim), dtype=self.dtype)
        return np.concatenate(parts)

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any | None = None,
                       class_weight: dict[int, float] | None = None) -> float | list[float]:
        """One update on one batch. Returns the batch's loss before the update
        (``[loss, *metrics]`` when metrics were compiled)."""
        self._begin("train_on_batch")
        x, y, weights = self._prepare(x, y, sample_weight, class_weight)
        self._resolve_metrics()
        self._prepare_step()
        with self._lock, blas.one_thread_pool(), InterruptGuard() as guard, \
                np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._guard = guard
            try:
                loss, y_pred = self.train_step(*_on_device((x, y, weights)),
                                               check_weights=True)
            finally:
                self._guard = None
        values = [loss, *(metric(to_device(y), y_pred) for metric in self.metrics)]
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any | None = None
                      ) -> float | list[float]:
        """Loss (and metrics) of one batch in inference mode, without updating."""
        return self.evaluate(x, y, batch_size=max(1, len(x)), verbose=0,
                             sample_weight=sample_weight)

    # -- weights -------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter: per layer kernel ``(inputs, units)``, bias ``(units,)``,
        then any other array, in layer order (Keras's order)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: list[Any]) -> None:
        """Set every parameter from a list in ``get_weights``'s order."""
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(
                f"The model has {expected} weight arrays. Received: a list of {len(weights)}"
            )
        start = 0
        for layer in self.layers:
            layer.set_weights(weights[start:start + len(layer.params)])
            start += len(layer.params)

    # -- Keras's model API -----------------------------------------------------------------
    def pop(self) -> Layer:
        """Remove and return the last layer (the optimizer's state starts afresh at the next
        fit, as after recompiling in Keras)."""
        if not self.layers:
            raise ValueError("There are no layers in the model to pop.")
        layer = self.layers.pop()
        self._layer_names.discard(layer.name)
        self._param_list, self._grad_list = [], []
        if self.optimizer is not None and self.optimizer.built:
            self.optimizer.set_state({"iterations": self.optimizer.iterations, "slots": {}})
        return layer

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name``, or at position ``index``."""
        if (name is None) == (index is None):
            raise ValueError("Give either `name` or `index` to get_layer(). Received: "
                             f"name={name!r}, index={index!r}")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"`index` {index} is out of range: the model has "
                                 f"{len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        import difflib

        close = difflib.get_close_matches(name, [layer.name for layer in self.layers], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"No layer named {name!r}.{hint} Layers: "
                         f"{', '.join(layer.name for layer in self.layers)}")

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """``(None, features)``, or ``(None, 28, 28)`` for a model that starts by flattening."""
        first = self.layers[0] if self.layers else None
        shape = getattr(first, "feature_shape", None)
        return (None, *shape) if shape else (None, self.input_dim)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        return (None, self.output_dim)

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", *metric names]``, the keys of ``evaluate(return_dict=True)``."""
        return ["loss", *(metric.name for metric in self.metrics)]

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """``predict`` of one batch: ``x`` in one pass."""
        return self.predict(x, batch_size=max(1, len(x)), verbose=0)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as JSON (no weights); ``models.model_from_json`` rebuilds it."""
        import json

        return json.dumps({"class_name": "Sequential", "config": self.get_config()}, **kwargs)

    def save_weights(self, filepath: str) -> None:
        """Save the weights alone (a safetensors file; ``load_weights`` reads it)."""
        from .saving import save_weights

        save_weights(self, filepath)

    def load_weights(self, filepath: str) -> None:
        """Set the weights from ``save_weights``'s (or ``save``'s) file, checking each shape."""
        from .saving import load_weights

        load_weights(self, filepath)

    def count_params(self) -> int:
        """Total number of trainable numbers."""
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Print a table of the layers, their output shapes and parameter counts."""
        if not self.built:
            raise ValueError(
                f"The model {self.name!r} has not yet been built, so its shapes and parameter "
                "counts are unknown. Build it first: give the first layer input_dim= (or "
                "start with Input(shape=...)), call build(input_dim), or call the model on a "
                "batch of data.")
        rows = [(f"{layer.name} ({type(layer).__name__})",
                 f"(None, {layer.output_dim if layer.built else '?'})",
                 str(layer.count_params()) if layer.built else "?") for layer in self.layers]
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(r[i]) for r in [header, *rows]) + 2 for i in range(3)]
        line = "-" * sum(widths)
        out = [f'Model: "{self.name}"', line,
               "".join(h.ljust(w) for h, w in zip(header, widths)), "=" * sum(widths)]
        out += ["".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
        frozen = sum(layer.count_params() for layer in self.layers if not layer.trainable)
        out += ["=" * sum(widths), f"Total params: {self.count_params():,}",
                f"Trainable params: {self.count_params() - frozen:,}",
                f"Non-trainable params: {frozen:,}", line]
        print_fn("\n".join(out))

    # -- config --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The architecture: name, input size and each layer's serialized config."""
        return {"name": self.name, "input_dim": self.input_dim,
                "layers": [LAYERS.serialize(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """A new, untrained model with the architecture of ``config`` (built if the input
        size is known)."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("A Sequential config must be a dict with a list 'layers'. "
                             f"Received: {type(config).__name__}")
        model = cls([LAYERS.from_config(layer) for layer in config["layers"]],
                    name=config.get("name"))
        if config.get("input_dim") is not None and not model.built:
            model.build(config["input_dim"])
        return model

    def get_compile_config(self) -> dict[str, Any]:
        """The loss, optimizer and metrics given to ``compile``, as JSON-ready dicts."""
        self._check_compiled("get_compile_config")
        return {
            "loss": losses.serialize(self.loss),
            "optimizer": optimizers.serialize(self.optimizer),
            "metrics": [m if isinstance(m, str) else metrics_module.METRICS.serialize(m)
                        for m in self._metric_ids],
            "loss_weights": self.loss_weight,
            "jit_compile": self.jit_compile,
        }

    def save(self, filepath: str) -> None:
        """Save weights, architecture, compile settings and optimizer state to one
        safetensors file, atomically (see ``layerwise.saving``). A path ending in ``.keras``
        writes Keras 3's format instead (architecture and weights; ``layerwise.keras_format``)."""
        if str(filepath).endswith(".keras"):
            from . import distributed
            from .keras_format import save_keras

            if distributed.is_chief():
                save_keras(self, str(filepath))
            return
        from .saving import save_model

        save_model(self, filepath)

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r} layers={[layer.name for layer in self.layers]}>"


class Model(Sequential):
    """Keras's functional form, for chains: ``Model(inputs, outputs)`` is the ``Sequential``
    of the layers between them.

    Example::

        inputs = layerwise.Input(shape=(784,))
        x = layers.Dense(64, activation="relu")(inputs)
        outputs = layers.Dense(10, activation="softmax")(x)
        model = layerwise.Model(inputs, outputs)

    A graph that is not a chain (several inputs or outputs, a branch, a merge) and a
    subclass that defines ``call`` are refused with a message saying what is supported.
    """

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None,
                 **kwargs: Any) -> None:
        if inputs is None or outputs is None:
            raise TypeError(
                "layerwise.Model takes Model(inputs, outputs): a chain from Input(shape=...) "
                "through layers to the output. Subclassed models with their own call() are "
                "not supported; write the network as a Sequential of layers instead.")
        inputs, outputs = _single(inputs, "inputs"), _single(outputs, "outputs")
        for argument, value in (("inputs", inputs), ("outputs", outputs)):
            if not getattr(value, "_symbolic", False):
                raise TypeError(f"`{argument}` must be the tensor of Input(...) or of a layer "
                                f"called on it. Received: {argument}={value!r}")
        if outputs.source is not inputs:
            raise ValueError("`outputs` was not computed from `inputs`: call the layers on "
                             "the tensor that Input(...) returned.")
        super().__init__(list(outputs.layers), name=name or "functional", **kwargs)


def _single(value: Any, argument: str) -> Any:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(
                f"layerwise.Model takes one tensor for `{argument}`; received {len(value)}. "
                "Several inputs or outputs make a graph, not a chain: layerwise builds "
                "chains (the networks Sequential holds).")
        return value[0]
    if isinstance(value, dict):
        raise ValueError(f"layerwise.Model takes one tensor for `{argument}`, not a dict.")
    return value


def load_model(filepath: str, compile: bool = True, restore_random_state: bool = False,
               custom_objects: dict[str, Any] | None = None) -> Sequential:
    """Load a model saved with ``model.save``; see ``layerwise.saving.load_model``."""
    from .saving import load_model as _load

    return _load(filepath, compile=compile, restore_random_state=restore_random_state,
                 custom_objects=custom_objects)


#: on a device backend, fit reads the running loss (and checks the weights) every this many
#: steps and at each epoch's end, instead of after every step
DEVICE_CHECK_STEPS = 200


def _loss_weight(value: Any) -> float:
    """``compile``'s ``loss_weights`` as one positive float (1.0 for None)."""
    given = value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError("`loss_weights` must be one number for a model with one output. "
                             f"Received: loss_weights={given!r}")
        value = value[0]
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
            not math.isfinite(value) or value <= 0:
        raise ValueError("`loss_weights` must be a positive number. Received: "
                         f"loss_weights={given!r}")
    return float(value)


class _Totals:
    """Running sums of the loss and metrics: floats in a NumPy array, or on a device backend
    a device array read only at the loop's documented points."""

    def __init__(self, size: int, device: bool) -> None:
        self.device = device
        self.values = xp.zeros(size, dtype="float64") if device else np.zeros(size)
        self._host: np.ndarray | None = None

    def add(self, index: int, value: Any) -> None:
        self.values[index] += value
        self._host = None

    def cache(self, host: np.ndarray) -> None:
        self._host = host

    def read(self) -> np.ndarray:
        if not self.device:
            return self.values
        if self._host is None:
            self._host = to_numpy(self.values)
        return self._host


def _verbosity(verbose: Any) -> int:
    """Keras's ``verbose``: 0, 1, 2 or ``"auto"`` (1)."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
    return int(verbose)


def model_from_json(json_string: str, custom_objects: dict[str, Any] | None = None
                    ) -> Sequential:
    """The model of ``to_json``'s string, untrained (new weights)."""
    import json

    from .registry import custom_object_scope

    try:
        config = json.loads(json_string)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"`json_string` is not valid JSON: {exc}") from None
    if isinstance(config, dict) and "config" in config:
        config = config["config"]
    with custom_object_scope(custom_objects):
        return Sequential.from_config(config)


def clone_model(model: Sequential) -> Sequential:
    """A new model with ``model``'s architecture and freshly initialised weights."""
    return Sequential.from_config(model.get_config())


_NO_GENERATORS = (
    "Under layerwise.distributed, data must be arrays, memmaps or a layerwise.data.Sequence, "
    "whose batches every rank can split the same way; a generator cannot be split. Wrap it "
    "in a Sequence.")


def _on_device(batch: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    """A batch's arrays on the backend's device (as they are on the NumPy backend)."""
    if xp.__name__ == "numpy":
        return batch
    return tuple(None if a is None else to_device(a) for a in batch)  # type: ignore[return-value]


def _part(array: Any, start: int | None, stop: int | None) -> Any:
    return None if array is None else array[start:stop]


def _features_only(stream: Any) -> Any:
    """A stream of ``x`` batches as ``(x,)`` tuples, whatever it yields."""
    if isinstance(stream, data.Sequence):
        class _Features(data.Sequence):
            def __len__(self) -> int:
                return len(stream)

            def __getitem__(self, i: int) -> tuple[Any, ...]:
                item = stream[i]
                return (item[0],) if isinstance(item, (tuple, list)) else (item,)

        return _Features()
    return ((item[0],) if isinstance(item, (tuple, list)) else (item,) for item in stream)
