"""The ``Optimizer`` interface: update ``(param, grad)`` pairs in place.

The model hands an optimizer two aligned lists, parameters and their gradients, once per
training step: ``optimizer.apply(params, grads)``. A new optimizer subclasses ``Optimizer``,
declares its per-parameter state in ``slot_names`` and writes ``update`` for one pair; it
never sees the model. Its state (the slots and the step count ``iterations``) is plain arrays,
inspectable through ``get_state()`` and restorable with ``set_state()``.

When the parameters are consecutive views of one flat buffer (the model packs them so), and
so are the gradients, the slots are allocated as flat buffers too and ``update`` runs once
over the whole buffer per step instead of once per array.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import scalar, to_numpy, xp
from ..registry import Configurable
from ..utils import check_finite_number
from .chunked import chunks

__all__ = ["MomentOptimizer", "Optimizer", "tiling_base", "FLUSH_EVERY", "TINY"]

#: steps between flushes of tiny optimizer state (see ``Optimizer.flush_subnormal_state``)
FLUSH_EVERY = 100
#: magnitude below which optimizer state is set to zero
TINY = 1e-30


def tiling_base(arrays: list[Any] | None, tail: int | None = 0) -> Any | None:
    """The 1-D buffer that ``arrays`` tile exactly, in order, or None.

    ``tail``: how many elements the buffer may hold after the arrays (the model's gradient
    buffer carries two for ``layerwise.distributed``); None allows any number. With a tail
    the part the arrays tile is returned, a view of the buffer."""
    if not arrays or _address(arrays[0]) is None:
        return None
    base = arrays[0].base
    # an array over a foreign buffer (unpickled: bytes; np.frombuffer: a memoryview) has a
    # base that is not an array: no flat buffer then
    if not isinstance(base, type(arrays[0])) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = _address(base)
    offset = 0
    for array in arrays:
        if array.base is None or _address(array.base) != start or \
                not array.flags.c_contiguous or \
                _address(array) != start + offset * base.itemsize:
            return None
        offset += array.size
    if offset == base.size and not tail:
        return base
    if (tail is None and offset < base.size) or (tail and offset + tail == base.size):
        return base[:offset]
    return None


class Optimizer(Configurable):
    """Base class of all optimizers.

    Args:
        learning_rate: step size η, a float or a schedule called with the step count.
        clipnorm: if set, each gradient array is rescaled to at most this L2 norm.
        clipvalue: if set, each gradient entry is clipped to [-clipvalue, clipvalue].
        global_clipnorm: if set, all gradients together are rescaled to at most this L2 norm
            (PyTorch's ``clip_grad_norm_``).

    Clipping changes the gradient arrays in place.
    """

    #: names of per-parameter state arrays, created as zeros like each parameter
    slot_names: tuple[str, ...] = ()
    #: slots that hold sums of squares and so can never be negative (checked when loading)
    nonnegative_slots: tuple[str, ...] = ()
    #: True where ``update`` applies ``weight_decay`` itself (Adam, in its fused pass)
    decays_itself = False
    #: the update written once: ``formula(p, g, *state, *hyper) -> (p, *state)``, a plain
    #: function of arrays or of single numbers (see ``formula_slots`` and ``hyper``). The
    #: NumPy path applies it to cache-sized chunks; ``layerwise.compiled`` compiles the same
    #: function into one pass over the parameters. None: the subclass writes ``update``.
    formula: Callable[..., tuple[Any, ...]] | None = None
    #: the state the formula takes, in order: every slot it may use; those not in
    #: ``slot_names`` (options switched off) are passed as 0 and their results dropped
    formula_slots: tuple[str, ...] = ()

    def __init__(
        self,
        learning_rate: Any = 0.01,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        lr: float | None = None,
        decay: float | None = None,
        weight_decay: float | None = None,
    ) -> None:
        if lr is not None:  # Keras 2's spelling, still in many tutorials
            warnings.warn("`lr` is Keras 2's name; use learning_rate= (Keras 3).",
                          DeprecationWarning, stacklevel=3)
            learning_rate = lr
        if decay:  # Keras 2: lr_t = lr / (1 + decay * t), an inverse-time decay per step
            warnings.warn("`decay` is Keras 2's; use learning_rate=keras.optimizers."
                          "schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=decay).",
                          DeprecationWarning, stacklevel=3)
            from .schedules import InverseTimeDecay

            learning_rate = InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=decay)
        if not callable(learning_rate):
            if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
                    or not math.isfinite(learning_rate) or learning_rate <= 0:
                raise ValueError(
                    "`learning_rate` must be a positive number or a schedule. "
                    f"Received: learning_rate={learning_rate!r}"
                )
            learning_rate = float(learning_rate)
        clips = (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                 ("global_clipnorm", global_clipnorm))
        for arg, value in clips:
            if value is not None and not value > 0:
                raise ValueError(f"`{arg}` must be positive or None. Received: {arg}={value!r}")
        self.learning_rate = learning_rate
        #: decoupled weight decay λ of Keras 3: θ <- θ (1 - η λ) before each update
        self.weight_decay = 0.0 if weight_decay is None else check_finite_number(
            weight_decay, "weight_decay", minimum=0.0)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.iterations = 0
        self.slots: dict[str, list[Any]] = {}
        self.built = False
        self._flat: tuple[Any, Any, dict[str, Any]] | None = None  # (params, grads, slots)
        self._grads_seen: list[Any] | None = None
        self._restore: dict[str, list[Any]] | None = None

    @property
    def lr(self) -> Any:
        """Keras 2's name of ``learning_rate`` (read and write)."""
        return self.learning_rate

    @lr.setter
    def lr(self, value: Any) -> None:
        self.learning_rate = value

    @property
    def name(self) -> str:
        from .registry import OPTIMIZERS

        return OPTIMIZERS.name_of(type(self))

    def current_learning_rate(self) -> float:
        """η for the next step (a schedule is evaluated at ``iterations``)."""
        if not callable(self.learning_rate):
            return self.learning_rate
        value = self.learning_rate(self.iterations)
        try:
            lr = float(value)
        except (TypeError, ValueError):
            lr = math.nan
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(
                f"The learning-rate schedule {self.learning_rate!r} returned {value!r} at step "
                f"{self.iterations}; a learning rate must be a finite number >= 0. Training "
                "stopped before that step's update."
            )
        return lr

    def build(self, params: list[Any], grads: list[Any] | None = None) -> None:
        """Create the slots for ``params`` (called by the first ``apply``): flat buffers
        with per-parameter views when ``params`` and ``grads`` tile flat buffers."""
        flat_params = tiling_base(params)
        flat_grads = tiling_base(grads, tail=None) if grads is not None else None
        if flat_params is not None and flat_grads is not None:
            flat_slots = {name: xp.zeros_like(flat_params) for name in self.slot_names}
            self.slots = {name: [_view_like(flat_slots[name], flat_params, p) for p in params]
                          for name in self.slot_names}
            self._flat = (flat_params, flat_grads, flat_slots)
            self._grads_seen = grads
        else:
            self.slots = {name: [xp.zeros_like(p) for p in params] for name in self.slot_names}
            self._flat = None
        self.initialize_slots()
        if self._restore is not None:
            self._load_slots(self._restore, params)
            self._restore = None
        self.built = True

    def __getstate__(self) -> dict[str, Any]:
        # pickling turns views into copies, so the flat buffers could no longer stand for the
        # parameters; the per-parameter slots are kept and the flat path is rebuilt on demand
        state = dict(self.__dict__)
        state.update(_flat=None, _grads_seen=None)
        state.pop("_scratch", None)
        return state

    def initialize_slots(self) -> None:
        """Set initial slot values other than zero (e.g. Adagrad's initial accumulator)."""

    def scratch(self, n: int, dtype: Any, count: int = 1) -> list[Any]:
        """``count`` reusable 1-D work arrays of ``n`` elements (for chunked NumPy updates)."""
        key = (np.dtype(dtype).str, count)
        cache = self.__dict__.setdefault("_scratch", {})
        arrays = cache.get(key)
        if arrays is None or arrays[0].shape[0] < n:
            arrays = cache[key] = [xp.empty(n, dtype=dtype) for _ in range(count)]
        return [a[:n] for a in arrays]

    def apply(self, params: list[Any], grads: list[Any]) -> None:
        """One update step of every ``params[i]`` from ``grads[i]``, in place."""
        if not self.built:
            self.build(params, grads)
        if self.clipvalue is not None or self.clipnorm is not None or self.global_clipnorm:
            self.clip(grads)
        lr = self.current_learning_rate()
        flat = self._flat
        if self.weight_decay and not self.decays_itself:  # decoupled: θ <- θ (1 - η λ)
            for param in [flat[0]] if flat is not None else params:
                param *= 1.0 - lr * self.weight_decay
        if flat is not None and (grads is self._grads_seen or _same(tiling_base(grads, None),
                                                                     flat[1])):
            self._grads_seen = grads
            self.update(flat[0], flat[1], lr, flat[2])
        else:
            for i, (param, grad) in enumerate(zip(params, grads)):
                self.update(param, grad, lr, {k: v[i] for k, v in self.slots.items()})
        self.iterations += 1
        if self.iterations % FLUSH_EVERY == 0:
            self.flush_subnormal_state()

    def flush_subnormal_state(self) -> None:
        """Set state entries smaller than 1e-30 in magnitude to zero.

        A moment whose gradient stays exactly zero (a dead ReLU unit) decays geometrically and
        would reach the subnormal floats below 1.2e-38, on which x86 arithmetic is ~100x
        slower: the Adam step of config C went from 1.3 ms to 7.6 ms after some thousand
        steps. Entries this small cannot move a weight (they meet ε >= 1e-10 in every
        denominator), so zeroing them, every ``FLUSH_EVERY`` steps before they get there, is
        what flush-to-zero hardware modes (used by JAX) do, without changing results.
        """
        for array in self.state_arrays():
            flat = array.reshape(-1)
            for part in chunks(flat.shape[0]):
                block = flat[part]
                block[xp.abs(block) < TINY] = 0.0

    def state_arrays(self) -> list[Any]:
        """The live state arrays: the flat slot buffers when there are, else every slot."""
        if self._flat is not None:
            return list(self._flat[2].values())
        return [a for slot in self.slots.values() for a in slot]

    def hyper(self, lr: Any, t: Any) -> tuple[Any, ...]:
        """The numbers the formula takes after the state, for step ``t`` (1, 2, ...) with
        learning rate ``lr``. Written with arithmetic only, so that arrays of steps and rates
        give arrays (the compiled path prepares a whole epoch's values at once)."""
        return (lr,)

    def update(self, param: Any, grad: Any, lr: float, slots: dict[str, Any]) -> None:
        """Update ``param`` in place from ``grad`` with step size ``lr``; ``slots`` holds this
        parameter's state arrays (shaped like it), updated in place too.

        Applies ``formula``: in one compiled pass when numba is installed (see
        ``layerwise.compiled``), else on NumPy chunks that stay in the cache."""
        formula = self.formula
        if formula is None:
            raise NotImplementedError(f"{type(self).__name__} must define `formula` or "
                                      "override `update`.")
        hyper = self.hyper(lr, self.iterations + 1)
        p, g = param.reshape(-1), grad.reshape(-1)
        state = [slots[name].reshape(-1) if name in slots else None
                 for name in self.formula_slots]
        from .. import compiled

        if compiled.update_in_one_pass(formula, p, g, state, hyper):
            return
        for part in chunks(p.shape[0]):
            parts = [0.0 if s is None else s[part] for s in state]
            results = formula(p[part], g[part], *parts, *hyper)
            p[part] = results[0]
            for target, value in zip(parts, results[1:]):
                if not isinstance(target, float):
                    target[...] = value

    def clip(self, grads: list[Any]) -> list[Any]:
        """Clip ``grads`` in place: by value, then per-array norm, then global norm."""
        if self.clipvalue is not None:
            for g in grads:
                xp.clip(g, -self.clipvalue, self.clipvalue, out=g)
        if self.clipnorm is not None:
            for g in grads:
                _rescale(g, self.clipnorm, math.sqrt(scalar(xp.vdot(g, g))))
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(scalar(xp.vdot(g, g)) for g in grads))
            for g in grads:
                _rescale(g, self.global_clipnorm, total)
        return grads

    # -- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """``{"iterations": int, "slots": {name: [array, ...]}}``, copies as NumPy arrays."""
        slots = self.slots if self.built or self._restore is None else self._restore
        return {
            "iterations": self.iterations,
            "slots": {k: [to_numpy(a).copy() for a in v] for k, v in slots.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned, so training continues exactly.

        The slots are copied into place when the optimizer is next built for its parameters.
        """
        self.iterations = int(state["iterations"])
        slots = state.get("slots") or {}
        self.built = False
        self._restore = {k: [to_numpy(a) for a in v] for k, v in slots.items()} or None

    @staticmethod
    def check_decay_rate(value: Any, argument: str, closed: bool = False) -> float:
        """A moment's decay rate (β₁, β₂, ρ) as a float in [0, 1) ([0, 1] when ``closed``)."""
        number = check_finite_number(value, argument, minimum=0.0)
        if number > 1.0 or (number == 1.0 and not closed):
            raise ValueError(f"`{argument}` must be in [0, {'1]' if closed else '1)'}. "
                             f"Received: {argument}={value}")
        return number

    @staticmethod
    def check_epsilon(epsilon: Any) -> float:
        """``epsilon`` as a float, or a ValueError: it must be a finite number >= 0."""
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) \
                or not math.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"`epsilon` must be a finite number >= 0. Received: "
                             f"epsilon={epsilon!r}")
        return float(epsilon)

    def _load_slots(self, saved: dict[str, list[Any]], params: list[Any]) -> None:
        if set(saved) != set(self.slot_names):
            raise ValueError(f"{type(self).__name__} has slots {list(self.slot_names)}; the "
                             f"state holds {sorted(saved)}.")
        for name, arrays in saved.items():
            if len(arrays) != len(params):
                raise ValueError(f"Slot {name!r} holds {len(arrays)} arrays for "
                                 f"{len(params)} parameters.")
            for target, value in zip(self.slots[name], arrays):
                if target.shape != value.shape:
                    raise ValueError(f"Slot {name!r} has an array of shape {value.shape} for "
                                     f"a parameter of shape {target.shape}.")
                target[...] = xp.asarray(value, dtype=target.dtype)

    # -- config --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (a schedule as its own config), for ``from_config``."""
        lr = self.learning_rate
        if callable(lr) and hasattr(lr, "get_config"):
            from . import schedules

            lr = schedules.serialize(lr)
        config = {"learning_rate": lr, "clipnorm": self.clipnorm,
                  "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}
        if self.weight_decay:
            config["weight_decay"] = self.weight_decay
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            from . import schedules

            config["learning_rate"] = schedules.get(config["learning_rate"])
        return cls(**config)


class MomentOptimizer(Optimizer):
    """The optimizers with Adam's two moment decay rates β₁, β₂ and ε (Adam, Nadam,
    Adamax): their shared arguments, checks and config."""

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = self.check_decay_rate(beta_1, "beta_1")
        self.beta_2 = self.check_decay_rate(beta_2, "beta_2")
        self.epsilon = self.check_epsilon(epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


def _address(array: Any) -> int | None:
    """Where ``array``'s data starts, host or device (NumPy's or CuPy's array interface)."""
    interface = getattr(array, "__array_interface__", None) or \
        getattr(array, "__cuda_array_interface__", None)
    return None if interface is None else interface["data"][0]


def _same(a: Any, b: Any) -> bool:
    """Whether two 1-D arrays are the same memory (views made at different times)."""
    return a is not None and (a is b or (a.shape == b.shape and _address(a) == _address(b)))


def _rescale(grad: Any, limit: float, norm: float) -> None:
    if norm > limit:
        grad *= limit / norm


def _view_like(flat: Any, flat_params: Any, param: Any) -> Any:
    """The part of ``flat`` at the position ``param`` has in ``flat_params``."""
    offset = (_address(param) - _address(flat_params)) // flat_params.itemsize
    return flat[offset:offset + param.size].reshape(param.shape)
