"""layerwise: fully connected neural networks with layer-wise back-propagation on NumPy.

Quick use::

    import layerwise as lw
    model = lw.Sequential([lw.layers.Dense(64, activation="relu", input_dim=8),
                           lw.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10)
"""

from . import (
    activations,
    backend,
    callbacks,
    distributed,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    threads,
    utils,
)
from ._version import __version__
from .models import Sequential
from .saving import load_model

__all__ = [
    "Sequential", "load_model", "activations", "backend", "callbacks", "distributed",
    "initializers",
    "layers", "losses", "metrics", "models", "optimizers", "regularizers", "threads", "utils",
    "__version__",
]
