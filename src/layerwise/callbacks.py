"""Callbacks: code that runs at fixed points of training, with Keras's hook names.

``fit`` calls ``on_train_begin``, then for each epoch ``on_epoch_begin``, for each batch
``on_train_batch_begin``/``on_train_batch_end`` (whose logs hold the running means of the
loss and metrics over the epoch so far, and the batch's ``size``), then ``on_epoch_end`` with
the epoch's
``logs`` (``loss``, each metric, and ``val_*`` with validation data), and finally
``on_train_end``. A callback may set ``model.stop_training = True`` to end training after the
current batch. ``self.params`` holds ``epochs``, ``steps``, ``batch_size``, ``samples``,
``verbose`` and ``metrics`` (every key the epoch logs will have).
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

__all__ = [
    "Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
    "LearningRateScheduler", "ReduceLROnPlateau", "TerminateOnNaN", "CSVLogger",
    "LambdaCallback", "GradientMonitor", "ModelCheckpoint", "BackupAndRestore", "TensorBoard",
]  # fmt: skip

Logs = dict[str, Any]


def _say(*args: Any) -> None:
    """Print a callback's message: on rank 0 only under ``layerwise.distributed``."""
    from . import distributed

    if distributed.is_chief():
        print(*args)


class Callback:
    """Base class; override the hooks you need. ``self.model`` is set by ``fit`` (and by
    ``evaluate``/``predict`` given ``callbacks=``). Every hook receives a ``logs`` dict.

    The batch hooks of training call Keras 2's names by default, so a callback that defines
    ``on_batch_end`` still runs.
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        """Called by ``fit``/``evaluate``/``predict`` with the model being run."""
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Called by ``fit`` with its settings (``epochs``, ``steps``, ``verbose``, ...)."""
        self.params = params

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """At the start of ``fit``."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """At the end of ``fit`` (also after an error or an early stop)."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Before epoch ``epoch`` (counted from 0)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """After epoch ``epoch``; ``logs`` has its losses and metrics (``val_`` ones too)."""

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Before training batch ``batch`` of the epoch."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """After training batch ``batch``; ``logs`` has its loss."""
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Keras 2's name of ``on_train_batch_begin``."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Keras 2's name of ``on_train_batch_end``."""

    def on_test_begin(self, logs: Logs | None = None) -> None:
        """At the start of ``evaluate`` (and of the validation in ``fit``)."""

    def on_test_end(self, logs: Logs | None = None) -> None:
        """At the end of ``evaluate``."""

    def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Before batch ``batch`` of ``evaluate``."""

    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """After batch ``batch`` of ``evaluate``."""

    def on_predict_begin(self, logs: Logs | None = None) -> None:
        """At the start of ``predict``."""

    def on_predict_end(self, logs: Logs | None = None) -> None:
        """At the end of ``predict``."""

    def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Before batch ``batch`` of ``predict``."""

    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """After batch ``batch`` of ``predict``; ``logs["outputs"]`` has its outputs."""


#: hook -> whether its first argument is an epoch or batch index
_HOOKS = {
    "on_train_begin": False, "on_train_end": False, "on_epoch_begin": True,
    "on_epoch_end": True, "on_train_batch_begin": True, "on_train_batch_end": True,
    "on_batch_begin": True, "on_batch_end": True, "on_test_begin": False,
    "on_test_end": False, "on_test_batch_begin": True, "on_test_batch_end": True,
    "on_predict_begin": False, "on_predict_end": False, "on_predict_batch_begin": True,
    "on_predict_batch_end": True,
}  # fmt: skip
_BATCH_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


def _overrides(cb: Callback, hook: str) -> bool:
    return hook in vars(cb) or getattr(type(cb), hook) is not getattr(Callback, hook)


class CallbackList:
    """Calls each hook on every callback, in order (``callbacks.on_epoch_end(epoch, logs)``),
    always with a ``logs`` dict."""

    def __init__(self, callbacks: list[Callback], model: Any, params: dict[str, Any]) -> None:
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"`callbacks` must be a list of Callback objects. Received: {cb!r}"
                )
            cb.set_model(model)
            cb.set_params(params)
        self.callbacks = callbacks
        self.params = params
        #: whether any callback listens to the training batch hooks (fit skips them
        #: otherwise; on a device backend each batch's logs cost a read of the running loss)
        self.wants_batches = self.wants("train")

    def wants(self, kind: str) -> bool:
        """Whether any callback overrides a batch hook of ``kind`` (train, test, predict)."""
        return any(getattr(cb, "wants_batch_logs", True) and _overrides(cb, hook)
                   for cb in self.callbacks for hook in _BATCH_HOOKS[kind])

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if hook not in _HOOKS:
            raise AttributeError(hook)
        indexed = _HOOKS[hook]

        def call(*args: Any) -> None:
            args = list(args)
            position = 1 if indexed else 0
            if len(args) <= position or args[position] is None:  # never None: Keras 3
                args = [*args[:position], {}]
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` is the list of epoch losses."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def format_logs(logs: Logs) -> str:
    return " - ".join(f"{k}: {v:.4g}" if k == "learning_rate" else f"{k}: {v:.4f}"
                      for k, v in logs.items() if isinstance(v, (int, float)))


class ProgbarLogger(Callback):
    """Progress output of ``fit``.

    ``verbose=1`` on a terminal: a live tqdm bar per epoch with the running loss and metrics,
    finished with the epoch's logs (validation values included). ``verbose=2``, or
    ``verbose=1`` when the output is not a terminal (CI, a pipe, a file): one line per epoch,
    ``Epoch 3/20 - 0.4s - loss: 0.1234 - ...``.
    """

    def __init__(self, verbose: int = 1, stream: TextIO | None = None) -> None:
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._bar: Any = None

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def _live(self) -> bool:
        isatty = getattr(self._out(), "isatty", None)
        return self.verbose == 1 and bool(isatty and isatty())

    @property
    def wants_batch_logs(self) -> bool:
        """Only a live bar shows each batch's running values."""
        return self._live()

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._start = time.perf_counter()
        if self._live():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.params.get("steps"), file=self._out(), unit="batch",
                             desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                             dynamic_ncols=True, leave=True, mininterval=0.1)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self._bar is None or not logs:
            return
        running = {k: v for k, v in logs.items() if k != "size"}
        self._bar.set_postfix_str(format_logs(running), refresh=False)
        self._bar.update(1)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        seconds = time.perf_counter() - self._start
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs or {}), refresh=False)
            self._bar.close()
            self._bar = None
            return
        out = self._out()
        out.write(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {seconds:.1f}s - "
                  f"{format_logs(logs or {})}\n")
        out.flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._bar is not None:  # training stopped inside an epoch
            self._bar.close()
            self._bar = None


class _Monitoring(Callback):
    """Shared by callbacks that watch one logged value for improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"`mode` must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        higher_is_better = mode == "max" or (mode == "auto" and (
            "acc" in monitor or monitor.endswith("auc") or "r2" in monitor))
        self._sign = -1.0 if higher_is_better else 1.0  # compare sign * value, lower is better

    def _check_monitor_exists(self) -> None:
        available = self.params.get("metrics")
        if available is not None and self.monitor not in available:
            hint = " Pass validation_split= or validation_data= to fit()." \
                if self.monitor.startswith("val_") else ""
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which fit() does not log. "
                f"Available: {', '.join(available)}.{hint} Received: monitor={self.monitor!r}"
            )

    def _improved(self, current: float, best: float) -> bool:
        return self._sign * current < self._sign * best - self.min_delta

    def _worst(self) -> float:
        return self._sign * math.inf


class EarlyStopping(_Monitoring):
    """Stop when the monitored value stops improving (SPEC §7: early stopping).

    Hold out a validation set (``validation_split=`` or ``validation_data=``, never the test
    set) and watch ``val_loss``: training stops after ``patience`` epochs without an
    improvement larger than ``min_delta``.

    Args:
        monitor: the logged value to watch (``"val_loss"``, ``"val_accuracy"``, ...).
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, min otherwise).
        baseline: the value must beat this to count as an improvement at all.
        restore_best_weights: at the end of training, put back the weights of the best epoch.
        start_from_epoch: epochs of warm-up during which no improvement is required.
        verbose: 1 prints a line when training stops.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if patience < 0:
            raise ValueError(f"`patience` must be >= 0. Received: patience={patience}")
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._check_monitor_exists()
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._worst()
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # no improvement ever: keep the first
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
                return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            _say(f"Epoch {self.stopped_epoch + 1}: early stopping "
                  f"(best {self.monitor} {self.best:.4f} at epoch {self.best_epoch + 1})")
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def _set_learning_rate(model: Any, value: float, who: str) -> None:
    optimizer = model.optimizer
    if callable(optimizer.learning_rate):
        raise ValueError(
            f"{who} sets the learning rate, but the optimizer's learning_rate is a schedule "
            f"({optimizer.learning_rate!r}); use one or the other."
        )
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{who} produced an invalid learning rate. Received: {value!r}")
    optimizer.learning_rate = float(value)


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch: ``lr = schedule(epoch, lr)``, or
    ``schedule(epoch)`` for a function of one argument (as Keras accepts both)."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose
        try:
            parameters = inspect.signature(schedule).parameters.values()
            positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY,
                                                              p.POSITIONAL_OR_KEYWORD)]
            self._one_argument = len(positional) == 1 and not any(
                p.kind == p.VAR_POSITIONAL for p in parameters)
        except (TypeError, ValueError):  # a builtin without a signature
            self._one_argument = False

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        current = self.model.optimizer.current_learning_rate()
        lr = self.schedule(epoch) if self._one_argument else self.schedule(epoch, current)
        _set_learning_rate(self.model, lr, "LearningRateScheduler")
        if self.verbose:
            _say(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr:.6g}.")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.current_learning_rate()


class ReduceLROnPlateau(_Monitoring):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Args:
        monitor: the logged value to watch (as ``EarlyStopping``).
        factor: multiplier of the learning rate, in (0, 1).
        patience: epochs without improvement before a reduction.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the learning rate never goes below this.
        verbose: 1 prints a line per reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as ``EarlyStopping``).
        min_delta: the least change that counts as an improvement.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"`factor` must be in (0, 1). Received: factor={factor}")
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._check_monitor_exists()
        _set_learning_rate(self.model, self.model.optimizer.current_learning_rate(),
                           "ReduceLROnPlateau")
        self.wait = 0
        self.cooldown_counter = 0
        self.best = self._worst()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs if logs is not None else {}
        current = logs.get(self.monitor)
        lr = self.model.optimizer.current_learning_rate()
        logs["learning_rate"] = lr
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and lr > self.min_lr:
                new_lr = max(lr * self.factor, self.min_lr)
                _set_learning_rate(self.model, new_lr, "ReduceLROnPlateau")
                if self.verbose:
                    _say(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{new_lr:.6g}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class ModelCheckpoint(_Monitoring):
    """Save the model after each epoch (or every ``save_freq`` batches), in the one-file
    safetensors format of ``model.save``.

    Args:
        filepath: where to save; may hold ``{epoch}``, ``{batch}`` and log keys, e.g.
            ``"ckpt-{epoch:02d}-{val_loss:.3f}.safetensors"``.
        monitor: the logged value deciding what is best (as ``EarlyStopping``).
        mode: ``"min"``, ``"max"`` or ``"auto"``: whether ``monitor`` improves downwards.
        save_best_only: save only when ``monitor`` improved on the best value so far.
        save_weights_only: write ``model.save_weights``'s file (weights alone).
        save_freq: ``"epoch"``, or an int: save every that many training batches.
        verbose: 1 prints a line per save.
    """

    def __init__(self, filepath: str | os.PathLike[str], monitor: str = "val_loss",
                 verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto",
                 save_freq: str | int = "epoch", initial_value_threshold: float | None = None
                 ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.filepath = os.fspath(filepath)
        self.writes_model_files = True  # fit checks at its start that the model can be saved
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(
                save_freq, int) or save_freq < 1):
            raise ValueError(f"`save_freq` must be 'epoch' or a positive integer. Received: "
                             f"save_freq={save_freq!r}")
        self.save_freq = save_freq
        self.initial_value_threshold = initial_value_threshold
        self.verbose = verbose

    @property
    def wants_batch_logs(self) -> bool:
        return self.save_freq != "epoch"

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self.save_best_only and self.save_freq == "epoch":
            self._check_monitor_exists()
        self.best = self._worst() if self.initial_value_threshold is None else \
            self.initial_value_threshold
        self._batches = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.save_freq == 0:
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _save(self, epoch: int, batch: int | None, logs: Logs) -> None:
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None or not self._improved(current, self.best):
                return
            self.best = current
        try:
            path = self.filepath.format(epoch=epoch + 1, batch=(batch or 0) + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint cannot fill in filepath={self.filepath!r} "
                             f"from the logs ({', '.join(logs)}): {exc}") from None
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose:
            _say(f"Epoch {epoch + 1}: saved model to {path}")


class BackupAndRestore(Callback):
    """Resume an interrupted ``fit`` where it stopped.

    After each epoch the model, its optimizer state and the random state are written to
    ``backup_dir`` (atomically). When ``fit`` starts and a backup is there (the previous
    ``fit`` was interrupted: killed, Ctrl-C, an error), the backup is loaded and training
    continues at the epoch after the one saved. A ``fit`` that ends normally deletes the
    backup (unless ``delete_checkpoint=False``).
    """

    def __init__(self, backup_dir: str | os.PathLike[str], save_freq: str = "epoch",
                 delete_checkpoint: bool = True) -> None:
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"`save_freq` must be 'epoch' (backups are taken at epoch "
                             f"ends). Received: save_freq={save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = bool(delete_checkpoint)
        self.writes_model_files = True

    @property
    def path(self) -> str:
        return os.path.join(self.backup_dir, "latest.safetensors")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        from .saving import load_model as load
        from .saving import read_extra_metadata

        if not os.path.exists(self.path):
            return
        saved = load(self.path, restore_random_state=True)
        self.model.set_weights(saved.get_weights())
        if saved.optimizer is not None:
            self.model.optimizer.set_state(saved.optimizer.get_state())
        epoch = int(read_extra_metadata(self.path).get("backup_epoch", "-1"))
        self.model._resume_epoch = epoch + 1
        _say(f"BackupAndRestore: resuming from {self.path} at epoch {epoch + 2}")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        from .saving import save_model

        save_model(self.model, self.path, extra_metadata={"backup_epoch": str(epoch)})

    def on_train_end(self, logs: Logs | None = None) -> None:
        from . import distributed

        if self.delete_checkpoint and not getattr(self.model, "training_failed", False) and \
                distributed.is_chief() and os.path.exists(self.path):
            os.unlink(self.path)


class TensorBoard(Callback):
    """Write TensorBoard event files: each epoch's logs as scalars (``train/`` and
    ``validation/``, tags ``epoch_loss``, ``epoch_accuracy``, ...) and, every
    ``histogram_freq`` epochs, a histogram of each weight. Needs the ``tensorboard`` package
    (``pip install 'layerwise[tensorboard]'``); view with ``tensorboard --logdir LOG_DIR``.
    """

    def __init__(self, log_dir: str | os.PathLike[str] = "logs", histogram_freq: int = 0,
                 **ignored: Any) -> None:
        super().__init__()
        if ignored:
            warnings.warn(f"TensorBoard ignores {sorted(ignored)}: layerwise writes the epoch "
                          "logs as scalars and, with histogram_freq, weight histograms.",
                          UserWarning, stacklevel=2)
        self.log_dir = os.fspath(log_dir)
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or \
                histogram_freq < 0:
            raise ValueError(f"`histogram_freq` must be an integer >= 0. Received: "
                             f"histogram_freq={histogram_freq!r}")
        self.histogram_freq = histogram_freq
        self._writers: dict[str, Any] = {}

    def _writer(self, run: str) -> Any:
        if run not in self._writers:
            from .utils import optional_import

            module = optional_import("tensorboard.summary.writer.event_file_writer",
                                     "The TensorBoard callback", "tensorboard")
            self._writers[run] = module.EventFileWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _write(self, run: str, step: int, values: list[Any]) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        event = event_pb2.Event(wall_time=time.time(), step=step,
                                summary=summary_pb2.Summary(value=values))
        self._writer(run).add_event(event)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        from . import distributed

        if not distributed.is_chief():
            return
        from tensorboard.compat.proto import summary_pb2

        runs: dict[str, list[Any]] = {}
        for key, value in (logs or {}).items():
            if not isinstance(value, (int, float)) or "/" in key:
                continue
            run, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            runs.setdefault(run, []).append(summary_pb2.Summary.Value(
                tag=f"epoch_{name}", simple_value=float(value)))
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            runs.setdefault("train", []).extend(self._histograms())
        for run, values in runs.items():
            self._write(run, epoch, values)
            self._writer(run).flush()

    def _histograms(self) -> list[Any]:
        from tensorboard.compat.proto import summary_pb2

        from .backend import to_numpy

        values = []
        for layer in self.model.layers:
            for name, param in layer.params.items():
                data = to_numpy(param).astype(np.float64).ravel()
                counts, edges = np.histogram(data, bins=30)
                values.append(summary_pb2.Summary.Value(
                    tag=f"{layer.name}/{name}", histo=summary_pb2.HistogramProto(
                        min=float(data.min()), max=float(data.max()), num=float(data.size),
                        sum=float(data.sum()), sum_squares=float((data * data).sum()),
                        bucket_limit=[float(e) for e in edges[1:]],
                        bucket=[float(c) for c in counts])))
        return values

    def on_train_end(self, logs: Logs | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class TerminateOnNaN(Callback):
    """Stop training quietly (no exception) when a batch's loss is NaN or infinite, or when
    an update made the weights non-finite.

    Without it, ``fit`` raises ``NonFiniteLossError`` (or ``NonFiniteWeightsError``). Either
    way no non-finite weights remain: a bad loss stops before its update, and weights made
    non-finite are rolled back to the start of the epoch.
    """

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        loss = logs.get("loss")
        if logs.get("nonfinite_weights"):
            _say(f"Batch {batch}: the update made weights non-finite; rolled back to the "
                  "start of the epoch, terminating training")
            self.model.stop_training = True
        elif loss is not None and not math.isfinite(loss):
            _say(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Append each epoch's logs as a row of a CSV file (header ``epoch,loss,...``).

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: continue an existing file instead of replacing it.
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self._file: Any = None
        self._writer: Any = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        from . import distributed

        if not distributed.is_chief():  # one file, written by rank 0
            return
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename)
        self._header_written = bool(exists)
        self._file = open(self.filename, "a" if self.append else "w", newline="",
                          encoding="utf-8")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self._file is None:
            return
        if self._writer is None:
            self._keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if not self._header_written:
                self._writer.writerow(["epoch", *self._keys])
        self._writer.writerow([epoch, *(logs.get(k, "") for k in self._keys)])
        self._file.flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``.

    Each argument takes the same arguments as the hook of that name.
    """

    def __init__(self, **hooks: Callable[..., None]) -> None:
        super().__init__()
        for name, function in hooks.items():
            if name not in _HOOKS:
                raise ValueError(
                    f"Unknown hook {name!r}. Valid hooks are: {', '.join(_HOOKS)}."
                )
            setattr(self, name, function)


_RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu")
_SATURATING = {  # activation -> test on its outputs y that f'(z) is (near) zero
    "sigmoid": lambda y: (y < 0.01) | (y > 0.99),
    "tanh": lambda y: abs(y) > 0.99,
    "hard_sigmoid": lambda y: (y <= 0.0) | (y >= 1.0),
}


class GradientMonitor(Callback):
    """Makes the seed's vanishing-gradient and dead-ReLU problems visible.

    For every layer with parameters it records, per epoch, the mean over batches of the L2
    norm of the layer's gradients (``grad_norm/<layer>``). For ReLU-family layers (relu,
    leaky_relu, elu, selu, PReLU, RReLU) it records the fraction of dead units, those whose
    pre-activation was never positive for any sample of the epoch (``dead/<layer>``); for
    sigmoid, tanh and hard_sigmoid layers the fraction of saturated units, those whose output
    sat in the flat region (σ < 0.01 or > 0.99, |tanh| > 0.99) for at least 90% of the
    epoch's samples (``saturated/<layer>``). The figures go into the epoch logs, hence into
    ``History``, and into ``self.record``.

    With ``warn=True`` a warning in plain words is issued (once per layer and kind) when a
    layer's gradient norm is ``vanishing_ratio`` (1000) times smaller than the last layer's, or
    more than half of a layer's ReLU units are dead.
    """

    def __init__(self, warn: bool = True, vanishing_ratio: float = 1000.0) -> None:
        super().__init__()
        self.warn = warn
        self.vanishing_ratio = float(vanishing_ratio)
        self.record: dict[str, list[float]] = {}
        self.messages: list[str] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.record = {}
        self._warned: set[tuple[str, str]] = set()
        layers = self.model.layers
        self._param_layers = [layer for layer in layers if layer.params]
        self._relu = [layer for layer in layers if self._kind(layer) == "relu"]
        self._sat = [layer for layer in layers if self._kind(layer) in _SATURATING]

    @staticmethod
    def _kind(layer: Any) -> str | None:
        name = type(layer).__name__
        if name in ("PReLU", "RReLU"):
            return "relu"
        activation = getattr(layer, "activation", None)
        act = getattr(activation, "name", None)
        if act in _RELU_FAMILY:
            return "relu"
        return act if act in _SATURATING else None

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._norms = {layer.name: 0.0 for layer in self._param_layers}
        self._batches = 0
        self._ever_active = {layer.name: None for layer in self._relu}
        self._saturated = {layer.name: None for layer in self._sat}
        self._samples = 0

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._batches += 1
        for layer in self._param_layers:  # summed where the gradients are; read per epoch
            total = sum((g * g).sum() for g in layer.grads.values())
            self._norms[layer.name] = self._norms[layer.name] + total ** 0.5
        for layer in self._relu:
            active = (layer._z > 0).any(axis=0)
            seen = self._ever_active[layer.name]
            self._ever_active[layer.name] = active if seen is None else seen | active
        if self._sat:
            for layer in self._sat:
                flat = _SATURATING[self._kind(layer)](layer._y).sum(axis=0)
                count = self._saturated[layer.name]
                self._saturated[layer.name] = flat if count is None else count + flat
            self._samples += self._sat[0]._y.shape[0]

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs if logs is not None else {}
        figures: dict[str, float] = {}
        from .backend import scalar, to_numpy

        for name, total in self._norms.items():
            figures[f"grad_norm/{name}"] = scalar(total) / max(self._batches, 1)
        for name, active in self._ever_active.items():
            if active is not None:
                figures[f"dead/{name}"] = float(1.0 - np.mean(to_numpy(active)))
        for name, count in self._saturated.items():
            if count is not None:
                figures[f"saturated/{name}"] = float(np.mean(to_numpy(count)
                                                             >= 0.9 * self._samples))
        for key, value in figures.items():
            self.record.setdefault(key, []).append(value)
        logs.update(figures)
        if self.warn:
            self._warn(epoch, figures)

    def _warn(self, epoch: int, figures: dict[str, float]) -> None:
        names = [layer.name for layer in self._param_layers]
        if names:
            last = figures[f"grad_norm/{names[-1]}"]
            for name in names[:-1]:
                norm = figures[f"grad_norm/{name}"]
                if last > 0 and norm * self.vanishing_ratio <= last:
                    ratio = f"{last / norm:,.0f}x" if norm > 0 else "infinitely"
                    self._say(name, "vanishing", (
                        f"Vanishing gradients: in epoch {epoch + 1} the gradient reaching layer "
                        f"{name!r} is {ratio} smaller than at the last layer {names[-1]!r}, so "
                        "it barely learns. Deep sigmoid/tanh stacks do this; try relu "
                        "activations with he_normal initialisation."))
        for key, value in figures.items():
            if key.startswith("dead/") and value > 0.5:
                name = key[len("dead/"):]
                self._say(name, "dead", (
                    f"Dead ReLUs: in epoch {epoch + 1}, {value:.0%} of the units of layer "
                    f"{name!r} never activated for any sample, so they get no gradient. Try a "
                    "lower learning rate, leaky_relu, or he_normal initialisation."))

    def _say(self, layer: str, kind: str, message: str) -> None:
        if (layer, kind) in self._warned:
            return
        self._warned.add((layer, kind))
        self.messages.append(message)
        warnings.warn(message, UserWarning, stacklevel=2)
