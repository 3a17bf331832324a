"""How many threads the matrix multiplies use inside ``fit``: chosen by measurement.

On a quiet 2-core machine two BLAS threads train config C (784-512-512-10) faster than one.
When other processes keep the cores busy, the same two threads wait on each other, spinning
and being descheduled: training measured 0.5-2k samples/s with two OpenBLAS threads against
18-21k with one (``benchmarks/oversubscribed.py``). No setting is right for both, and the load
changes while a model trains, so by default ``fit`` measures instead of guessing:

- it runs a short window (about 0.25 s) with every candidate thread count (all cores, half,
  one) and keeps the one that made the most training steps per second, switching only for a
  clear (10%) gain found by two probes in a row; a window opens after its first step, so
  that fit's setup (loading a compiled kernel, say) is not charged to the first count;
- it measures again after a hold that doubles while the choice stays the same (2 s, 4 s, ...
  up to a minute) and falls back to 2 s when the choice changes, so it follows the load at
  a cost of about 1% on a quiet machine;
- a model keeps its governor from one ``fit`` to the next: a loop of ``fit(epochs=1)`` calls
  continues the same measurement and hold (a probe's window starts afresh in the next call,
  as the time between calls is no training) instead of probing every count again at the
  start of every call, which spent half of each 0.45 s epoch of config C on one thread;
- fits shorter than one window never change anything; the original thread count is restored
  when ``fit`` ends.

It governs the library that computes the GEMMs: OpenBLAS (NumPy's) or, when active, MKL
(``layerwise.blas``), through threadpoolctl; a compiled kernel whose products are oneDNN's
sets oneDNN's OpenMP threads to the governor's count before each stretch of steps, and the
split kernel (``layerwise.parts_kernel``) runs that many threads of its own.
``set_threads(n)`` (or ``LAYERWISE_THREADS=n``) fixes the count instead;
``set_threads(None)`` or ``"auto"`` restores the measurement.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Governor", "cores_available", "fixed", "governor", "set_threads",
           "threads_setting"]

#: seconds of training per measured window, and the fewest steps that make a window
WINDOW = 0.25
MIN_STEPS = 5
#: seconds between measurements: the first hold, and the longest
HOLD_START, HOLD_MAX = 2.0, 60.0
#: another count must make this many times more steps per second to replace the current one
SWITCH_GAIN = 1.10

_setting: list[int | None] = [None]


def _parse(value: Any) -> int | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`threads` must be a positive integer, 'auto' or None. Received: "
                         f"threads={value!r}")
    return value


def set_threads(threads: int | str | None) -> None:
    """Fix the GEMM threads used inside ``fit`` to ``threads``, or measure (None, "auto")."""
    _setting[0] = _parse(threads)


def threads_setting() -> int | None:
    """The fixed thread count, or None when ``fit`` measures."""
    return _setting[0]


@contextlib.contextmanager
def fixed(threads: int) -> Iterator[None]:
    """Inside this block ``fit`` uses exactly ``threads`` GEMM threads."""
    previous = _setting[0]
    _setting[0] = _parse(threads)
    try:
        yield
    finally:
        _setting[0] = previous


env = os.environ.get("LAYERWISE_THREADS")
if env:
    set_threads("auto" if env == "auto" else int(env))
del env


class Governor:
    """Chooses among ``candidates`` thread counts by the step rate each achieves.

    ``apply(n)`` sets the thread count; ``clock()`` gives seconds (both injectable, so the
    decisions can be tested with forced timings). Call ``step()`` after every training step
    (``step(n)`` after n).
    """

    def __init__(self, candidates: list[int], apply: Callable[[int], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.candidates = list(dict.fromkeys(candidates))
        self.apply, self.clock = apply, clock
        self.owner: tuple[str, ...] = ()  # the libraries it governs (paths), set by governor()
        self.pending: int | None = None  # a count one probe preferred, awaiting a second
        self.choice = self.candidates[0]
        self.hold = HOLD_START
        self.rates: dict[int, float] = {}
        self.history: list[tuple[dict[int, float], int]] = []  # (rates, choice) per probe
        self._start_probe()

    def _start_probe(self) -> None:
        self.rates = {}
        self.probing = 0  # index of the candidate being measured
        self._switch(self.candidates[0])

    def _switch(self, threads: int) -> None:
        self.current = threads
        self.apply(threads)
        self.window_start = self.clock()
        self.steps = 0
        # a probe's window opens at the end of its first step (or stretch), which it does
        # not count: what ran before it (fit's setup, loading a compiled kernel, the
        # threads waking up) is not the step rate of this count
        self.opening = self.probing is not None

    def resume(self) -> None:
        """At the start of another ``fit``: the thread count in use again; a probe's window
        starts afresh (the time between two fits is no training), a hold keeps counting."""
        if self.probing is None:
            self.apply(self.current)
        else:
            self._switch(self.current)

    def step(self, count: int = 1) -> None:
        """After ``count`` training steps (the compiled kernel reports a stretch at once)."""
        now = self.clock()
        if self.opening:
            self.opening = False
            self.window_start = now
            return
        self.steps += count
        elapsed = now - self.window_start
        if self.probing is None:
            if elapsed >= self.hold:
                self._start_probe()
            return
        if elapsed < WINDOW or self.steps < MIN_STEPS:
            return
        self.rates[self.current] = self.steps / elapsed
        self.probing += 1
        if self.probing < len(self.candidates):
            self._switch(self.candidates[self.probing])
            return
        best = max(self.rates, key=self.rates.__getitem__)
        if best != self.choice and self.rates[best] < SWITCH_GAIN * self.rates[self.choice]:
            best = self.choice  # not a clear gain: keep the current choice
        if best != self.choice and self.pending != best:
            # a first sign: measure again at once, and switch only if the next probe agrees
            # (a shared core slow for one window would otherwise set the count for a hold)
            self.pending = best
            self.history.append((dict(self.rates), self.choice))
            self._start_probe()
            return
        self.pending = None
        self.hold = min(2 * self.hold, HOLD_MAX) if best == self.choice else HOLD_START
        self.choice = best
        self.history.append((dict(self.rates), best))
        self.probing = None
        self._switch(best)


def _controller() -> Any | None:
    """threadpoolctl's controller of the library computing the GEMMs, or None."""
    from . import blas

    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    if blas.active is None:  # NumPy's (and SciPy's) OpenBLAS: blas keeps that controller
        cached = blas._openblas_controller()
    else:
        cached = _controllers.get("mkl")
        if cached is None:
            cached = _controllers["mkl"] = ThreadpoolController().select(internal_api="mkl")
    return cached if cached is not None and cached.lib_controllers else None


_controllers: dict[str, Any] = {}
#: [the measurements of the last fit's governor]: a list of ({threads: steps/s}, choice)
last_history: list[list[tuple[dict[int, float], int]]] = []


def cores_available() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


@contextlib.contextmanager
def governor(previous: Governor | None = None) -> Iterator[Governor | None]:
    """The governor for one ``fit`` (None where there is nothing to choose: one core, a fixed
    setting, no threadpoolctl, or a non-NumPy backend); restores the thread count after.
    ``previous``: the model's governor from its last ``fit``, continued when it governs the
    same library and thread counts."""
    from .backend import backend_name

    fixed_threads = _setting[0]
    cores = cores_available()
    controller = _controller() if backend_name() == "numpy" else None
    if controller is None or (fixed_threads is None and cores < 2):
        yield None
        return
    limiter = controller.limit(limits=fixed_threads or cores)  # restored on exit
    try:
        if fixed_threads is not None:
            yield None
            return
        candidates = list(dict.fromkeys([cores, max(1, cores // 2), 1]))
        libraries = tuple(sorted(lib.filepath for lib in controller.lib_controllers))

        def apply(n: int) -> None:
            controller.limit(limits=n)

        # the same libraries, or more: numba loads SciPy's OpenBLAS during the first fit
        if previous is not None and previous.candidates == candidates and \
                set(previous.owner) <= set(libraries):
            chooser = previous
            chooser.apply = apply  # the controller may be a new one for the same libraries
            chooser.owner = libraries
            chooser.resume()
        else:
            chooser = Governor(candidates, apply)
            chooser.owner = libraries
        last_history[:] = [chooser.history]  # for inspection after fit
        yield chooser
    finally:
        limiter.restore_original_limits()
