"""A strict stand-in for CuPy, for testing the backend seam on a machine without a GPU.

``StrictArray`` wraps a NumPy array the way a CuPy array wraps device memory, and refuses
what CuPy refuses or what would be a hidden device-to-host transfer:

- implicit conversion to NumPy (``numpy.asarray(a)``, ``__array__``), NumPy functions and
  ufuncs called on it, and mixing it with NumPy arrays in arithmetic or assignment;
- implicit reads of its values on the host: ``float(a)``, ``int(a)``, ``bool(a)``,
  ``a.tolist()``, iteration. The explicit ways out are ``a.get()`` and ``a.item()``, which
  ``layerwise.backend`` calls at its documented transfer points (and counts here).

``namespace`` is the module ``layerwise.backend.set_backend`` receives: it offers a subset of
CuPy's functions, all of which exist in CuPy 13 and 14, and each refuses NumPy arrays.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

#: explicit device-to-host reads (``get``/``item``), counted for the tests
TRANSFERS = {"get": 0, "item": 0}


class ImplicitTransferError(TypeError):
    """A device array was used as if it were on the host."""


def _refuse(what: str) -> ImplicitTransferError:
    return ImplicitTransferError(f"implicit device-to-host use of a device array: {what}")


def _unwrap(value: Any, where: str) -> Any:
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError(f"{where}: a NumPy array where a device array is needed (CuPy does "
                        "not convert implicitly; use xp.asarray)")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return StrictArray(value)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, np.generic):  # CuPy returns 0-d arrays, not NumPy scalars
        return StrictArray(np.asarray(value))
    return value


def _binary(name: str) -> Any:
    def op(self: StrictArray, other: Any) -> Any:
        result = getattr(self._a, name)(_unwrap(other, f"StrictArray.{name}"))
        return self if result is self._a else _wrap(result)
    op.__name__ = name
    return op


class StrictArray:
    """A device array that never turns into a NumPy array by itself."""

    __array_priority__ = 1000
    __array_ufunc__ = None  # NumPy's ufuncs refuse it (and defer binary ops to it)

    def __init__(self, array: np.ndarray) -> None:
        self._a = array

    # -- what CuPy refuses or what would be a hidden transfer ---------------------------
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise _refuse("numpy.asarray / __array__")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise _refuse(f"numpy.{func.__name__}")

    def __float__(self) -> float:
        raise _refuse("float()")

    def __int__(self) -> int:
        raise _refuse("int()")

    def __index__(self) -> int:
        raise _refuse("use as an index")

    def __bool__(self) -> bool:
        raise _refuse("bool() (an `if` on a device value)")

    def __iter__(self) -> Any:
        raise _refuse("iteration")

    def tolist(self) -> Any:
        raise _refuse("tolist()")

    # -- the explicit ways to the host -----------------------------------------------------
    def get(self) -> np.ndarray:
        TRANSFERS["get"] += 1
        return self._a.copy()

    def item(self) -> Any:
        TRANSFERS["item"] += 1
        return self._a.item()

    # -- an ndarray's attributes and methods -------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: StrictArray(self._a.T))

    @property
    def base(self) -> Any:
        base = self._a.base
        return StrictArray(base) if isinstance(base, np.ndarray) else None

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """The pointer interface CuPy arrays have (here: host memory, for the flat-buffer
        checks that compare addresses)."""
        return self._a.__array_interface__

    def __len__(self) -> int:
        return len(self._a)

    def __repr__(self) -> str:
        return f"StrictArray(shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._a[_unwrap(key, "indexing")])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_unwrap(key, "indexing")] = _unwrap(value, "assignment")

    def __neg__(self) -> StrictArray:
        return StrictArray(-self._a)

    def __abs__(self) -> StrictArray:
        return StrictArray(abs(self._a))

    def __invert__(self) -> StrictArray:
        return StrictArray(~self._a)

    for _name in ("add", "sub", "mul", "truediv", "floordiv", "pow", "matmul", "mod", "and",
                  "or", "xor"):
        for _form in ("__{}__", "__r{}__", "__i{}__"):
            locals()[_form.format(_name)] = _binary(_form.format(_name))
    for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
        locals()[f"__{_name}__"] = _binary(f"__{_name}__")
    del _name, _form
    __hash__ = None  # type: ignore[assignment]

    def _method(name: str) -> Any:  # noqa: N805 - a factory used in the class body
        def method(self: StrictArray, *args: Any, **kwargs: Any) -> Any:
            args = _unwrap(args, f"StrictArray.{name}")
            kwargs = {k: _unwrap(v, f"StrictArray.{name}") for k, v in kwargs.items()}
            result = getattr(self._a, name)(*args, **kwargs)
            return None if result is None else _wrap(result)
        method.__name__ = name
        return method

    for _name in ("sum", "mean", "max", "min", "argmax", "argmin", "any", "all", "reshape",
                  "astype", "copy", "fill", "ravel", "transpose", "dot", "clip", "var", "std",
                  "prod", "cumsum", "squeeze", "view", "nonzero", "round"):
        locals()[_name] = _method(_name)
    del _name, _method


def _function(name: str, numpy_function: Any) -> Any:
    def function(*args: Any, **kwargs: Any) -> Any:
        args = _unwrap(args, f"xp.{name}")
        kwargs = {k: _unwrap(v, f"xp.{name}") for k, v in kwargs.items()}
        return _wrap(numpy_function(*args, **kwargs))
    function.__name__ = name
    return function


#: the functions CuPy offers that layerwise may use (each also exists in CuPy)
_FUNCTIONS = """
abs absolute add all any arange argmax argmin argsort argwhere array_equal broadcast_to ceil
clip concatenate copy copyto count_nonzero cumsum divide dot einsum empty empty_like equal exp
expand_dims expm1 eye flatnonzero floor full full_like greater greater_equal hstack isfinite
isinf isnan less less_equal linspace log log1p logical_and logical_not logical_or matmul
maximum mean minimum multiply negative nonzero ones ones_like outer power prod ravel reciprocal
repeat reshape round sign sin sort sqrt square squeeze stack std subtract sum take
take_along_axis tanh tile transpose true_divide unique var vdot vstack where zeros zeros_like
amax amin cos isclose allclose
""".split()


def _out_aware(name: str) -> Any:
    numpy_function = getattr(np, name)

    def function(*args: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if isinstance(out, StrictArray):
            unwrapped = {k: _unwrap(v, f"xp.{name}") for k, v in kwargs.items()}
            result = numpy_function(*_unwrap(args, f"xp.{name}"), **unwrapped)
            return out if result is out._a else _wrap(result)
        return _function(name, numpy_function)(*args, **kwargs)
    function.__name__ = name
    return function


def _asarray(value: Any, dtype: Any = None, order: Any = None) -> StrictArray:
    """Host to device: the one explicit way in (as ``cupy.asarray``)."""
    if isinstance(value, StrictArray):
        return value if dtype is None or value.dtype == np.dtype(dtype) else \
            StrictArray(value._a.astype(dtype))
    return StrictArray(np.array(value, dtype=dtype, order=order or "K", copy=True))


class _Generator:
    """``cupy.random.Generator``'s subset: random, standard_normal, uniform, integers."""

    def __init__(self, seed: Any = None) -> None:
        self._rng = np.random.default_rng(seed)

    def random(self, size: Any = None, dtype: Any = np.float64) -> StrictArray:
        return StrictArray(np.asarray(self._rng.random(size, dtype=dtype)))

    def standard_normal(self, size: Any = None, dtype: Any = np.float64) -> StrictArray:
        return StrictArray(np.asarray(self._rng.standard_normal(size, dtype=dtype)))

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> StrictArray:
        return StrictArray(np.asarray(self._rng.uniform(low, high, size)))

    def integers(self, low: int, high: int | None = None, size: Any = None) -> StrictArray:
        return StrictArray(np.asarray(self._rng.integers(low, high, size)))


def _make_namespace() -> types.ModuleType:
    module = types.ModuleType("strict_backend_namespace")
    for name in _FUNCTIONS:
        setattr(module, name, _out_aware(name))
    module.asarray = module.array = module.ascontiguousarray = _asarray
    module.ndarray = StrictArray
    for name in ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool_",
                 "dtype", "finfo", "iinfo", "newaxis", "inf", "nan", "pi", "e"):
        setattr(module, name, getattr(np, name))
    random = types.ModuleType("strict_backend_namespace.random")
    random.default_rng = _Generator
    random.Generator = _Generator
    module.random = random
    module.get_array_module = lambda *arrays: module
    module.__name__ = "strict"
    return module


namespace = _make_namespace()
