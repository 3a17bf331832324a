"""The playground's data: six generated problems on the plane, the seeds' P1/P2 region, a
user's CSV, and the input features the page can switch on.

Every generator gives ``(x, y)``: ``x`` of shape ``(n, 2)`` in about [-6, 6]² (the page's
square), ``y`` of shape ``(n,)``: 0/1 for classification, a number in about [-1, 1] for
regression. ``noise`` is a fraction of the square's half-width (0 to 0.5).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable

import numpy as np

from .. import datasets

#: half the side of the square the page shows
EXTENT = 6.0

CLASSIFICATION = ("circle", "xor", "gauss", "spiral", "p1p2")
REGRESSION = ("plane", "bumps")
DATASETS = (*CLASSIFICATION, "upload", *REGRESSION)

#: the input features: name -> (label on the page, function of x1 and x2)
FEATURES: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "x1": ("x₁", lambda a, b: a),
    "x2": ("x₂", lambda a, b: b),
    "x1_squared": ("x₁²", lambda a, b: a * a),
    "x2_squared": ("x₂²", lambda a, b: b * b),
    "x1_x2": ("x₁x₂", lambda a, b: a * b),
    "sin_x1": ("sin x₁", lambda a, b: np.sin(a)),
    "sin_x2": ("sin x₂", lambda a, b: np.sin(b)),
}

#: the most rows an uploaded CSV may have
MAX_UPLOAD_ROWS = 5000


def is_regression(name: str) -> bool:
    return name in REGRESSION


def generate(name: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of the problem ``name`` (one of ``DATASETS`` but "upload")."""
    rng = np.random.default_rng(seed)
    scale = noise * EXTENT  # noise as a fraction of the half-width
    if name == "circle":  # label 1 inside radius 2.5, 0 in the ring from 3.5 to 5
        y = rng.integers(0, 2, n)
        radius = np.where(y == 1, rng.uniform(0, 2.5, n), rng.uniform(3.5, 5.0, n))
        angle = rng.uniform(0, 2 * math.pi, n)
        x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    elif name == "xor":  # the quadrants: 1 where x1·x2 > 0
        x = rng.uniform(-5, 5, (n, 2))
        x += np.sign(x) * 0.3  # a small margin around the axes
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    elif name == "gauss":  # two Gaussian clouds
        y = rng.integers(0, 2, n)
        centre = np.where(y[:, None] == 1, 2.0, -2.0)
        x = centre + rng.normal(0, 1.0, (n, 2))
    elif name == "spiral":
        x01, y = datasets.make_spirals(n=n, noise=0.0, seed=seed)
        x = x01.astype(np.float64) * 1.6
    elif name == "p1p2":  # seed 001: above line P1 and below line P2, on [-1, 1]² scaled
        x01, y = datasets.make_p1p2(n=n, seed=seed)
        x = x01.astype(np.float64) * 5.0
    elif name == "plane":  # regression: a tilted plane
        x = rng.uniform(-EXTENT, EXTENT, (n, 2))
        y = (x[:, 0] + x[:, 1]) / (2 * EXTENT)
    elif name == "bumps":  # regression: two Gaussian bumps of opposite sign
        x = rng.uniform(-EXTENT, EXTENT, (n, 2))
        y = (np.exp(-((x[:, 0] - 2) ** 2 + (x[:, 1] - 2) ** 2) / 4)
             - np.exp(-((x[:, 0] + 2) ** 2 + (x[:, 1] + 2) ** 2) / 4))
    else:
        raise ValueError(f"`dataset` must be one of {', '.join(DATASETS)}. "
                         f"Received: dataset={name!r}")
    x = x + rng.normal(0, scale, x.shape) if scale > 0 else x
    if is_regression(name) and scale > 0:
        y = y + rng.normal(0, noise, n)
    return x.astype(np.float32), np.asarray(y, dtype=np.float32)


def split(x: np.ndarray, y: np.ndarray, train_fraction: float, seed: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A shuffled split: (x_train, y_train, x_test, y_test), at least one point each."""
    order = np.random.default_rng(seed + 1).permutation(len(x))
    cut = min(max(round(train_fraction * len(x)), 1), len(x) - 1)
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def features(x: np.ndarray, names: list[str]) -> np.ndarray:
    """The chosen features of points ``x`` (n, 2), shape ``(n, len(names))``."""
    a, b = x[:, 0].astype(np.float32), x[:, 1].astype(np.float32)
    return np.stack([FEATURES[name][1](a, b) for name in names], axis=1).astype(np.float32)


def parse_csv(text: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """An uploaded CSV: columns x1, x2 and a label (a header row is optional). Labels that
    are all 0 or 1 make a classification problem, others a regression. Returns (x, y,
    is_regression); raises ValueError saying what is wrong and where."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and not _numeric(rows[0]):
        rows = rows[1:]  # a header
    if len(rows) < 4:
        raise ValueError("The CSV must have at least 4 rows of x1, x2, label. "
                         f"Received: {len(rows)} rows")
    if len(rows) > MAX_UPLOAD_ROWS:
        raise ValueError(f"The CSV may have at most {MAX_UPLOAD_ROWS} rows. "
                         f"Received: {len(rows)} rows")
    values = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 3:
            raise ValueError("Each CSV row must have 3 columns (x1, x2, label). "
                             f"Received: {len(row)} columns in data row {number}")
        try:
            parsed = [float(c) for c in row]
        except ValueError:
            raise ValueError(f"CSV data row {number} must hold numbers. Received: "
                             f"{', '.join(row)[:80]}") from None
        if not all(math.isfinite(v) for v in parsed):
            raise ValueError(f"CSV data row {number} must hold finite numbers. Received: "
                             f"{', '.join(row)[:80]}")
        values.append(parsed)
    table = np.array(values, dtype=np.float64)
    x, y = table[:, :2], table[:, 2]
    regression = not np.all((y == 0) | (y == 1))
    # into the page's square: centred, the largest coordinate at 5
    x = x - (x.max(axis=0) + x.min(axis=0)) / 2
    span = np.abs(x).max()
    if span > 0:
        x = x * (5.0 / span)
    if regression:
        y = y - y.mean()
        top = np.abs(y).max()
        y = y / top if top > 0 else y
    return x.astype(np.float32), y.astype(np.float32), bool(regression)


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True
