"""Central finite differences in float64, and the relative error used by the checks."""

from collections.abc import Callable

import numpy as np

EPS = 1e-6


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = EPS) -> np.ndarray:
    """dF/d(array) by central differences, perturbing ``array`` in place and restoring it."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat = array.reshape(-1)
    out = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        out[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / max(||a|| + ||n||, 1e-12): 0 for equal arrays, ~1 for unrelated ones."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-12))
