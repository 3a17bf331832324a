"""One safe model file: weights, optimizer state and architecture in a single safetensors file.

``model.save("digits.safetensors")`` writes every parameter (``layers.<i>.<name>``) and every
optimizer slot (``optimizer.<slot>.<j>``) as tensors, and the architecture, compile settings,
optimizer step count, class names and the random generator's state as JSON strings in the
file's metadata. safetensors holds only arrays and strings: loading never executes code.

Writes are atomic: the bytes go to a temporary file in the same folder, are flushed to disk,
and replace the target with one ``os.replace``, so a crash leaves either the old file or the
new one, never half of one. ``load_model`` checks everything it reads and raises a
``ValueError`` naming the file and the problem for a truncated, corrupted or edited file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import losses, metrics, optimizers, utils
from ._version import __version__
from .backend import to_numpy

__all__ = ["save_model", "load_model", "FORMAT", "FORMAT_VERSION"]

FORMAT = "layerwise"
FORMAT_VERSION = "1"


def _safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ImportError("Saving models needs the package 'safetensors': "
                          "pip install safetensors") from exc
    return safetensors


def save_model(model: Any, filepath: str | os.PathLike[str]) -> None:
    """Write ``model`` (weights, architecture, compile settings, optimizer state) to one file."""
    path = os.fspath(filepath)
    if not model.built:
        raise ValueError("The model is not built: call build(input_dim), fit or predict "
                         "before saving, so its weights exist.")
    tensors: dict[str, np.ndarray] = {}
    for i, layer in enumerate(model.layers):
        for name, param in layer.params.items():
            tensors[f"layers.{i}.{name}"] = np.ascontiguousarray(to_numpy(param))
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "layerwise_version": __version__,
        "model_config": json.dumps(model.get_config()),
        "rng_state": json.dumps(utils.global_rng().bit_generator.state),
    }
    if model.class_names is not None:
        metadata["class_names"] = json.dumps(list(model.class_names))
    if model.feature_names is not None:
        metadata["feature_names"] = json.dumps(list(model.feature_names))
    if model.optimizer is not None:
        metadata["compile_config"] = json.dumps(model.get_compile_config())
        state = model.optimizer.get_state()
        metadata["optimizer_iterations"] = str(state["iterations"])
        for slot, arrays in state["slots"].items():
            for j, array in enumerate(arrays):
                tensors[f"optimizer.{slot}.{j}"] = np.ascontiguousarray(array)
    data = _safetensors().numpy.save(tensors, metadata=metadata)
    atomic_write(path, data)


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _keep_global_rng() -> Iterator[None]:
    """Building layers draws initial weights; loading must not move the global generator."""
    state = utils.global_rng().bit_generator.state
    try:
        yield
    finally:
        utils.global_rng().bit_generator.state = state


def _json(metadata: dict[str, str], key: str, path: str, required: bool = True) -> Any:
    if key not in metadata:
        if required:
            raise ValueError(f"{path}: the file's metadata has no {key!r}; it is not a "
                             "complete layerwise model file.")
        return None
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the metadata entry {key!r} is not valid JSON ({exc}).") from None


def _read(path: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    st = _safetensors()
    try:
        with st.safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # SafetensorError, or an OSError from a broken file
        raise ValueError(f"{path} is not a readable safetensors model file: {exc}") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not a layerwise model "
                         f"(metadata format={metadata.get('format')!r}).")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has layerwise format version "
                         f"{metadata.get('format_version')!r}; this version reads "
                         f"{FORMAT_VERSION!r}.")
    return metadata, tensors


def load_model(filepath: str | os.PathLike[str], compile: bool = True,
               restore_random_state: bool = False) -> Any:
    """Rebuild the model saved at ``filepath``.

    Args:
        compile: also restore the loss, metrics, optimizer and its state, so ``fit``
            continues where it stopped.
        restore_random_state: also set the global random generator to its state at saving
            time, so shuffling and dropout continue the saved run's random stream exactly
            (useful when resuming in a new process).

    Raises ``ValueError`` for a file that is not a complete, consistent layerwise model.
    """
    from .models import Sequential

    path = os.fspath(filepath)
    metadata, tensors = _read(path)
    config = _json(metadata, "model_config", path)
    with _keep_global_rng():
        try:
            model = Sequential.from_config(config)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}: the architecture in the file is invalid: {exc}") from None
    if not model.built:
        raise ValueError(f"{path}: the architecture has no input_dim, so no weights can fit it.")
    expected = {f"layers.{i}.{name}": param for i, layer in enumerate(model.layers)
                for name, param in layer.params.items()}
    stored = {k for k in tensors if k.startswith("layers.")}
    if stored != set(expected):
        missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
        raise ValueError(f"{path}: the weights do not match the architecture "
                         f"(missing: {missing or 'none'}; unexpected: {extra or 'none'}).")
    for key, param in expected.items():
        _check_tensor(path, key, tensors[key], param.shape)
        param[...] = tensors[key]
    class_names = _json(metadata, "class_names", path, required=False)
    model.class_names = None if class_names is None else list(class_names)
    feature_names = _json(metadata, "feature_names", path, required=False)
    model.feature_names = None if feature_names is None else [str(n) for n in feature_names]
    if compile and "compile_config" in metadata:
        _restore_compile(model, metadata, tensors, path)
    if restore_random_state:
        state = _json(metadata, "rng_state", path)
        try:
            utils.global_rng().bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: the stored random state is invalid: {exc}") from None
    return model


def _check_tensor(path: str, key: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != tuple(shape):
        raise ValueError(f"{path}: tensor {key!r} has shape {array.shape}, but the "
                         f"architecture needs {tuple(shape)}.")
    if array.dtype.kind != "f":
        raise ValueError(f"{path}: tensor {key!r} has dtype {array.dtype}; weights are floats.")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: tensor {key!r} holds NaN or infinite values.")


def _restore_compile(model: Any, metadata: dict[str, str], tensors: dict[str, np.ndarray],
                     path: str) -> None:
    settings = _json(metadata, "compile_config", path)
    try:
        model.compile(optimizer=optimizers.get(settings["optimizer"]),
                      loss=losses.get(settings["loss"]),
                      metrics=[m if isinstance(m, str) else metrics.METRICS.from_config(m)
                               for m in settings.get("metrics", [])])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: the compile settings in the file are invalid: {exc}") from None
    try:
        iterations = int(metadata.get("optimizer_iterations", "0"))
    except ValueError:
        raise ValueError(f"{path}: optimizer_iterations is not an integer.") from None
    params = model.params
    slots: dict[str, list[np.ndarray]] = {}
    for key, array in tensors.items():
        if key.startswith("optimizer."):
            _, slot, index = key.split(".", 2)
            slots.setdefault(slot, []).append((int(index), array))  # type: ignore[arg-type]
    state_slots = {}
    for slot, pairs in slots.items():
        pairs.sort(key=lambda pair: pair[0])  # type: ignore[index]
        arrays = [array for _, array in pairs]  # type: ignore[misc]
        if [i for i, _ in pairs] != list(range(len(params))):  # type: ignore[misc]
            raise ValueError(f"{path}: optimizer slot {slot!r} has {len(arrays)} arrays for "
                             f"{len(params)} parameters.")
        for j, (array, param) in enumerate(zip(arrays, params)):
            _check_tensor(path, f"optimizer.{slot}.{j}", array, param.shape)
        state_slots[slot] = [a.astype(params[0].dtype, copy=False) for a in arrays]
    needed = set(model.optimizer.slot_names) if iterations else set()
    if (state_slots or needed) and set(state_slots) != set(model.optimizer.slot_names):
        raise ValueError(f"{path}: optimizer slots {sorted(state_slots)} do not match "
                         f"{type(model.optimizer).__name__}'s {list(model.optimizer.slot_names)}.")
    model.optimizer.set_state({"iterations": iterations, "slots": state_slots})
