"""Small helpers: the global random generator, reproducibility, one-hot labels, optional
packages."""

from __future__ import annotations

import importlib
import math
import random
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["check_finite_number", "global_rng", "make_rng", "optional_import",
           "set_random_seed", "to_categorical"]


def check_finite_number(value: Any, argument: str, minimum: float | None = None) -> float:
    """``value`` as a float, or a ValueError in Keras's form: it must be a finite real number
    (and ``>= minimum`` when given). NaN and infinities are refused."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer,
                                                            np.floating))
    if ok:
        ok = math.isfinite(value) and (minimum is None or value >= minimum)
    if not ok:
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"`{argument}` must be a finite number{bound}. Received: "
                         f"{argument}={value!r}")
    return float(value)


def optional_import(module: str, purpose: str, extra: str) -> ModuleType:
    """Import an optional dependency, or fail with the extra that installs it, e.g.
    "Plotting needs the package 'matplotlib': pip install 'layerwise[plot]'"."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(f"{purpose} needs the package {package!r}: "
                          f"pip install 'layerwise[{extra}]'") from exc

_GLOBAL_RNG = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed every random draw layerwise makes (initialisers, shuffling, dropout, RReLU).

    Also seeds Python's ``random`` and NumPy's legacy global generator, as Keras does, so a
    script that calls this once gives bit-identical runs.
    """
    global _GLOBAL_RNG
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    _GLOBAL_RNG = np.random.default_rng(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def _set_global_rng(rng: np.random.Generator) -> None:
    """Replace the generator used wherever no ``seed=`` was given (layerwise.distributed)."""
    global _GLOBAL_RNG
    _GLOBAL_RNG = rng


#: id(host generator) -> (host generator, device generator seeded from it); the host one is
#: kept so its id is not reused; bounded, oldest first out
_DEVICE_RNGS: dict[int, tuple[Any, Any]] = {}


def noise_rng(rng: np.random.Generator | None = None) -> Any:
    """The generator of Dropout and RReLU noise: ``rng`` (or the global generator) on the
    NumPy backend; on a device backend the device's own generator, seeded once from it, so
    that masks are drawn where they are used and ``set_random_seed`` still fixes them."""
    from .backend import xp

    rng = _GLOBAL_RNG if rng is None else rng
    if xp.__name__ == "numpy":
        return rng
    entry = _DEVICE_RNGS.get(id(rng))
    if entry is None:
        if len(_DEVICE_RNGS) >= 64:
            del _DEVICE_RNGS[next(iter(_DEVICE_RNGS))]
        entry = _DEVICE_RNGS[id(rng)] = (rng, xp.random.default_rng(int(rng.integers(2**63))))
    return entry[1]


def global_rng() -> np.random.Generator:
    """The generator used wherever no ``seed=`` was given."""
    return _GLOBAL_RNG


def make_rng(seed: int | None) -> np.random.Generator:
    """A new generator for ``seed``, or the global one when ``seed`` is None."""
    if seed is None:
        return _GLOBAL_RNG
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer or None. Received: seed={seed!r}")
    return np.random.default_rng(int(seed))


def to_categorical(y: Any, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot encode integer class labels ``(batch,)`` into ``(batch, num_classes)``."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"`y` must be a 1-D array of class indices. Received: y.shape={y.shape}")
    if y.size and (not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0):
        raise ValueError("`y` must hold non-negative integer class indices.")
    y = y.astype(np.int64)
    n = int(y.max()) + 1 if num_classes is None and y.size else int(num_classes or 0)
    if y.size and y.max() >= n:
        raise ValueError(
            f"`y` holds class {int(y.max())}, which does not fit num_classes={num_classes}."
        )
    out = np.zeros((y.shape[0], n), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out
