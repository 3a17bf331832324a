"""Checks on user data, run before any training starts.

Each failure is a ``ValueError`` (or ``TypeError``) that names the argument, the value given
and what is allowed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_feature_array", "as_target_array", "cast_finite", "check_features",
           "check_lengths"]


def _as_numeric(data: Any, argument: str) -> np.ndarray:
    if data is None:
        raise ValueError(f"`{argument}` must be an array. Received: {argument}=None")
    if isinstance(data, np.ma.MaskedArray):
        raise TypeError(
            f"`{argument}` is a masked array; its mask would be dropped and the masked entries "
            f"used as data. Fill or drop them first, e.g. {argument}.filled(value) or "
            f"{argument}[~{argument}.mask.any(axis=1)]."
        )
    array = np.asarray(data)
    if array.dtype == object or array.dtype.kind in "USVMm":
        kind = "strings" if array.dtype.kind in "USO" else f"dtype {array.dtype}"
        raise TypeError(
            f"`{argument}` must hold numbers; it holds {kind}. Received: {argument}.dtype="
            f"{array.dtype}. Encode non-numeric values first."
        )
    if array.dtype.kind == "c":
        raise TypeError(f"`{argument}` must be real; received complex values.")
    return array


def _where(index: Any, rows: Any) -> str:
    """``"r, c"`` for an index into a batch, its row mapped through ``rows`` (an offset, or
    the absolute row of each batch row) so messages name the row of the whole data."""
    parts = [int(i) for i in index]
    if parts and rows is not None:
        parts[0] = int(rows[parts[0]]) if np.ndim(rows) else parts[0] + int(rows)
    return ", ".join(str(p) for p in parts)


def cast_finite(array: np.ndarray, dtype: Any, argument: str, rows: Any = None
                ) -> np.ndarray:
    """``array`` as C-contiguous ``dtype``, refusing values that are not finite there: NaN,
    ±inf, and finite values beyond the dtype's range (``1e39`` becomes inf in float32), named
    by their row (through ``rows``, for batches of larger data: see ``_where``) and column."""
    _check_finite(array, argument, rows)
    with np.errstate(over="ignore"):  # an overflow is reported below, by row and column
        out = np.ascontiguousarray(array, dtype=dtype)
    if out.dtype != array.dtype and out.dtype.kind == "f":
        try:
            _check_finite(out, argument, rows)
        except ValueError:
            bad = tuple(np.argwhere(~np.isfinite(out))[0])
            where = _where(bad, rows)
            limit = np.finfo(out.dtype).max
            raise ValueError(
                f"`{argument}`[{where}] is {array[bad]}, beyond the range of {out.dtype} "
                f"(±{limit:.4g}), the model's dtype. Rescale the data, or use a float64 model "
                "(layerwise.backend.set_floatx('float64') or dtype='float64')."
            ) from None
    return out


def _check_finite(array: np.ndarray, argument: str, rows: Any = None) -> None:
    if array.dtype.kind != "f":
        return
    # one summing pass, no temporary: NaN and ±inf make the sum non-finite (so can an
    # overflow of huge finite values, which the exact check below then clears)
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf: the exact check decides
        total = np.add.reduce(array, axis=None)
    if np.isfinite(total):
        return
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        where = _where(bad, rows)
        raise ValueError(
            f"`{argument}` must hold finite numbers, but {argument}[{where}] is "
            f"{array[tuple(bad)]}. Remove or impute NaN and infinite values before training."
        )


def is_device_array(data: Any) -> bool:
    """Whether ``data`` is an array of a device backend (a CuPy array), which stays there."""
    return not isinstance(data, np.ndarray) and hasattr(data, "__cuda_array_interface__")


def _device_features(x: Any, dtype: str | None, argument: str) -> Any:
    """A device array's checks, made on the device with one read of the result."""
    from .backend import scalar, xp

    if x.ndim != 2:
        raise ValueError(f"`{argument}` must be 2-D, shaped (batch, features). "
                         f"Received: {argument}.shape={x.shape}")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"`{argument}` must hold real numbers. Received: {argument}.dtype="
                        f"{x.dtype}")
    out = x if dtype is None else xp.ascontiguousarray(x, dtype=dtype)
    if out.dtype.kind == "f" and not scalar(xp.isfinite(out).all()):
        raise ValueError(f"`{argument}` must hold finite numbers (in the model's dtype); this "
                         "device array holds NaN or infinite values.")
    return out


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a SciPy sparse matrix or array (without importing SciPy)."""
    return hasattr(x, "tocsr") and hasattr(x, "nnz") and hasattr(x, "toarray")


def as_feature_array(x: Any, dtype: str | None, argument: str = "x", rows: Any = None
                     ) -> np.ndarray:
    """``x`` as a finite 2-D array ``(batch, features)`` of ``dtype`` (unconverted, only
    checked for shape and type, when ``dtype`` is None). A device array (CuPy) is checked
    and converted where it is."""
    if is_device_array(x):
        return _device_features(x, dtype, argument)
    if is_sparse(x):  # a batch of a SciPy sparse matrix (fit densifies one batch at a time)
        x = x.toarray()
    array = _as_numeric(x, argument)
    if array.ndim != 2:
        hint = " Reshape a single feature with x.reshape(-1, 1)." if array.ndim == 1 else ""
        raise ValueError(
            f"`{argument}` must be 2-D, shaped (batch, features). "
            f"Received: {argument}.shape={array.shape}.{hint}"
        )
    if dtype is None:
        return array
    return cast_finite(array, dtype, argument, rows)


def as_target_array(y: Any, argument: str = "y", rows: Any = None) -> np.ndarray:
    """``y`` as a finite numeric array of 1 or 2 dimensions (the loss converts it further).
    Targets on a device are checked on the host (one explicit copy: they are small)."""
    if is_device_array(y):
        from .backend import to_numpy

        y = to_numpy(y)
    array = _as_numeric(y, argument)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"`{argument}` must be 1-D (batch,) or 2-D (batch, outputs). "
            f"Received: {argument}.shape={array.shape}"
        )
    _check_finite(array, argument, rows)
    return array


def check_lengths(x: np.ndarray, y: np.ndarray, x_name: str = "x", y_name: str = "y") -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`{x_name}` and `{y_name}` must have the same number of samples. Received: "
            f"{x_name}.shape[0]={x.shape[0]}, {y_name}.shape[0]={y.shape[0]}"
        )
    if x.shape[0] == 0:
        raise ValueError(
            f"`{x_name}` must hold at least one sample. Received: {x_name}.shape={x.shape}"
        )


def check_features(x: np.ndarray, input_dim: int, argument: str = "x") -> None:
    if x.shape[1] != input_dim:
        raise ValueError(
            f"`{argument}` has {x.shape[1]} features, but the model expects input_dim="
            f"{input_dim}. Received: {argument}.shape={x.shape}"
        )


def as_sample_weights(
    y: np.ndarray,
    sample_weight: Any | None,
    class_weight: dict[Any, float] | None,
    units: int,
    dtype: str,
    argument: str = "sample_weight",
) -> np.ndarray | None:
    """Per-sample weights ``(batch,)`` from ``sample_weight`` times ``class_weight[class]``.

    ``y`` is the target array after the loss converted it: integer classes, one-hot rows, or
    0/1 columns of a one-unit binary output.
    """
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 2 and weights.shape[1] == 1:
            weights = weights[:, 0]
        if weights.shape != (y.shape[0],):
            raise ValueError(
                f"`{argument}` must have one weight per sample, shape ({y.shape[0]},). "
                f"Received: {argument}.shape={weights.shape}"
            )
        _check_finite(weights, argument)
        if (weights < 0).any():
            raise ValueError(f"`{argument}` must be >= 0. Received a minimum of {weights.min()}")
    if class_weight:
        if not isinstance(class_weight, dict):
            raise TypeError(
                f"`class_weight` must be a dict {{class: weight}}. Received: {class_weight!r}"
            )
        if y.ndim == 1:
            classes = y.astype(np.int64)
        elif y.shape[1] > 1:
            classes = y.argmax(axis=1)
        elif np.isin(y, (0, 1)).all():
            classes = y[:, 0].astype(np.int64)
        else:
            raise ValueError("`class_weight` needs class targets (integer, one-hot or 0/1 "
                             "labels); these targets are continuous. Use sample_weight instead.")
        n_classes = max(units, 2)
        for key in class_weight:
            if not isinstance(key, (int, np.integer)) or not 0 <= key < n_classes:
                raise ValueError(
                    f"`class_weight` has key {key!r}, but the classes are 0..{n_classes - 1}."
                )
        table = np.ones(n_classes)
        for key, value in class_weight.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
                    not np.isfinite(value) or value < 0:
                raise ValueError(f"`class_weight` must map classes to finite weights >= 0. "
                                 f"Received: class_weight[{key!r}]={value!r}")
            table[int(key)] = float(value)
        per_class = table[classes]
        weights = per_class if weights is None else weights * per_class
    return None if weights is None else weights.astype(dtype)
