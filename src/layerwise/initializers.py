"""Weight initialisers, by name or as objects, with the formulas of SPEC §5.

Why random: if every weight of a layer starts equal, every hidden unit computes the same
function and receives the same gradient, so they stay identical forever (symmetry). Random
initial weights break the tie; the Glorot (Xavier) and He (Kaiming) scales keep the variance
of activations and gradients roughly constant from layer to layer.

Defaults: ``Dense`` uses ``glorot_uniform`` for kernels and ``zeros`` for biases, as Keras.
(PyTorch's ``nn.Linear`` uses kaiming_uniform with a=√5, i.e. U(-1/√fan_in, 1/√fan_in).)
``random_uniform`` and ``random_normal`` default to U[0, 1] and N(0, 1) as in the seeds and
PyTorch's ``nn.init``; the normal Glorot and He variants are plain (untruncated) normals, as
PyTorch's ``xavier_normal_``/``kaiming_normal_``.

``fan_in`` and ``fan_out`` of a kernel shaped ``(inputs, units)`` are ``inputs`` and ``units``.
With ``seed=``, an initialiser returns the same values on every call (Keras 3's rule).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import floatx, xp
from .registry import Configurable, Registry
from .utils import check_finite_number, make_rng

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "Ones",
    "RandomNormal",
    "RandomUniform",
    "Zeros",
    "get",
    "names",
    "serialize",
]  # fmt: skip


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped ``(inputs, units)`` (a vector counts as both)."""
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], int(np.prod(shape[1:]))


class Initializer(Configurable):
    """Base class: ``init(shape, dtype)`` returns a new array of that shape."""

    def __call__(self, shape: tuple[int, ...], dtype: str | None = None) -> Any:
        shape = tuple(int(s) for s in shape)
        values = self.sample(shape)
        return xp.asarray(values, dtype=dtype or floatx())

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        """Draw the values, as a float64 NumPy array."""
        raise NotImplementedError


INITIALIZERS: Registry[Initializer] = Registry("initializer", "initializer", Initializer)
register = INITIALIZERS.register


@register("zeros")
class Zeros(Initializer):
    """All zeros (the default for biases)."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)


@register("ones")
class Ones(Initializer):
    """All ones."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.ones(shape)


@register("constant")
class Constant(Initializer):
    """Every entry equal to ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = check_finite_number(value, "value")

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class _Random(Initializer):
    def __init__(self, seed: int | None = None) -> None:
        make_rng(seed)  # validates
        self.seed = seed

    def rng(self) -> np.random.Generator:
        return make_rng(self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


@register("random_uniform", "uniform")
class RandomUniform(_Random):
    """U[minval, maxval], default U[0, 1]."""

    def __init__(self, minval: float = 0.0, maxval: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        if not maxval > minval:
            raise ValueError(
                f"`maxval` must be greater than `minval`. Received: minval={minval}, "
                f"maxval={maxval}"
            )
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng().uniform(self.minval, self.maxval, size=shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


@register("random_normal", "normal")
class RandomNormal(_Random):
    """N(mean, stddev²), default N(0, 1)."""

    def __init__(self, mean: float = 0.0, stddev: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        if not stddev > 0:
            raise ValueError(f"`stddev` must be positive. Received: stddev={stddev}")
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng().normal(self.mean, self.stddev, size=shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


@register("glorot_uniform", "xavier_uniform")
class GlorotUniform(_Random):
    """Xavier uniform: U[-√(6/(fan_in+fan_out)), +√(6/(fan_in+fan_out))]."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return self.rng().uniform(-limit, limit, size=shape)


@register("glorot_normal", "xavier_normal")
class GlorotNormal(_Random):
    """Xavier normal: N(0, 2/(fan_in+fan_out))."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        return self.rng().normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)


@register("he_uniform", "kaiming_uniform")
class HeUniform(_Random):
    """Kaiming (He) uniform: U[-√(6/fan_in), +√(6/fan_in)]; suited to ReLU layers."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, _ = compute_fans(shape)
        limit = math.sqrt(6.0 / fan_in)
        return self.rng().uniform(-limit, limit, size=shape)


@register("he_normal", "kaiming_normal")
class HeNormal(_Random):
    """Kaiming (He) normal: N(0, 2/fan_in); suited to ReLU layers."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, _ = compute_fans(shape)
        return self.rng().normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


def get(identifier: Any, argument: str = "initializer") -> Initializer:
    """Resolve a name, config dict, class or instance to an :class:`Initializer`."""
    return INITIALIZERS.get(identifier, argument)


def serialize(initializer: Initializer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` of an initializer, which ``get`` turns back."""
    return INITIALIZERS.serialize(initializer)


def names() -> list[str]:
    """Every registered initializer name and alias, sorted (what ``get`` accepts)."""
    return INITIALIZERS.names()
