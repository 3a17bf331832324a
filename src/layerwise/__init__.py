"""layerwise: fully connected neural networks with layer-wise back-propagation on NumPy.

Quick use::

    import layerwise as lw
    model = lw.Sequential([lw.layers.Dense(64, activation="relu", input_dim=8),
                           lw.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10)
"""

import importlib
from typing import Any

from ._version import __version__

#: submodules reachable as attributes (``import layerwise as keras; keras.layers``), each
#: imported on first use (PEP 562), so ``import layerwise`` itself stays fast
_SUBMODULES = (
    "activations", "backend", "blas", "callbacks", "cli", "data", "datasets", "distributed",
    "export", "guards", "initializers", "input_checks", "layers", "losses", "metrics",
    "models", "optimizers", "plot", "registry", "regularizers", "saving", "sklearn", "threads",
    "utils",
)  # fmt: skip
#: names taken from a submodule: Keras's top-level API
_FROM = {"Sequential": "models", "Model": "models", "load_model": "saving",
         "Input": "layers", "InputLayer": "layers"}

__all__ = [
    "Input", "InputLayer", "Model", "Sequential", "load_model", "activations", "backend",
    "callbacks", "datasets", "distributed", "initializers", "layers", "losses", "metrics",
    "models", "optimizers", "regularizers", "threads", "utils", "__version__",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in _FROM:
        value = getattr(importlib.import_module(f".{_FROM[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'layerwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *_FROM})
