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
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import losses, metrics, optimizers, utils
from ._version import __version__
from .backend import to_numpy, xp

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "FORMAT", "FORMAT_VERSION"]

FORMAT = "layerwise"
FORMAT_VERSION = "1"


def _safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ImportError("Saving models needs the package 'safetensors': "
                          "pip install safetensors") from exc
    return safetensors


#: the most layers a model file may declare (a dense network has a handful; this bounds the
#: work a hostile file can ask for)
MAX_LAYERS = 10_000


def check_savable(model: Any) -> None:
    """Raise a ValueError saying what to do if ``model`` cannot be written by ``save``.

    ``fit`` calls this at its start when a callback will save the model, so that a model that
    cannot be saved is refused before any training, not after an epoch's work.
    """
    parts = [("architecture", model.get_config)]
    if model.optimizer is not None:
        parts.append(("compile settings", model.get_compile_config))
    for what, get in parts:
        try:
            json.dumps(get(), allow_nan=False)
        except (TypeError, ValueError) as exc:
            hint = ""
            if model.optimizer is not None and callable(model.optimizer.learning_rate) and \
                    not hasattr(model.optimizer.learning_rate, "get_config"):
                hint = (" The optimizer's learning_rate is a plain function, which is never "
                        "stored in a file: use a schedule from layerwise.optimizers.schedules, "
                        "or subclass LearningRateSchedule with get_config() and pass it to "
                        "load_model(custom_objects={'YourSchedule': YourSchedule}).")
            raise ValueError(f"This model cannot be saved: its {what} do not convert to a "
                             f"file ({exc}).{hint}") from None


def read_extra_metadata(filepath: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata strings of a model file (e.g. what ``BackupAndRestore`` records)."""
    path = os.fspath(filepath)
    _open_check(path)
    with _safetensors().safe_open(path, framework="numpy") as handle:
        return dict(handle.metadata() or {})


def save_model(model: Any, filepath: str | os.PathLike[str],
               extra_metadata: dict[str, str] | None = None) -> None:
    """Write ``model`` (weights, architecture, compile settings, optimizer state) to one file.

    Refuses (ValueError, before writing anything) a model that is not built, whose weights
    hold NaN or infinity, or whose configuration cannot be stored.
    """
    from . import distributed

    path = os.fspath(filepath)
    if not model.built:
        raise ValueError("The model is not built: call build(input_dim), fit or predict "
                         "before saving, so its weights exist.")
    context = distributed.current()
    if context is not None and not context.is_chief:
        return  # one file, written by rank 0 (every rank holds the same weights)
    tensors = _weight_tensors(model, path)
    check_savable(model)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "layerwise_version": __version__,
        "model_config": json.dumps(model.get_config()),
        "rng_state": json.dumps(utils.global_rng().bit_generator.state),
    }
    for key in ("class_names", "feature_names"):
        value = getattr(model, key)
        if value is not None:
            metadata[key] = json.dumps([_json_scalar(v) for v in value])
    for key, value in (extra_metadata or {}).items():
        metadata.setdefault(key, str(value))
    if context is not None:  # noise streams are (seed, rank, epoch): the size fixes them
        metadata["world_size"] = str(context.size)
    if getattr(model, "target_name", None) is not None:
        metadata["target_name"] = json.dumps(str(model.target_name))
    if model.optimizer is not None:
        metadata["compile_config"] = json.dumps(model.get_compile_config())
        state = model.optimizer.get_state()
        metadata["optimizer_iterations"] = str(state["iterations"])
        for slot, arrays in state["slots"].items():
            for j, array in enumerate(arrays):
                tensors[f"optimizer.{slot}.{j}"] = np.ascontiguousarray(array)
    data = _safetensors().numpy.save(tensors, metadata=metadata)
    atomic_write(path, data)


def _weight_tensors(model: Any, path: str) -> dict[str, np.ndarray]:
    """Every parameter as a host array named ``layers.<i>.<name>``; refuses NaN and inf."""
    tensors = {}
    for i, layer in enumerate(model.layers):
        for name, param in layer.params.items():
            array = np.ascontiguousarray(to_numpy(param))
            if not np.isfinite(array).all():
                raise ValueError(
                    f"Refusing to save to {path}: weight {name!r} of layer {layer.name!r} holds "
                    "NaN or infinite values, and a file of them could not be loaded. Restore "
                    "finite weights first (e.g. from the last checkpoint).")
            tensors[f"layers.{i}.{name}"] = array
    return tensors


def _json_scalar(value: Any) -> Any:
    """A class or feature name as JSON can hold it (NumPy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def save_weights(model: Any, filepath: str | os.PathLike[str]) -> None:
    """Write ``model``'s weights alone to a safetensors file, atomically (Keras's
    ``save_weights``); the architecture is the model's own."""
    from . import distributed

    path = os.fspath(filepath)
    if not model.built:
        raise ValueError("The model is not built, so it has no weights to save.")
    if not distributed.is_chief():
        return
    tensors = _weight_tensors(model, path)
    metadata = {"format": FORMAT + "-weights", "format_version": FORMAT_VERSION}
    atomic_write(path, _safetensors().numpy.save(tensors, metadata=metadata))


def load_weights(model: Any, filepath: str | os.PathLike[str]) -> None:
    """Set ``model``'s weights from ``save_weights``'s file (or a full model file), after
    checking that every tensor is there, with the right shape, and finite."""
    path = os.fspath(filepath)
    _open_check(path)
    try:
        with _safetensors().safe_open(path, framework="numpy") as handle:
            kind = (handle.metadata() or {}).get("format")
            tensors = {k: handle.get_tensor(k) for k in handle.keys() if k.startswith("layers.")}
    except Exception as exc:  # SafetensorError, or an OSError from a broken file
        raise ValueError(f"{path} is not a readable safetensors weights file: {exc}") from None
    if kind not in (FORMAT, FORMAT + "-weights"):
        raise ValueError(f"{path} is not a layerwise weights or model file (format={kind!r}).")
    if not model.built:
        raise ValueError("Build the model before load_weights(): its architecture decides "
                         "which weights the file must hold.")
    expected = {f"layers.{i}.{name}": param for i, layer in enumerate(model.layers)
                for name, param in layer.params.items()}
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise ValueError(f"{path}: the weights do not match the model (missing: "
                         f"{missing[:5] or 'none'}; unexpected: {extra[:5] or 'none'}).")
    for key, param in expected.items():
        _check_tensor(path, key, tensors[key], param.shape)
    for key, param in expected.items():  # all checked first: a failure changes nothing
        param[...] = xp.asarray(tensors[key], dtype=param.dtype)


def _umask() -> int:
    """The process's umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


_TEMP_SUFFIX = ".tmp"


def _remove_stale_temps(folder: str, base: str) -> None:
    """Delete temporary files of earlier writes to ``folder/base`` whose process is gone
    (killed before it could rename or delete them). Names are ``.base.<pid>.<random>.tmp``."""
    prefix = f".{base}."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_TEMP_SUFFIX)):
            continue
        pid_text = name[len(prefix):].split(".", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # that writer is dead: its temp file is garbage
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
        except OSError:  # alive, owned by someone else
            pass


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    The bytes go to a temporary file beside the target, are flushed to disk and renamed over
    it. A symbolic link is followed (its target is replaced, the link kept). The new file keeps
    the permission bits of the file it replaces; a new file gets the umask's. Errors name
    ``path``, never the temporary file, and temporary files left by killed writers are removed.
    """
    path = os.fspath(path)
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    folder, base = os.path.split(target)
    try:
        os.makedirs(folder, exist_ok=True)
        if os.path.isdir(target):
            raise IsADirectoryError(21, "Is a directory")
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        _remove_stale_temps(folder, base)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=_TEMP_SUFFIX,
                                   dir=folder)
    except OSError as exc:
        raise _naming(exc, f"Cannot write {path}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, f"Cannot write {path}") from None
        raise


def _naming(exc: OSError, what: str) -> OSError:
    """``exc`` again, its message naming the user's path instead of a temporary file."""
    reason = exc.strerror or (exc.args[0] if exc.args else type(exc).__name__)
    return type(exc)(exc.errno, f"{what}: {reason}") if exc.errno is not None else \
        type(exc)(f"{what}: {reason}")


def check_writable_folder(folder: str) -> None:
    """Raise an OSError naming ``folder`` unless files can be created in it (made if missing).

    The command line checks its output folder before training, not after it."""
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".layerwise-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _naming(exc, f"Cannot write to the folder {folder}") from None


@contextlib.contextmanager
def _keep_global_rng() -> Iterator[None]:
    """Loading must not move the global generator."""
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
    except RecursionError:
        raise ValueError(f"{path}: the metadata entry {key!r} is nested too deeply.") from None


def _open_check(path: str) -> None:
    """Refuse what is not a readable regular file, before opening it: a FIFO or a device
    would block the reader (and ignore Ctrl-C), a directory is not a model."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"No model file at {path!r}.") from None
    except PermissionError:
        raise PermissionError(f"Permission denied: cannot reach the model file {path!r}.") \
            from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path!r} is a directory, not a model file.")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path!r} is not a regular file (a FIFO, socket or device); model "
                         "files are regular files.")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except PermissionError:
        raise PermissionError(f"Permission denied: cannot read the model file {path!r}.") \
            from None


def _read(path: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    _open_check(path)
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
               restore_random_state: bool = False,
               custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild the model saved at ``filepath``.

    Args:
        compile: also restore the loss, metrics, optimizer and its state, so ``fit``
            continues where it stopped.
        restore_random_state: also set the global random generator to its state at saving
            time, so shuffling and dropout continue the saved run's random stream exactly
            (useful when resuming in a new process).
        custom_objects: ``{name: class}`` for the user's own layers, activations, losses,
            optimizers or schedules (subclasses of layerwise's bases) named in the file, and
            ``{name: (function, derivative)}`` for activations given as function pairs.

    Raises ``ValueError`` for a file that is not a complete, consistent layerwise model.
    Nothing from the file is executed, and nothing is allocated beyond what the file holds:
    every declared weight shape is compared with the stored tensor before the layer is built,
    and no random weights are drawn.
    """
    from .registry import custom_object_scope

    path = os.fspath(filepath)
    if path.endswith(".keras"):  # Keras 3's zip format (layerwise.keras_format)
        from .keras_format import load_keras

        _open_check(path)
        return load_keras(path, compile=compile)
    metadata, tensors = _read(path)
    config = _json(metadata, "model_config", path)
    with custom_object_scope(custom_objects), _keep_global_rng():
        model = _build_from_file(config, tensors, path)
        model.class_names = _names(metadata, "class_names", path, model)
        model.feature_names = _names(metadata, "feature_names", path, model)
        target = _json(metadata, "target_name", path, required=False)
        if target is not None and not isinstance(target, str):
            raise ValueError(f"{path}: target_name must be a string. Received: {target!r}")
        model.target_name = target
        world = metadata.get("world_size")
        model.saved_world_size = int(world) if world and world.isdigit() else None
        if compile and "compile_config" in metadata:
            _restore_compile(model, metadata, tensors, path)
    if restore_random_state:
        state = _json(metadata, "rng_state", path)
        try:
            utils.global_rng().bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: the stored random state is invalid: {exc}") from None
    return model


def _build_from_file(config: Any, tensors: dict[str, np.ndarray], path: str) -> Any:
    """The model of ``config`` with its weights taken from ``tensors`` as each layer is built
    (see ``Layer.add_weight``), after checking every key, shape and value."""
    from .layers.base import LAYERS
    from .models import Sequential

    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError(f"{path}: the architecture must be a dict with a list 'layers'.")
    layer_configs = config["layers"]
    if not 0 < len(layer_configs) <= MAX_LAYERS:
        raise ValueError(f"{path}: the architecture declares {len(layer_configs)} layers; a "
                         f"model file holds 1 to {MAX_LAYERS}.")
    presets: list[dict[str, np.ndarray]] = [{} for _ in layer_configs]
    unexpected = []
    for key, array in tensors.items():
        if not key.startswith("layers."):
            continue
        index, _, name = key[len("layers."):].partition(".")
        if not (index.isdigit() and int(index) < len(presets) and name):
            unexpected.append(key)
            continue
        _check_tensor(path, key, array, array.shape)
        presets[int(index)][name] = array
    if unexpected:
        raise ValueError(f"{path}: the weights do not match the architecture (unexpected: "
                         f"{sorted(unexpected)[:5]}).")
    layers: list[Any] = []
    try:
        layers = [LAYERS.from_config(layer) for layer in layer_configs]
        for i, (layer, preset) in enumerate(zip(layers, presets)):
            layer._preset, layer._preset_prefix = preset, f"layers.{i}."
        name = config.get("name")
        model = Sequential(layers, name=name if isinstance(name, str) else None)
        if not model.built and config.get("input_dim") is not None:
            model.build(config["input_dim"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        hint = ""
        if "Unknown" in str(exc) or "custom" in str(exc):
            hint = (" If the model uses your own classes, pass them: "
                    "load_model(path, custom_objects={'Name': Class}).")
        raise ValueError(f"{path}: the architecture in the file is invalid: "
                         f"{str(exc).rstrip('.')}.{hint}") from None
    finally:
        leftovers = [(i, sorted(layer.__dict__.pop("_preset", {}) or {}))
                     for i, layer in enumerate(layers)]
        for layer in layers:
            layer.__dict__.pop("_preset_prefix", None)
    if not model.built:
        raise ValueError(f"{path}: the architecture has no input_dim, so no weights can fit it.")
    extra = [f"layers.{i}.{name}" for i, names in leftovers for name in names]
    if extra:
        raise ValueError(f"{path}: the weights do not match the architecture (unexpected: "
                         f"{extra[:5]}).")
    return model


def _names(metadata: dict[str, str], key: str, path: str, model: Any) -> list[Any] | None:
    """``class_names`` or ``feature_names``, checked: a list of distinct strings or numbers,
    one per output class (two for a one-unit binary output) or one per input feature."""
    names = _json(metadata, key, path, required=False)
    if names is None:
        return None
    if not isinstance(names, list) or not all(
            isinstance(n, str) or (isinstance(n, int) and not isinstance(n, bool))
            or (isinstance(n, float) and math.isfinite(n)) for n in names):
        raise ValueError(f"{path}: {key} must be a list of strings or numbers.")
    if key == "feature_names":
        names = [str(n) for n in names]
        expected = [model.input_dim]
    else:
        expected = [model.output_dim] + ([2] if model.output_dim == 1 else [])
    if len(names) not in expected:
        raise ValueError(f"{path}: {key} has {len(names)} entries, but the model has "
                         f"{' or '.join(map(str, expected))} "
                         f"{'inputs' if key == 'feature_names' else 'outputs'}.")
    if len({json.dumps(n) for n in names}) != len(names):
        raise ValueError(f"{path}: {key} has repeated entries.")
    return names


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
    if not isinstance(settings, dict) or not isinstance(settings.get("metrics", []), list):
        raise ValueError(f"{path}: the compile settings must be a dict with a list 'metrics'.")
    try:
        model.compile(optimizer=optimizers.get(settings["optimizer"]),
                      loss=losses.get(settings["loss"]),
                      metrics=[m if isinstance(m, str) else metrics.METRICS.from_config(m)
                               for m in settings.get("metrics", [])],
                      loss_weights=settings.get("loss_weights"),
                      jit_compile=settings.get("jit_compile", "auto"))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: the compile settings in the file are invalid: {exc}") from None
    try:
        iterations = int(metadata.get("optimizer_iterations", "0"))
        if iterations < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path}: optimizer_iterations is not an integer >= 0.") from None
    params = model.params
    slots: dict[str, list[np.ndarray]] = {}
    for key, array in tensors.items():
        if key.startswith("optimizer."):
            _, slot, index = (*key.split(".", 2), "", "")[:3]
            if not (slot and index.isdigit()):
                raise ValueError(f"{path}: unexpected tensor {key!r}.")
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
            if slot in model.optimizer.nonnegative_slots and array.size and array.min() < 0:
                raise ValueError(f"{path}: optimizer slot {slot!r} (a sum of squares) holds "
                                 f"negative values in tensor {j}.")
        state_slots[slot] = [a.astype(params[0].dtype, copy=False) for a in arrays]
    needed = set(model.optimizer.slot_names) if iterations else set()
    if (state_slots or needed) and set(state_slots) != set(model.optimizer.slot_names):
        raise ValueError(f"{path}: optimizer slots {sorted(state_slots)} do not match "
                         f"{type(model.optimizer).__name__}'s {list(model.optimizer.slot_names)}.")
    model.optimizer.set_state({"iterations": iterations, "slots": state_slots})
