"""Batch inference and hyper-parameter search on a Dask cluster (``pip install 'layerwise[dask]'``).

Batch inference over data larger than one machine::

    import dask.array as da
    import layerwise.dask

    x = da.from_zarr(...)                               # (rows, features), chunked by rows
    y = layerwise.dask.predict("model.safetensors", x)  # a Dask array (rows, outputs)
    y.to_zarr(...)                                      # or .compute() when it fits

Each worker process reads the model file once (it must see the path: a shared filesystem, or
the same path on every machine) and predicts the row chunks it is given. The command line does
the same for a folder of ``.npy``/``.csv`` files: ``layerwise predict model.safetensors
folder/ -o out/ --scheduler tcp://host:8786``.

Hyper-parameter search needs nothing of layerwise's own: scikit-learn's searches run on a
Dask cluster through joblib's Dask backend::

    from dask.distributed import Client
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV
    from layerwise.sklearn import DenseClassifier

    client = Client("tcp://host:8786")            # or Client(LocalCluster(...))
    search = GridSearchCV(DenseClassifier(random_state=0), {...}, cv=3, n_jobs=-1)
    with parallel_backend("dask"):
        search.fit(x, y)                          # each fit runs on a worker

With ``random_state`` set, ``cv_results_`` equals the ``n_jobs=1`` search's.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .utils import optional_import

__all__ = ["predict", "predict_files"]

#: models loaded in this (worker) process: (path, mtime, size) -> model
_MODELS: dict[tuple[str, int, int], Any] = {}
#: how many times this process read a model file (tests check: once per worker)
_LOADS = [0]


def _model(path: str) -> Any:
    """The model at ``path``, read once per process (again only if the file changed)."""
    from .saving import load_model

    info = os.stat(path)
    key = (path, info.st_mtime_ns, info.st_size)
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = load_model(path, compile=False)
        _LOADS[0] += 1
    return model


def _predict_block(block: np.ndarray, path: str, batch_size: int) -> np.ndarray:
    return _model(path).predict(block, batch_size=batch_size)


def predict(model_path: str | os.PathLike[str], x: Any, batch_size: int = 1024) -> Any:
    """The model's outputs for the Dask array ``x`` ``(rows, features)``, as a Dask array
    ``(rows, outputs)`` chunked like ``x``'s rows. Nothing is computed until you ask."""
    da = optional_import("dask.array", "Batch inference on Dask", "dask")
    path = os.path.abspath(os.fspath(model_path))
    model = _model(path)  # here too: checks the file and gives the output shape
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"`x` must be 2-D, shaped (rows, features). Received: x.shape="
                         f"{x.shape}")
    if x.shape[1] != model.input_dim:
        raise ValueError(f"`x` has {x.shape[1]} features, but the model expects input_dim="
                         f"{model.input_dim}. Received: x.shape={x.shape}")
    if len(x.chunks[1]) > 1:
        x = x.rechunk({1: -1})  # each block holds whole rows
    return x.map_blocks(_predict_block, path, batch_size, dtype=np.dtype(model.dtype),
                        chunks=(x.chunks[0], (model.output_dim,)))


def predict_files(model_path: str | os.PathLike[str], files: list[str],
                  scheduler: str | None = None, target: str | None = None) -> list[np.ndarray]:
    """Predictions for each of ``files`` (``.npy``/``.npz``/``.csv``, columns matched as by
    ``layerwise predict``), computed on the Dask cluster at ``scheduler`` (a worker per file
    at a time), or here when it is None."""
    path = os.path.abspath(os.fspath(model_path))
    files = [os.path.abspath(f) for f in files]
    if scheduler is None:
        return [_predict_file(path, f, target) for f in files]
    distributed = optional_import("dask.distributed", "Prediction on a Dask cluster", "dask")
    with distributed.Client(scheduler) as client:
        futures = client.map(_predict_file, [path] * len(files), files, [target] * len(files),
                             pure=False)
        return client.gather(futures)


def _predict_file(path: str, data: str, target: str | None) -> np.ndarray:
    from .cli import _features_for

    model = _model(path)
    x, _ = _features_for(model, data, target, need_target=False)
    return model.predict(x, batch_size=1024)
