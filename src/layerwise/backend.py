"""The array namespace every layer, activation, loss and optimizer computes with.

All array calls in layerwise go through ``xp`` (``from layerwise.backend import xp``), so that a
CuPy backend can replace NumPy without touching layer code: ``set_backend("cupy")`` swaps the
module behind ``xp`` in place, and every module that imported ``xp`` sees the change.

``xp`` copies the backend module's attributes into its own ``__dict__`` rather than forwarding
each lookup, so ``xp.dot`` costs one dictionary lookup, the same as ``numpy.dot``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import types
from collections.abc import Iterator
from typing import Any

import numpy

__all__ = ["backend_name", "floatx", "lazy_scalar", "scalar", "set_backend", "set_floatx",
           "to_device", "to_numpy", "using", "xp"]


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


def set_backend(name: str | types.ModuleType) -> None:
    """Select the array library behind ``xp``: ``"numpy"`` (default) or ``"cupy"`` (an NVIDIA
    GPU). A module object is used as it is (the test suite's strict stand-in for CuPy).

    The environment variable ``LAYERWISE_BACKEND`` sets it at import."""
    if isinstance(name, types.ModuleType):
        module = name
        _modules[module.__name__] = module
    elif name not in _SUPPORTED_BACKENDS:
        raise ValueError(
            f"`name` must be one of {list(_SUPPORTED_BACKENDS)}. Received: name={name!r}"
        )
    elif name == "cupy":
        module = _load_cupy()
    else:
        module = numpy
    xp._load(module)
    from . import blas  # imported here: blas imports this module

    blas._on_backend_change()


@contextlib.contextmanager
def using(device: str | None) -> Iterator[None]:
    """Inside this block the backend is that of ``device``: ``"gpu"``/``"cupy"`` or
    ``"cpu"``/``"numpy"`` (None: leave it as it is); the previous one is restored after."""
    if device is None:
        yield
        return
    names = {"gpu": "cupy", "cuda": "cupy", "cupy": "cupy", "cpu": "numpy", "numpy": "numpy"}
    if device not in names:
        raise ValueError(f"`device` must be 'cpu' or 'gpu'. Received: device={device!r}")
    previous = _module()
    set_backend(names[device])
    try:
        yield
    finally:
        set_backend(previous)


def _module() -> Any:
    """The module behind ``xp`` now."""
    name = xp.__name__
    return numpy if name == "numpy" else importlib.import_module(name) \
        if name == "cupy" else _modules[name]


_modules: dict[str, types.ModuleType] = {}


def _load_cupy() -> types.ModuleType:
    """CuPy, after checking that it is installed and sees a GPU."""
    try:
        module = importlib.import_module("cupy")
    except ImportError as exc:
        raise ImportError(
            "The 'cupy' backend needs the package 'cupy': pip install 'layerwise[gpu]' "
            "(CUDA 12) or 'layerwise[gpu-cuda13]' (CUDA 13); `nvidia-smi` shows the CUDA "
            "version the driver supports") from exc
    try:
        count = module.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        raise RuntimeError(f"CuPy is installed but finds no usable GPU ({exc}).") from None
    if count < 1:
        raise RuntimeError("CuPy is installed but finds no GPU.")
    return module


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
    """Return ``array`` as a NumPy array (copies from the GPU when the backend is CuPy): one
    of the documented points where data leaves the device."""
    if hasattr(array, "get") and not isinstance(array, numpy.ndarray):
        return array.get()
    return numpy.asarray(array)


def to_device(array: Any) -> Any:
    """``array`` on the active backend's device (no copy when it is there already): the
    documented point where data enters the device."""
    if xp.__name__ == "numpy":
        return array
    return xp.asarray(array)


def lazy_scalar(value: Any) -> Any:
    """A 0-d result as a float on the NumPy backend; on a device it stays there (no read), to
    be summed there and read at the loop's documented points."""
    if xp.__name__ == "numpy":
        return float(value)
    return value


def scalar(value: Any) -> float:
    """A device scalar read on the host as a float: a documented transfer point (the loss
    for the NaN guard and the progress bar). Python and NumPy numbers pass through."""
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "item"):
        return float(value.item())
    return float(value)


if os.environ.get("LAYERWISE_BACKEND", "numpy") != "numpy":
    set_backend(os.environ["LAYERWISE_BACKEND"])
