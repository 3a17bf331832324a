"""Guards of the training loop: whole optimizer steps under Ctrl-C, finite weights after them.

- ``InterruptGuard``: while an optimizer step is being applied, a Ctrl-C (SIGINT) is held back
  until the step is whole, so an interrupted ``fit`` never leaves part of the flat parameter
  buffer at step k+1 and the rest at step k. Outside the step Ctrl-C acts at once.
- ``all_finite``: one reduction over the flat parameter buffer after each step.

Errors raised by the loop live here too: ``NonFiniteLossError`` (a batch's loss was NaN or
infinite: nothing was applied) and ``NonFiniteWeightsError`` (an update wrote NaN or infinity
into the weights although the batch's loss was finite).
"""

from __future__ import annotations

import math
import signal
import threading
from types import FrameType
from typing import Any

from .backend import scalar, xp

__all__ = ["CHECK_ELEMENTS", "InterruptGuard", "NonFiniteLossError", "NonFiniteWeightsError",
           "StatePoint", "all_finite", "check_interval", "lr_text"]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the weights are those from before the bad batch."""

    def __init__(self, loss: float, epoch: int | None = None, batch: int | None = None,
                 optimizer: Any = None, message: str | None = None) -> None:
        self.loss, self.epoch, self.batch = loss, epoch, batch
        if message is None:
            where = "" if epoch is None else f" at epoch {epoch + 1}, batch {batch + 1}"
            message = (
                f"The loss became {loss}{where}. Training stopped before applying that batch's "
                "update, so the weights are those from before it. The learning rate"
                f"{lr_text(optimizer)} is probably too high: try a lower learning_rate, gradient "
                "clipping (clipnorm=1.0), or check the data for extreme values."
            )
        super().__init__(message)

    def add_note_to_message(self, text: str) -> None:
        """Append ``text`` to the message (what happened to the weights afterwards)."""
        self.args = (f"{self.args[0]} {text}",)

    def __str__(self) -> str:
        return str(self.args[0])


class NonFiniteWeightsError(NonFiniteLossError):
    """An update wrote NaN or infinity into the weights, although the batch's loss was finite
    (an exploding or NaN learning rate, ``epsilon=0``, a huge penalty, an overflowing float16
    or float32 gradient)."""

    def __init__(self, loss: float, epoch: int | None = None, batch: int | None = None,
                 optimizer: Any = None, restored: str | None = None, every: int = 1) -> None:
        self.every = every
        state = restored or ("The weights now hold those values: restore them (load a "
                             "checkpoint, or set_weights) before using the model; save() "
                             "refuses to write them.")
        if every == 1:
            where = "" if epoch is None else f" of epoch {epoch + 1}, batch {batch + 1}"
            what = (f"The update{where} made some weights NaN or infinite, although that "
                    f"batch's loss ({loss:.6g}) was finite.")
        else:
            where = "" if epoch is None else f" in epoch {epoch + 1} (found after batch " \
                                             f"{batch + 1}; checked every {every} steps)"
            what = (f"Some weights became NaN or infinite{where}, although every batch's loss "
                    "was finite.")
        super().__init__(loss, epoch, batch, optimizer, message=(
            f"{what} {state} The learning rate{lr_text(optimizer)} is probably too high for this "
            "data and dtype: try a lower learning_rate, clipnorm=1.0, a larger epsilon, or "
            "float32 instead of float16."))


def lr_text(optimizer: Any) -> str:
    """`` (learning_rate=...)`` for messages, or "" when the rate cannot be read."""
    if optimizer is None:
        return ""
    try:
        return f" (learning_rate={optimizer.current_learning_rate():g})"
    except (ValueError, TypeError):
        return ""


#: parameters per step of weight checking: a model of n parameters has its weights checked
#: every max(1, n // CHECK_ELEMENTS) steps (and at every epoch's end), which keeps the check
#: under 1% of a step: 1.2 µs every step on config A (337 parameters, ~100 µs a step), 108 µs
#: every 6th step on config C (670k, ~2.7 ms a step). The roll-back goes to the epoch's start,
#: so a later detection within the epoch changes nothing but the wasted steps.
CHECK_ELEMENTS = 100_000


def check_interval(n_params: int) -> int:
    """Steps between weight checks for a model of ``n_params`` parameters."""
    return max(1, n_params // CHECK_ELEMENTS)


def all_finite(arrays: list[Any]) -> bool:
    """Whether every entry of ``arrays`` is finite: one summing pass each (NaN and ±inf make
    the sum non-finite), and an exact check only when the sum is (huge finite values can
    overflow it). About 25 GB/s: 108 µs on config C's 670k float32 parameters."""
    for array in arrays:
        if not math.isfinite(scalar(xp.sum(array))) and \
                not scalar(xp.isfinite(array).all()):
            return False
    return True


class InterruptGuard:
    """Holds a Ctrl-C back while ``critical`` is set; delivers it as KeyboardInterrupt after.

    Installed around ``fit``'s loop (and ``train_on_batch``) from the main thread only, and only
    when SIGINT has Python's default handler, so a program's own handler is left alone.
    """

    def __init__(self) -> None:
        self.critical = False
        self.pending = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.critical:
            self.pending = True
            return
        raise KeyboardInterrupt

    def deliver(self) -> None:
        """Raise the KeyboardInterrupt held back during the step, if any."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


class StatePoint:
    """The weights and optimizer state at one point of training (the start of an epoch),
    copied into buffers reused from epoch to epoch, so that an update that made the weights
    non-finite can be rolled back. Costs one copy of the training state per epoch."""

    def __init__(self) -> None:
        self._copies: list[Any] | None = None
        self._built = False
        self._iterations = 0

    @staticmethod
    def _live(params: list[Any], optimizer: Any) -> list[Any]:
        return list(params) + (optimizer.state_arrays() if optimizer.built else [])

    def take(self, params: list[Any], optimizer: Any) -> None:
        live = self._live(params, optimizer)
        copies = self._copies
        if copies is None or len(copies) != len(live) or any(
                c.shape != a.shape or c.dtype != a.dtype for c, a in zip(copies, live)):
            self._copies = [a.copy() for a in live]
        else:
            for copy, array in zip(copies, live):
                xp.copyto(copy, array)
        self._built, self._iterations = optimizer.built, optimizer.iterations

    def restore(self, params: list[Any], optimizer: Any) -> None:
        if self._copies is None:
            raise RuntimeError("no state point was taken")
        if not self._built:  # the optimizer had no state yet: start it afresh
            optimizer.set_state({"iterations": self._iterations, "slots": {}})
        for array, copy in zip(self._live(params, optimizer), self._copies):
            xp.copyto(array, copy)
        optimizer.iterations = self._iterations
