"""Activation functions, each with its derivative beside it.

An activation maps pre-activations ``z`` of shape ``(batch, units)`` to outputs ``y`` of the
same shape. ``forward(z)`` gives ``y``; ``derivative(z, y)`` gives f'(z) element-wise (``y`` is
passed because several derivatives are cheapest written in terms of the output, e.g. sigmoid's
σ(1-σ)); ``backward(z, y, dy)`` gives dL/dz from dL/dy and is ``dy * f'(z)`` for every
element-wise function. Softmax, which mixes a row's entries, overrides ``backward`` with its
Jacobian-vector product.

Every function is written to be safe for large |z|: no overflow warnings and no NaN for
``sigmoid(±1000)`` or ``softmax([1000, 0])``.

Names resolve through :data:`ACTIVATIONS` (``get("relu")``); a user activation is a
``(function, derivative)`` pair: ``Dense(4, activation=(f, df))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .backend import xp
from .registry import Configurable, Registry, custom_object
from .utils import check_finite_number

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "Activation",
    "CustomActivation",
    "HardSigmoid",
    "Hardmax",
    "LeakyReLU",
    "Linear",
    "Mish",
    "ReLU",
    "SiLU",
    "Exponential",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "erf",
    "get",
    "names",
    "serialize",
]  # fmt: skip


class Activation(Configurable):
    """Base class: an activation function f and its derivative f'.

    The math is written once, as two plain functions of arrays held by the class:
    ``formula(z, *hyper)`` gives f(z) and ``gradient_formula(z, y, *hyper)`` gives f'(z)
    element-wise (``hyper()`` supplies the hyper-parameters, e.g. LeakyReLU's slope). The
    NumPy path calls them, and ``layerwise.compiled`` compiles the same functions for its
    small-network kernel. An activation that is not element-wise (softmax) sets
    ``elementwise = False`` and its ``gradient_formula(z, y, dy, *hyper)`` gives dL/dz.
    """

    #: the registered name, filled in by :func:`get` users and used by the fused losses
    name: str = "activation"
    #: whether ``forward(z, out=z)`` may overwrite z: true when ``backward`` and
    #: ``derivative`` still give the right answer from the overwritten z (ReLU's mask
    #: z > 0 equals y > 0); a layer then keeps one array per batch instead of two
    in_place: bool = False
    #: f(z, *hyper), shape ``(batch, units)`` in and out (None: no formula, e.g. user code)
    formula: Callable[..., Any] | None = None
    #: f'(z, y, *hyper) element-wise; or, when not ``elementwise``, dL/dz(z, y, dy, *hyper)
    gradient_formula: Callable[..., Any] | None = None
    #: whether f acts on each entry alone (softmax mixes a row's entries)
    elementwise: bool = True

    def hyper(self) -> tuple[float, ...]:
        """The hyper-parameters passed to ``formula`` and ``gradient_formula``."""
        return ()

    def __call__(self, z: Any) -> Any:
        return self.forward(z)

    def forward(self, z: Any, out: Any = None) -> Any:
        """f(z), shape ``(batch, units)`` in and out.

        ``out``, if given, is an array of z's shape the result may be written into (the
        model passes reused buffers); the returned array is the result either way.
        """
        return type(self).formula(z, *self.hyper())

    def derivative(self, z: Any, y: Any) -> Any:
        """f'(z) element-wise; ``y`` is ``forward(z)``."""
        return xp.asarray(type(self).gradient_formula(z, y, *self.hyper()), dtype=z.dtype)

    def backward(self, z: Any, y: Any, dy: Any, out: Any = None) -> Any:
        """dL/dz given dL/dy: ``dy * f'(z)`` for element-wise functions (into ``out`` if
        given, which may be ``dy`` itself); else the gradient formula's own product."""
        if not self.elementwise:
            return type(self).gradient_formula(z, y, dy, *self.hyper())
        return xp.multiply(dy, type(self).gradient_formula(z, y, *self.hyper()), out=out)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.get_config().items()))))


ACTIVATIONS: Registry[Activation] = Registry("activation", "activation", Activation)
register = ACTIVATIONS.register


def _named(name: str, *aliases: str) -> Callable[[type[Activation]], type[Activation]]:
    """Register an activation class and record its canonical name on it."""

    def decorator(cls: type[Activation]) -> type[Activation]:
        cls.name = name
        return register(name, *aliases)(cls)

    return decorator


def _sigmoid(z: Any) -> Any:
    # exp of a non-positive number never overflows; both branches share e = exp(-|z|)
    e = xp.exp(-xp.abs(z))
    r = 1.0 / (1.0 + e)
    return xp.where(z >= 0, r, e * r)


def stable_shift(z: Any) -> Any:
    """A per-row constant to subtract from ``z`` (batch, classes) before exponentiating.

    softmax and log-sum-exp are unchanged by subtracting any per-row constant; the row maxima
    make every exponent <= 0. When the whole batch spans less than 60, its single global
    maximum does that too, and no row underflows (e^-60 >> the smallest float32); two
    whole-array reductions are ~20x faster than a reduction along a short last axis.
    """
    if xp.__name__ != "numpy":  # on a device, row maxima are fast and need no host read
        return z.max(axis=-1, keepdims=True)
    top = z.max()
    if top - z.min() < 60.0:
        return top
    return z.max(axis=-1, keepdims=True)


def row_sums(e: Any) -> Any:
    """Σ over the last axis, shape ``(batch, 1)``, as a matrix-vector product (fast for few
    columns, where NumPy's reduction along the last axis is slow)."""
    return (e @ xp.ones(e.shape[-1], dtype=e.dtype))[..., None]


_ZEROS: dict[Any, Any] = {}


def zeros_like(z: Any) -> Any:
    """A read-only array of zeros shaped like ``z``: a view of one shared buffer per dtype,
    never written, so it costs neither time nor (being untouched calloc'd pages) memory."""
    n = z.size
    buf = _ZEROS.get(z.dtype)
    if buf is None or buf.shape[0] < n or type(buf) is not type(z):
        buf = _ZEROS[z.dtype] = xp.zeros(max(n, 1 << 16), dtype=z.dtype)
        try:
            buf.flags.writeable = False
        except (AttributeError, ValueError):  # CuPy's arrays cannot be made read-only
            pass
    return buf[:n].reshape(z.shape)


def _softplus(z: Any) -> Any:
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|), finite for any z
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


def erf(x: Any) -> Any:
    """The error function to about 1e-15, computed in float64, returned in ``x``'s dtype.

    NumPy has no erf. For |x| < 2 the Maclaurin series
    erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)) is summed to 80 terms; for |x| >= 2 the
    continued fraction erfc(x) = e^(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) is
    evaluated bottom-up over 80 levels.
    """
    x = xp.asarray(x)
    a = xp.abs(x.astype("float64"))
    out = xp.empty_like(a)
    small = a < 2.0
    s = a[small]
    term = s.copy()
    total = s.copy()
    s2 = s * s
    for n in range(1, 80):
        term *= -s2 / n
        total += term / (2 * n + 1)
    out[small] = total * (2.0 / math.sqrt(math.pi))
    b = a[~small]
    f = b.copy()
    for k in range(80, 0, -1):
        f = b + (k / 2.0) / f
    out[~small] = 1.0 - xp.exp(-b * b) / (math.sqrt(math.pi) * f)
    return (xp.sign(x) * out).astype(x.dtype if x.dtype.kind == "f" else "float64")


# -- the formulas: plain functions of arrays (and of the hyper-parameters), written with
# ``xp`` and free of ``out=``, so that NumPy runs them and numba compiles them unchanged


def _identity(z: Any) -> Any:
    return z


def _one(z: Any, y: Any) -> Any:
    return xp.ones_like(z)


def _sigmoid_grad(z: Any, y: Any) -> Any:
    return y * (1.0 - y)


def _tanh(z: Any) -> Any:
    return xp.tanh(z)


def _tanh_grad(z: Any, y: Any) -> Any:
    return 1.0 - y * y


def _relu(z: Any) -> Any:
    return xp.maximum(z, 0.0)


def _relu_grad(z: Any, y: Any) -> Any:
    # a 0/1 mask: multiplying dy by the boolean array is ~10x faster than a where()
    return z > 0


def _leaky_relu(z: Any, slope: float) -> Any:
    return xp.where(z > 0, z, z * slope)


def _leaky_relu_grad(z: Any, y: Any, slope: float) -> Any:
    return xp.where(z > 0, 1.0, slope).astype(z.dtype)


def _elu(z: Any, alpha: float) -> Any:
    # expm1 of min(z, 0) never overflows and is exact near 0
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, 0.0)))


def _elu_grad(z: Any, y: Any, alpha: float) -> Any:
    return xp.where(z > 0, 1.0, y + alpha).astype(z.dtype)


def _softmax(z: Any) -> Any:
    e = xp.exp(z - stable_shift(z))
    return e / row_sums(e)


def _softmax_backward(z: Any, y: Any, dy: Any) -> Any:
    # the Jacobian diag(s) - s sᵀ times dy, row by row: s ⊙ (dy - ⟨dy, s⟩)
    return y * (dy - row_sums(dy * y))


def _exp(z: Any) -> Any:
    return xp.exp(z)


def _exp_grad(z: Any, y: Any) -> Any:
    return y


def _softplus_grad(z: Any, y: Any) -> Any:
    return _sigmoid(z)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(z: Any) -> Any:
    neg = (_SELU_SCALE * _SELU_ALPHA) * xp.expm1(xp.minimum(z, 0.0))
    return xp.where(z > 0, _SELU_SCALE * z, neg)


def _selu_grad(z: Any, y: Any) -> Any:
    return xp.where(z > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA).astype(z.dtype)


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu(z: Any, approximate: float) -> Any:
    if approximate:
        return 0.5 * z * (1.0 + xp.tanh(_GELU_C * (z + 0.044715 * z**3)))
    return 0.5 * z * (1.0 + erf(z * (1.0 / math.sqrt(2.0))))


def _gelu_grad(z: Any, y: Any, approximate: float) -> Any:
    if approximate:
        t = xp.tanh(_GELU_C * (z + 0.044715 * z**3))
        dt = (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z * z)
        return 0.5 * (1.0 + t) + 0.5 * z * dt
    cdf = 0.5 * (1.0 + erf(z * (1.0 / math.sqrt(2.0))))
    pdf = xp.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
    return cdf + z * pdf


def _silu(z: Any) -> Any:
    return z * _sigmoid(z)


def _silu_grad(z: Any, y: Any) -> Any:
    s = _sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _hard_sigmoid(z: Any) -> Any:
    return xp.clip(z * (1.0 / 6.0) + 0.5, 0.0, 1.0)


def _hard_sigmoid_grad(z: Any, y: Any) -> Any:
    return xp.where((z > -3.0) & (z < 3.0), 1.0 / 6.0, 0.0).astype(z.dtype)


def _mish(z: Any) -> Any:
    return z * xp.tanh(_softplus(z))


def _mish_grad(z: Any, y: Any) -> Any:
    t = xp.tanh(_softplus(z))
    return t + z * (1.0 - t * t) * _sigmoid(z)


@_named("linear", "identity")
class Linear(Activation):
    """Identity: f(z) = z, f'(z) = 1. The output of a regression network."""

    formula, gradient_formula = staticmethod(_identity), staticmethod(_one)

    def backward(self, z: Any, y: Any, dy: Any, out: Any = None) -> Any:
        return dy


@_named("sigmoid")
class Sigmoid(Activation):
    """Logistic sigmoid: f(z) = 1 / (1 + e^-z), f'(z) = f(z)(1 - f(z)).

    Range (0, 1): the output of binary classification. Saturates outside about (-6, 6),
    where f' < 0.0025: the root of the vanishing-gradient problem of deep sigmoid networks.
    """

    formula, gradient_formula = staticmethod(_sigmoid), staticmethod(_sigmoid_grad)


@_named("tanh")
class Tanh(Activation):
    """Hyperbolic tangent: f(z) = (e^z - e^-z)/(e^z + e^-z), f'(z) = 1 - f(z)².

    Zero-centred with range (-1, 1); saturates outside about (-3, 3).
    """

    formula, gradient_formula = staticmethod(_tanh), staticmethod(_tanh_grad)

    def forward(self, z: Any, out: Any = None) -> Any:
        return xp.tanh(z, out=out)  # ``formula`` written into the reused buffer


@_named("relu")
class ReLU(Activation):
    """Rectified linear unit: f(z) = max(0, z), f'(z) = 1 for z > 0 else 0 (0 at z = 0).

    The first choice for hidden layers. A unit whose input is negative for every sample gets
    no gradient and stops learning: the dead-ReLU problem.
    """

    in_place = True  # z > 0 exactly where max(0, z) > 0
    formula, gradient_formula = staticmethod(_relu), staticmethod(_relu_grad)

    def forward(self, z: Any, out: Any = None) -> Any:
        # ``formula`` into the reused buffer; against an array of zeros NumPy's maximum runs
        # its SIMD loop: 2x faster than against the scalar 0 (10 µs against 23 µs on 1024x128)
        return xp.maximum(z, zeros_like(z), out=out)


@_named("leaky_relu")
class LeakyReLU(Activation):
    """Leaky ReLU: f(z) = z for z > 0 else α·z, f'(z) = 1 for z > 0 else α (α at z = 0).

    ``negative_slope`` α is a fixed hyper-parameter (default 0.01, as PyTorch).
    """

    formula, gradient_formula = staticmethod(_leaky_relu), staticmethod(_leaky_relu_grad)

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = check_finite_number(negative_slope, "negative_slope")

    def hyper(self) -> tuple[float, ...]:
        return (self.negative_slope,)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


@_named("elu")
class ELU(Activation):
    """Exponential linear unit: f(z) = z for z > 0 else α(e^z - 1), f'(z) = 1 or f(z) + α."""

    formula, gradient_formula = staticmethod(_elu), staticmethod(_elu_grad)

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = check_finite_number(alpha, "alpha")

    def hyper(self) -> tuple[float, ...]:
        return (self.alpha,)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


@_named("softmax")
class Softmax(Activation):
    """Softmax over the last axis: f(z)_i = e^(z_i) / Σ_j e^(z_j).

    Computed as e^(z - max z) / Σ e^(z - max z), so softmax([1000, 0]) = [1, 0] exactly.
    Its Jacobian is diag(s) - s sᵀ, so ``backward`` returns s ⊙ (dy - ⟨dy, s⟩) per row;
    ``derivative`` gives the Jacobian's diagonal s(1 - s). Paired with categorical
    cross-entropy, the model skips this Jacobian and uses the fused gradient p - y.
    """

    elementwise = False
    formula, gradient_formula = staticmethod(_softmax), staticmethod(_softmax_backward)

    def derivative(self, z: Any, y: Any) -> Any:
        return y * (1.0 - y)


@_named("exponential", "exp")
class Exponential(Activation):
    """Exponential: f(z) = e^z, f'(z) = e^z = f(z).

    Range (0, ∞): the output of a count or rate model (the log link of Poisson regression,
    paired with the ``poisson`` loss, which then works from the logits z).
    """

    formula, gradient_formula = staticmethod(_exp), staticmethod(_exp_grad)


@_named("softplus")
class Softplus(Activation):
    """Softplus: f(z) = log(1 + e^z), f'(z) = σ(z) (the sigmoid). A smooth ReLU."""

    formula, gradient_formula = staticmethod(_softplus), staticmethod(_softplus_grad)


@_named("selu")
class SELU(Activation):
    """Scaled ELU: f(z) = λ·z for z > 0 else λ·α(e^z - 1); f'(z) = λ or λ·α·e^z.

    α ≈ 1.6733 and λ ≈ 1.0507 make activations self-normalising (Klambauer et al., 2017).
    """

    alpha, scale = _SELU_ALPHA, _SELU_SCALE
    formula, gradient_formula = staticmethod(_selu), staticmethod(_selu_grad)


@_named("gelu")
class GELU(Activation):
    """Gaussian error linear unit: f(z) = z·Φ(z), f'(z) = Φ(z) + z·φ(z).

    Φ is the standard normal CDF, ½(1 + erf(z/√2)), and φ its density. With
    ``approximate=True``, Φ(z) is replaced by ½(1 + tanh(√(2/π)(z + 0.044715 z³))), as
    PyTorch's ``approximate='tanh'``.
    """

    formula, gradient_formula = staticmethod(_gelu), staticmethod(_gelu_grad)

    def __init__(self, approximate: bool = False) -> None:
        self.approximate = bool(approximate)

    def hyper(self) -> tuple[float, ...]:
        return (float(self.approximate),)

    def get_config(self) -> dict[str, Any]:
        return {"approximate": self.approximate}


@_named("silu", "swish")
class SiLU(Activation):
    """Sigmoid-weighted linear unit (swish): f(z) = z·σ(z), f'(z) = σ(z)(1 + z(1 - σ(z)))."""

    formula, gradient_formula = staticmethod(_silu), staticmethod(_silu_grad)


@_named("hard_sigmoid")
class HardSigmoid(Activation):
    """Piece-wise linear sigmoid: f(z) = clip(z/6 + 1/2, 0, 1), f'(z) = 1/6 on (-3, 3) else 0.

    The definition of PyTorch's ``Hardsigmoid``, Keras 3 and ONNX (alpha=1/6, beta=1/2).
    """

    formula, gradient_formula = staticmethod(_hard_sigmoid), staticmethod(_hard_sigmoid_grad)


@_named("mish")
class Mish(Activation):
    """Mish: f(z) = z·tanh(softplus(z)), f'(z) = tanh(sp) + z·(1 - tanh²(sp))·σ(z)."""

    formula, gradient_formula = staticmethod(_mish), staticmethod(_mish_grad)


@_named("hardmax")
class Hardmax(Activation):
    """Hardmax: 1 at each row's arg-max, 0 elsewhere. For prediction only: it has no gradient."""

    def forward(self, z: Any, out: Any = None) -> Any:
        out = xp.zeros_like(z)
        xp.put_along_axis(out, z.argmax(axis=-1)[..., None], 1.0, axis=-1)
        return out

    def derivative(self, z: Any, y: Any) -> Any:
        raise ValueError(
            "hardmax has no derivative (it is piece-wise constant), so it cannot be trained "
            "through; use 'softmax' for training and hardmax only to turn predictions into "
            "one-hot classes."
        )

    def backward(self, z: Any, y: Any, dy: Any, out: Any = None) -> Any:
        return self.derivative(z, y)  # raises: see derivative


@ACTIVATIONS.register_class
class CustomActivation(Activation):
    """A user activation from a ``(function, derivative)`` pair of element-wise callables.

    ``derivative(z)`` must return f'(z) with ``z``'s shape. It cannot be saved to a file by
    name; pass the same pair again when rebuilding the model.
    """

    def __init__(self, function: Callable[[Any], Any], derivative: Callable[[Any], Any]) -> None:
        if not callable(function) or not callable(derivative):
            raise TypeError(
                "A custom activation must be a pair of callables (function, derivative). "
                f"Received: ({function!r}, {derivative!r})"
            )
        self.function = function
        self.derivative_function = derivative
        self.name = getattr(function, "__name__", "custom")

    def forward(self, z: Any, out: Any = None) -> Any:
        return xp.asarray(self.function(z), dtype=z.dtype)

    def derivative(self, z: Any, y: Any) -> Any:
        return xp.asarray(self.derivative_function(z), dtype=z.dtype)

    def backward(self, z: Any, y: Any, dy: Any, out: Any = None) -> Any:
        return xp.multiply(dy, self.derivative(z, y), out=out)

    def get_config(self) -> dict[str, Any]:
        return {"function": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Activation:
        name = config.get("function")
        pair = custom_object(name) if isinstance(name, str) else None
        if isinstance(pair, tuple) and len(pair) == 2:
            return cls(*pair)
        raise ValueError(
            f"The custom activation {name!r} was given as Python functions, which are never "
            "stored in or executed from a file; pass them when loading: "
            f"load_model(path, custom_objects={{{name!r}: (function, derivative)}})."
        )


def get(identifier: Any, argument: str = "activation") -> Activation:
    """Resolve ``identifier`` to an :class:`Activation`.

    Accepts ``None`` (linear), a name (``"relu"``), a config dict, an ``Activation`` instance
    or class, or a ``(function, derivative)`` pair.
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, tuple):
        if len(identifier) != 2:
            raise ValueError(
                "A custom activation must be a (function, derivative) pair. "
                f"Received a tuple of length {len(identifier)}: activation={identifier!r}"
            )
        return CustomActivation(*identifier)
    if callable(identifier) and not isinstance(identifier, (type, Activation)):
        raise TypeError(
            "A custom activation needs its derivative for back-propagation: pass "
            f"activation=(function, derivative). Received: activation={identifier!r}"
        )
    return ACTIVATIONS.get(identifier, argument)


def serialize(activation: Activation) -> dict[str, Any]:
    """The config dict of ``activation``, inverse of :func:`get`."""
    return ACTIVATIONS.serialize(activation)


def names() -> list[str]:
    """Every registered activation name and alias."""
    return ACTIVATIONS.names()
