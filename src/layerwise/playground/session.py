"""One playground run: its settings (checked field by field), its data, its layerwise model,
its training in short stretches, and the picture of its state that the page draws.

Nothing here knows about the web: ``layerwise.playground.server`` feeds a ``Run`` the page's
messages and sends back what ``Run.state`` returns.
"""

from __future__ import annotations

import base64
import difflib
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import activations, initializers
from ..layers import Dense, Dropout, Maxout, PReLU, RReLU
from ..models import Sequential
from ..optimizers import SGD, schedules
from ..optimizers.registry import OPTIMIZERS
from . import data

#: the limits the page states: layers, neurons per layer, points
MAX_LAYERS = 8
MAX_NEURONS = 16
MIN_POINTS, MAX_POINTS = 20, 2000
#: the output heat map's grid (GRID x GRID values), and every neuron's (every third point)
GRID = 50
NEURON_STEP = 3

#: activations of hidden layers: every registered one but those of an output (softmax,
#: hardmax) and aliases, and the three that are layers of their own
LAYER_ACTIVATIONS = ("prelu", "rrelu", "maxout")
ACTIVATIONS = tuple(sorted(
    {name for name in activations.names()
     if name not in ("softmax", "hardmax", "exp", "identity", "swish")}
    | set(LAYER_ACTIVATIONS)))
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
                   "adadelta", "adamax", "nadam", "lion")
DECAYS = ("none", "exponential", "inverse_time", "cosine")
INITIALIZERS = tuple(n for n in initializers.names()
                     if n not in ("constant", "ones", "zeros", "kaiming_normal",
                                  "kaiming_uniform", "xavier_normal", "xavier_uniform",
                                  "normal", "uniform"))
REGULARIZATION = ("none", "l1", "l2")

DEFAULTS: dict[str, Any] = {
    "dataset": "circle", "noise": 0.0, "train_fraction": 0.5, "points": 500, "seed": 0,
    "features": ["x1", "x2"], "hidden": [4, 2], "activation": "tanh",
    "optimizer": "sgd", "learning_rate": 0.03, "decay": "none", "decay_steps": 1000,
    "decay_rate": 0.5, "batch_size": 10, "initializer": "glorot_uniform",
    "regularization": "none", "regularization_rate": 0.0, "dropout": 0.0,
}


#: the settings that make the data (shared by both runs of a side-by-side comparison)
DATA_KEYS = ("dataset", "noise", "train_fraction", "points", "seed")


class SettingsError(ValueError):
    """A setting the page sent is unknown, of the wrong type or out of range."""


def _number(name: str, value: Any, low: float, high: float, *, integer: bool = False,
            low_open: bool = False) -> Any:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (integer and not float(value).is_integer()):
        raise SettingsError(f"`{name}` must be {kind}. Received: {name}={value!r}")
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        bound = f"{'above' if low_open else 'from'} {low:g} {'up ' if low_open else ''}to " \
                f"{high:g}"
        raise SettingsError(f"`{name}` must be {kind} {bound}. Received: {name}={value!r}")
    return int(value) if integer else float(value)


def _did_you_mean(value: Any, allowed: Any) -> str:
    close = difflib.get_close_matches(value, list(allowed), n=1) if \
        isinstance(value, str) else []
    return f" Did you mean {close[0]!r}?" if close else ""


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"`{name}` must be one of {', '.join(allowed)}."
                            f"{_did_you_mean(value, allowed)} "
                            f"Received: {name}={str(value)[:40]!r}")
    return value


def check_settings(changes: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """``current`` (the defaults when None) updated by the fields in ``changes``, every
    field checked; raises ``SettingsError`` naming the field, the value and what is
    allowed."""
    if not isinstance(changes, dict):
        raise SettingsError(f"`settings` must be an object. Received: {type(changes).__name__}")
    settings = dict(DEFAULTS if current is None else current)
    for name, value in changes.items():
        if name not in DEFAULTS:
            raise SettingsError(f"Unknown setting {str(name)[:40]!r}."
                                f"{_did_you_mean(name, DEFAULTS)} Known settings: "
                                f"{', '.join(DEFAULTS)}")
        settings[name] = _CHECKS[name](name, value)
    return settings


def _features(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > len(data.FEATURES):
        raise SettingsError("`features` must be a non-empty list of feature names "
                            f"({', '.join(data.FEATURES)}). Received: "
                            f"features={str(value)[:80]}")
    chosen = [_choice(name, v, tuple(data.FEATURES)) for v in value]
    return [f for f in data.FEATURES if f in chosen]  # the page's order, no repeats


def _hidden(name: str, value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_LAYERS:
        raise SettingsError(f"`hidden` must be a list of at most {MAX_LAYERS} layer "
                            f"sizes. Received: hidden={str(value)[:80]}")
    return [_number(name, v, 1, MAX_NEURONS, integer=True) for v in value]


#: each setting's check: (name, value) -> the value to keep, or SettingsError
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "dataset": lambda n, v: _choice(n, v, data.DATASETS),
    "noise": lambda n, v: _number(n, v, 0.0, 0.5),
    "train_fraction": lambda n, v: _number(n, v, 0.1, 0.9),
    "points": lambda n, v: _number(n, v, MIN_POINTS, MAX_POINTS, integer=True),
    "seed": lambda n, v: _number(n, v, 0, 2**31 - 1, integer=True),
    "features": _features,
    "hidden": _hidden,
    "activation": lambda n, v: _choice(n, v, ACTIVATIONS),
    "optimizer": lambda n, v: _choice(n, v, OPTIMIZER_NAMES),
    "learning_rate": lambda n, v: _number(n, v, 0.0, 10.0, low_open=True),
    "decay": lambda n, v: _choice(n, v, DECAYS),
    "decay_steps": lambda n, v: _number(n, v, 1, 1_000_000, integer=True),
    "decay_rate": lambda n, v: _number(n, v, 0.0, 1.0, low_open=True),
    "batch_size": lambda n, v: "all" if v == "all" else
    _number(n, v, 1, MAX_POINTS, integer=True),
    "initializer": lambda n, v: _choice(n, v, INITIALIZERS),
    "regularization": lambda n, v: _choice(n, v, REGULARIZATION),
    "regularization_rate": lambda n, v: _number(n, v, 0.0, 1.0),
    "dropout": lambda n, v: _number(n, v, 0.0, 0.9),
}
assert set(_CHECKS) == set(DEFAULTS)


def make_optimizer(settings: dict[str, Any]) -> Any:
    """The optimizer the settings name, with its learning-rate schedule."""
    lr: Any = settings["learning_rate"]
    steps, rate = settings["decay_steps"], settings["decay_rate"]
    if settings["decay"] == "exponential":
        lr = schedules.ExponentialDecay(lr, steps, rate)
    elif settings["decay"] == "inverse_time":
        lr = schedules.InverseTimeDecay(lr, steps, rate)
    elif settings["decay"] == "cosine":
        lr = schedules.CosineDecay(lr, steps)
    name = settings["optimizer"]
    if name == "nesterov":
        return SGD(lr, momentum=0.9, nesterov=True)
    return OPTIMIZERS.lookup(name)(learning_rate=lr)


def build_model(settings: dict[str, Any], regression: bool) -> Sequential:
    """The network the settings describe: the chosen features in, one hidden layer per entry
    of ``hidden``, one output unit (sigmoid for classes, linear for regression)."""
    reg = None
    if settings["regularization"] != "none" and settings["regularization_rate"] > 0:
        reg = {"class_name": settings["regularization"].upper(),
               "config": {settings["regularization"]: settings["regularization_rate"]}}
    init, act = settings["initializer"], settings["activation"]
    layers: list[Any] = []
    input_dim: int | None = len(settings["features"])
    for index, units in enumerate(settings["hidden"]):
        first = {"input_dim": input_dim} if index == 0 else {}
        if act == "maxout":
            layers.append(Maxout(units, kernel_initializer=init, kernel_regularizer=reg,
                                 **first))
        elif act in ("prelu", "rrelu"):
            layers.append(Dense(units, kernel_initializer=init, kernel_regularizer=reg,
                                **first))
            layers.append(PReLU() if act == "prelu" else RReLU(seed=settings["seed"] + index))
        else:
            layers.append(Dense(units, activation=act, kernel_initializer=init,
                                kernel_regularizer=reg, **first))
        if settings["dropout"] > 0:
            layers.append(Dropout(settings["dropout"], seed=settings["seed"] + 100 + index))
    first = {} if layers else {"input_dim": input_dim}
    layers.append(Dense(1, activation=None if regression else "sigmoid",
                        kernel_initializer=init, kernel_regularizer=reg, **first))
    model = Sequential(layers)
    model.compile(optimizer=make_optimizer(settings),
                  loss="mse" if regression else "binary_crossentropy", jit_compile=False)
    return model


class Run:
    """One configuration training on one data set: the page's left run, or its right one in
    a side-by-side comparison."""

    def __init__(self, settings: dict[str, Any] | None = None,
                 upload: tuple[np.ndarray, np.ndarray, bool] | None = None) -> None:
        self.settings = check_settings({}, settings)
        self.upload = upload
        self.reset(new_data=True)

    # -- setting up ---------------------------------------------------------------------------

    @property
    def regression(self) -> bool:
        if self.settings["dataset"] == "upload":
            return bool(self.upload and self.upload[2])
        return data.is_regression(self.settings["dataset"])

    def reset(self, new_data: bool = False) -> None:
        """A new network (fresh weights, epoch 0); new points too when ``new_data``."""
        s = self.settings
        if new_data:
            if s["dataset"] == "upload":
                if self.upload is None:
                    raise SettingsError("Upload a CSV file (x1, x2, label) before choosing "
                                        "the dataset 'upload'.")
                x, y = self.upload[0], self.upload[1]
            else:
                x, y = data.generate(s["dataset"], s["points"], s["noise"], s["seed"])
            self.points = data.split(x, y, s["train_fraction"], s["seed"])
        self.x_train = data.features(self.points[0], s["features"])
        self.x_test = data.features(self.points[2], s["features"])
        from .. import utils

        utils.set_random_seed(s["seed"])
        self.model = build_model(s, self.regression)
        self.epoch = 0
        self.history: list[tuple[int, float, float]] = []  # (epoch, train loss, test loss)
        self.sent = 0  # history entries already sent to the page
        self.epoch_time = 0.0  # seconds per epoch, as last measured
        self.diverged = ""
        self._grid_inputs: np.ndarray | None = None
        self._record()

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the page's changed settings; the network restarts (and the data is made
        again when a data setting changed)."""
        before = self.settings
        self.settings = check_settings(changes, before)
        self.reset(new_data=any(self.settings[k] != before[k] for k in DATA_KEYS))

    @property
    def batch_size(self) -> int:
        size = self.settings["batch_size"]
        return len(self.x_train) if size == "all" else min(int(size), len(self.x_train))

    # -- training ------------------------------------------------------------------------------

    def train(self, seconds: float = 0.04, epochs: int | None = None) -> int:
        """Train whole epochs for about ``seconds`` (at least one), or exactly ``epochs``.
        Returns the epochs run. A run whose loss is no longer finite stops, saying so."""
        if self.diverged:
            return 0
        if epochs is None:
            epochs = 1 if self.epoch_time <= 0 else \
                max(1, min(50, int(seconds / max(self.epoch_time, 1e-6))))
        y = self.points[1].reshape(-1, 1)
        start = time.perf_counter()
        try:
            with np.errstate(all="ignore"):  # a diverging run is reported on the page
                self.model.fit(self.x_train, y, batch_size=self.batch_size, epochs=epochs,
                               verbose=0, seed=self.settings["seed"] + self.epoch)
        except (FloatingPointError, ArithmeticError, RuntimeError, ValueError) as error:
            self.diverged = f"Training stopped: {str(error).splitlines()[0][:600]}"
            return 0
        self.epoch_time = (time.perf_counter() - start) / epochs
        self.epoch += epochs
        self._record()
        return epochs

    def _losses(self) -> tuple[float, float]:
        y_train, y_test = self.points[1].reshape(-1, 1), self.points[3].reshape(-1, 1)
        train = self.model.evaluate(self.x_train, y_train, batch_size=4096, verbose=0)
        test = self.model.evaluate(self.x_test, y_test, batch_size=4096, verbose=0)
        return float(_first(train)), float(_first(test))

    def _record(self) -> None:
        train, test = self._losses()
        if not (math.isfinite(train) and math.isfinite(test)) and not self.diverged:
            self.diverged = "Training stopped: the loss is no longer finite (try a smaller " \
                            "learning rate)."
        self.history.append((self.epoch, _finite_or_none(train), _finite_or_none(test)))

    # -- what the page draws --------------------------------------------------------------------

    def grid_inputs(self) -> np.ndarray:
        """The features of the GRID x GRID points of the square, row by row from the top."""
        if self._grid_inputs is None:
            axis = np.linspace(-data.EXTENT, data.EXTENT, GRID, dtype=np.float32)
            x1, x2 = np.meshgrid(axis, axis[::-1])
            points = np.stack([x1.ravel(), x2.ravel()], axis=1)
            self._grid_inputs = data.features(points, self.settings["features"])
        return self._grid_inputs

    def layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """The output of every hidden layer (after its activation) and of the network, for
        inputs ``x``, in inference mode."""
        outputs, a = [], x
        layers = self.model.layers
        for index, layer in enumerate(layers):
            a = np.array(layer.forward(a, training=False), copy=True)
            following = layers[index + 1] if index + 1 < len(layers) else None
            if isinstance(layer, (Dense, PReLU, RReLU)) and not isinstance(
                    following, (PReLU, RReLU)):
                outputs.append(a)
        return outputs

    def state(self, full: bool = False) -> dict[str, Any]:
        """What the page draws now: heat maps (bytes 0-255 in base64, each with its range),
        weights, losses since the last state (all when ``full``), gradient norms and dead
        units per layer, accuracy."""
        with np.errstate(all="ignore"):
            return self._state(full)

    def _state(self, full: bool) -> dict[str, Any]:
        outputs = self.layer_outputs(self.grid_inputs())
        *hidden, out = outputs
        neurons = []
        for a in hidden:
            block = a.reshape(GRID, GRID, -1)[::NEURON_STEP, ::NEURON_STEP]
            neurons.append([_heat(block[:, :, j]) for j in range(block.shape[2])])
        low, high = (-1.0, 1.0) if self.regression else (0.0, 1.0)
        history = self.history if full else self.history[self.sent:]
        self.sent = len(self.history)
        return {
            "epoch": self.epoch,
            "history": history,
            "output": _heat(out.reshape(GRID, GRID), low, high),
            "neurons": neurons,
            "weights": self.weights(),
            "gradient_norms": self.gradient_norms(),
            "dead": self.dead_units(),
            "accuracy": self.accuracy(),
            "learning_rate": float(self.model.optimizer.current_learning_rate()),
            "diverged": self.diverged,
            "settings": self.settings,
            "regression": self.regression,
            "features": self.settings["features"],
        }

    def weights(self) -> list[list[list[float]]]:
        """Each layer's kernel, (inputs, units), rounded for the page (Maxout: the piece of
        largest magnitude per connection)."""
        result = []
        for layer in self.model.layers:
            if isinstance(layer, Dense):
                kernel = np.asarray(layer.params["kernel"], dtype=np.float64)
                if isinstance(layer, Maxout):
                    pieces = kernel.reshape(kernel.shape[0], layer.units, layer.pieces)
                    pick = np.abs(pieces).argmax(axis=2)[..., None]
                    kernel = np.take_along_axis(pieces, pick, axis=2)[..., 0]
                result.append(np.round(np.nan_to_num(kernel), 4).tolist())
        return result

    def gradient_norms(self) -> list[float]:
        """‖∂L/∂W‖ of every layer's kernel on the whole training set (seed 002's vanishing
        gradients: the first layers' norms shrink as layers are added)."""
        if self.diverged:
            return []
        y = self.points[1].reshape(-1, 1)
        self.model.compute_gradients(self.x_train, y, penalty=False)
        return [_finite_or_none(float(np.linalg.norm(layer.grads["kernel"])))
                for layer in self.model.layers if isinstance(layer, Dense)]

    def dead_units(self) -> list[int]:
        """Per hidden layer, the units whose output is 0 for every training point (dead
        ReLUs: no gradient reaches their weights again)."""
        *hidden, _ = self.layer_outputs(self.x_train)
        return [int(np.all(a == 0, axis=0).sum()) for a in hidden]

    def accuracy(self) -> dict[str, float | None]:
        """Share of points on the right side of 0.5 (classes), or None (regression)."""
        if self.regression:
            return {"train": None, "test": None}
        out = {}
        for name, x, y in (("train", self.x_train, self.points[1]),
                           ("test", self.x_test, self.points[3])):
            p = self.model.predict(x, batch_size=4096, verbose=0)[:, 0]
            out[name] = float(np.mean((p > 0.5) == (y > 0.5)))
        return out

    def points_message(self) -> dict[str, Any]:
        """The training and test points, sent when they change."""
        x_train, y_train, x_test, y_test = self.points
        return {"train": np.round(np.c_[x_train, y_train], 3).tolist(),
                "test": np.round(np.c_[x_test, y_test], 3).tolist(),
                "regression": self.regression}

    def safetensors(self) -> bytes:
        """The trained model as a ``.safetensors`` file's bytes (``load_model`` reads it)."""
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "playground.safetensors")
            self.model.save(path)
            with open(path, "rb") as handle:
                return handle.read()

    def code(self) -> str:
        """Python that reproduces this run with layerwise."""
        from .code import run_code

        return run_code(self.settings, self.epoch, self.regression)


def _first(value: Any) -> Any:  # evaluate's loss, alone or before the metrics
    return value[0] if isinstance(value, list) else value


def _finite_or_none(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def _heat(values: np.ndarray, low: float | None = None, high: float | None = None
          ) -> dict[str, Any]:
    """A grid as bytes 0-255 (base64) between ``low`` and ``high`` (its own range when not
    given), with its shape and range: a 50x50 map is 3.4 kB of JSON."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo = float(v.min()) if low is None else low
    hi = float(v.max()) if high is None else high
    scaled = np.zeros_like(v) if hi <= lo else np.clip((v - lo) / (hi - lo), 0, 1)
    raw = np.round(scaled * 255).astype(np.uint8).tobytes()
    return {"rows": v.shape[0], "cols": v.shape[1], "low": lo, "high": hi,
            "bytes": base64.b64encode(raw).decode("ascii")}
