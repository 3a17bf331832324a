"""Callbacks: code that runs at fixed points of training, with Keras's hook names.

``fit`` calls ``on_train_begin``, then for each epoch ``on_epoch_begin``, for each batch
``on_train_batch_begin``/``on_train_batch_end``, then ``on_epoch_end`` with the epoch's
``logs`` (``loss``, each metric, and ``val_*`` with validation data), and finally
``on_train_end``. A callback may set ``model.stop_training = True`` to end training after the
current epoch.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]


class Callback:
    """Base class; override the hooks you need. ``self.model`` is set by ``fit``."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...


class CallbackList(Callback):
    """Calls each hook on every callback, in order."""

    def __init__(self, callbacks: list[Callback], model: Any, params: dict[str, Any]) -> None:
        super().__init__()
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"`callbacks` must be a list of Callback objects. Received: {cb!r}"
                )
            cb.set_model(model)
            cb.set_params(params)
        self.callbacks = callbacks

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs)


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` is the list of epoch losses."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def format_logs(logs: dict[str, Any]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                      for k, v in logs.items())


class ProgbarLogger(Callback):
    """Prints one line per epoch: ``Epoch 3/20 - loss: 0.1234 - accuracy: 0.9650``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {format_logs(logs or {})}\n")
        stream.flush()
