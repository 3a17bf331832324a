"""Plots of training and of the seeds' ideas (matplotlib, the optional ``plot`` extra).

Every function draws on a new figure with the headless Agg backend, saves it when given
``path=`` and returns the matplotlib ``Figure``.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from .utils import optional_import

__all__ = ["history", "decision_boundary", "activations", "gradient_flow", "confusion_matrix"]


def _pyplot() -> Any:
    matplotlib = optional_import("matplotlib", "Plotting", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    from . import distributed

    fig.tight_layout()
    if path is not None and distributed.is_chief():  # one file, from rank 0
        from .saving import atomic_write

        buffer = io.BytesIO()
        fig.savefig(buffer, format=os.path.splitext(os.fspath(path))[1][1:] or "png", dpi=110)
        atomic_write(os.fspath(path), buffer.getvalue())
    _pyplot().close(fig)
    return fig


def history(history: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """Loss and each metric per epoch, training and validation side by side.

    ``history`` is what ``fit`` returned (or its ``.history`` dict).
    """
    plt = _pyplot()
    logs = getattr(history, "history", history)
    keys = [k for k in logs if not k.startswith("val_") and "/" not in k
            and k != "learning_rate"]
    if not keys:
        raise ValueError("`history` holds no per-epoch values to plot.")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = np.arange(1, len(logs[key]) + 1)
        ax.plot(epochs, logs[key], marker="o", ms=3, label=f"training {key}")
        if f"val_{key}" in logs:
            ax.plot(epochs, logs[f"val_{key}"], marker="o", ms=3, label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, path)


def decision_boundary(model: Any, x: Any, y: Any, path: str | os.PathLike[str] | None = None,
                      resolution: int = 200, lines: list[tuple[float, float]] | None = None,
                      title: str | None = None) -> Any:
    """The regions a 2-feature classifier assigns to each class, with the data on top.

    ``lines`` are extra straight lines ``(slope, intercept)`` to draw, e.g. each hidden unit's
    line w1·x1 + w2·x2 + b = 0 (see ``examples/nonlinear_region.py``).
    """
    plt = _pyplot()
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"decision_boundary needs 2-D points (n, 2). Received: x.shape={x.shape}")
    pad = 0.1 * (x.max(axis=0) - x.min(axis=0))
    lo, hi = x.min(axis=0) - pad, x.max(axis=0) + pad
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], resolution),
                         np.linspace(lo[1], hi[1], resolution))
    out = model.predict(np.c_[g1.ravel(), g2.ravel()], batch_size=4096)
    z = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0.5).astype(int)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.contourf(g1, g2, z.reshape(g1.shape), alpha=0.25, cmap="coolwarm")
    for label, marker in zip(np.unique(y), ["o", "x", "s", "^", "v", "d"]):
        pts = x[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=14, marker=marker, label=f"class {label}")
    for i, (slope, intercept) in enumerate(lines or []):
        xs = np.array([lo[0], hi[0]])
        ax.plot(xs, slope * xs + intercept, "k--", lw=1.2, label=f"hidden unit {i + 1}")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def activations(names: list[str] | None = None, path: str | os.PathLike[str] | None = None,
                low: float = -5.0, high: float = 5.0) -> Any:
    """Every activation (or those in ``names``) and its derivative, like the seeds' figures."""
    from . import activations as acts

    plt = _pyplot()
    names = names or [n for n in acts.names() if n not in ("identity", "swish", "hardmax")]
    z = np.linspace(low, high, 401)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        act = acts.get(name)
        zz = z[None, :] if name == "softmax" else z
        y = act.forward(zz)
        if name == "softmax":  # a row of 401 logits; show it against z
            y = y[0]
        ax.plot(z, y, label="f(z)")
        ax.plot(z, act.derivative(zz, act.forward(zz)).reshape(-1), "--", label="f'(z)")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_title(name)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    return _finish(fig, path)


def gradient_flow(monitor: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """Per-layer gradient norms over training, from a ``GradientMonitor`` (log scale)."""
    plt = _pyplot()
    record = getattr(monitor, "record", monitor)
    series = {k[len("grad_norm/"):]: v for k, v in record.items() if k.startswith("grad_norm/")}
    if not series:
        raise ValueError("The monitor recorded no gradient norms; pass it to fit(callbacks=...).")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(series)))  # input dark -> output light
    for colour, (name, values) in zip(colours, series.items()):
        left.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=name,
                  color=colour)
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("mean gradient norm")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    last = [values[-1] for values in series.values()]
    right.bar(range(1, len(last) + 1), last, color=colours)
    right.set_yscale("log")
    right.set_xlabel("layer (input -> output)")
    right.set_ylabel("gradient norm, last epoch")
    right.grid(alpha=0.3, axis="y")
    return _finish(fig, path)


def confusion_matrix(y_true: Any, y_pred: Any, class_names: list[Any] | None = None,
                     path: str | os.PathLike[str] | None = None) -> Any:
    """A heat map of true class (rows) against predicted class (columns)."""
    from .metrics import confusion_matrix as counts

    plt = _pyplot()
    n = len(class_names) if class_names is not None else None
    matrix = counts(y_true, y_pred, n)
    labels = [str(c) for c in (class_names or range(matrix.shape[0]))]
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(labels), 0.8 + 0.5 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                color="white" if value > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return _finish(fig, path)
