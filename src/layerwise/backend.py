"""The array namespace every layer, activation, loss and optimizer computes with.

All array calls in layerwise go through ``xp`` (``from layerwise.backend import xp``), so that a
CuPy backend can replace NumPy without touching layer code: ``set_backend("cupy")`` swaps the
module behind ``xp`` in place, and every module that imported ``xp`` sees the change.

``xp`` copies the backend module's attributes into its own ``__dict__`` rather than forwarding
each lookup, so ``xp.dot`` costs one dictionary lookup, the same as ``numpy.dot``.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

import numpy

__all__ = ["backend_name", "floatx", "set_backend", "set_floatx", "to_numpy", "xp"]


class _ArrayNamespace(types.SimpleNamespace):
    """A stand-in for the active array module (NumPy, or later CuPy)."""

    def _load(self, module: types.ModuleType) -> None:
        self.__dict__.clear()
        self.__dict__.update(
            {k: v for k, v in vars(module).items() if not k.startswith("__")}
        )
        self.__dict__["__name__"] = module.__name__

    def __repr__(self) -> str:
        return f"<layerwise array namespace: {self.__dict__.get('__name__')}>"


xp: Any = _ArrayNamespace()
xp._load(numpy)

_SUPPORTED_BACKENDS = ("numpy", "cupy")
_FLOATX = "float32"
_SUPPORTED_FLOATX = ("float16", "float32", "float64")


def set_backend(name: str) -> None:
    """Select the array library behind ``xp``: ``"numpy"`` (default) or ``"cupy"``."""
    if name not in _SUPPORTED_BACKENDS:
        raise ValueError(
            f"`name` must be one of {list(_SUPPORTED_BACKENDS)}. Received: name={name!r}"
        )
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError(
            f"The {name!r} backend needs the package {name!r}: pip install 'layerwise[gpu]'"
        ) from exc
    xp._load(module)
    from . import blas  # imported here: blas imports this module

    blas._on_backend_change()


def backend_name() -> str:
    """Name of the array module behind ``xp``."""
    return xp.__name__


def floatx() -> str:
    """The default float dtype of new layers and of input data (``"float32"``)."""
    return _FLOATX


def set_floatx(dtype: str) -> None:
    """Set the default float dtype, e.g. ``set_floatx("float64")`` for gradient checks."""
    global _FLOATX
    name = numpy.dtype(dtype).name if _is_dtype_like(dtype) else dtype
    if name not in _SUPPORTED_FLOATX:
        raise ValueError(
            f"`dtype` must be one of {list(_SUPPORTED_FLOATX)}. Received: dtype={dtype!r}"
        )
    _FLOATX = name


def _is_dtype_like(value: Any) -> bool:
    try:
        numpy.dtype(value)
    except TypeError:
        return False
    return True


def to_numpy(array: Any) -> numpy.ndarray:
    """Return ``array`` as a NumPy array (copies from the GPU when the backend is CuPy)."""
    if hasattr(array, "get"):
        return array.get()
    return numpy.asarray(array)
