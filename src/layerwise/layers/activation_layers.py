"""Activation layers: an activation as a layer of its own, and the parametric activations.

``Activation("tanh")`` applies any registered activation (or a ``(function, derivative)``
pair). ``LeakyReLU``, ``ELU`` and ``Softmax`` fix a hyper-parameter; ``PReLU`` learns its
slope by back-propagation and ``RReLU`` draws it at random while training.
"""

from __future__ import annotations

from typing import Any

from .. import activations, initializers
from ..backend import xp
from ..utils import make_rng, noise_rng
from .base import LAYERS, Layer


@LAYERS.register("Activation")
class Activation(Layer):
    """Applies an activation element-wise (softmax: row-wise); no parameters.

    Args:
        activation: a name (``"relu"``), an ``activations.Activation`` object or a
            ``(function, derivative)`` pair.
    """

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x: Any, training: bool = False) -> Any:
        self._z = x
        self._y = self.activation.forward(x)
        return self._y

    def backward(self, dy: Any) -> Any:
        return self.activation.backward(self._z, self._y, dy)

    def backward_logits(self, dz: Any) -> Any:
        """Backward from dL/d(input) itself, used with a fused loss."""
        return dz

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


@LAYERS.register("LeakyReLU")
class LeakyReLU(Activation):
    """y = x for x > 0 else negative_slope·x (default 0.01, as PyTorch)."""

    def __init__(self, negative_slope: float = 0.01, **kwargs: Any) -> None:
        if "alpha" in kwargs:  # Keras 2's name, still common in tutorials
            import warnings

            warnings.warn("LeakyReLU(alpha=...) is Keras 2's spelling; use negative_slope=.",
                          DeprecationWarning, stacklevel=2)
            negative_slope = kwargs.pop("alpha")
        super().__init__(activations.LeakyReLU(negative_slope), **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = Layer.get_config(self)
        return {**config, "negative_slope": self.activation.negative_slope}


@LAYERS.register("ELU")
class ELU(Activation):
    """y = x for x > 0 else alpha·(e^x - 1)."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(activations.ELU(alpha), **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), "alpha": self.activation.alpha}


@LAYERS.register("Softmax")
class Softmax(Activation):
    """Softmax over the features of each sample, sᵢ = e^(zᵢ) / Σⱼ e^(zⱼ); a valid output layer
    before cross-entropy."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(activations.Softmax(), **kwargs)

    def get_config(self) -> dict[str, Any]:
        return Layer.get_config(self)


@LAYERS.register("PReLU")
class PReLU(Layer):
    """Parametric ReLU: y = x for x > 0 else α·x, with one learned α per unit.

    dL/dα_j = Σ_batch dL/dy_j · x_j over the samples where x_j <= 0; dL/dx = dL/dy · (1 or α).
    α starts at 0.25, as PyTorch's ``nn.PReLU``.

    Args:
        alpha_initializer: initialiser of α (default ``constant(0.25)``).
    """

    def __init__(self, alpha_initializer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(
            initializers.Constant(0.25) if alpha_initializer is None else alpha_initializer,
            "alpha_initializer",
        )

    def build(self, input_dim: int) -> None:
        super().build(input_dim)
        self.add_weight("alpha", (self.input_dim,), self.alpha_initializer)

    def forward(self, x: Any, training: bool = False) -> Any:
        self._z = x
        self._positive = x > 0
        return xp.where(self._positive, x, x * self.params["alpha"])

    def backward(self, dy: Any) -> Any:
        xp.sum(xp.where(self._positive, 0.0, dy * self._z), axis=0, out=self.grads["alpha"])
        return xp.where(self._positive, dy, dy * self.params["alpha"])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
        }


@LAYERS.register("RReLU")
class RReLU(Layer):
    """Randomised leaky ReLU (PyTorch's semantics): y = x for x >= 0 else a·x.

    In training a ~ U(lower, upper) is drawn afresh for every element of every batch; in
    inference a = (lower + upper) / 2.

    Args:
        lower: the lower end of the random slope's range (default 1/8).
        upper: the upper end of the random slope's range (default 1/3).
        seed: seed of the slope draws; the global generator when None.
    """

    def __init__(
        self, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0, seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= lower <= upper:
            raise ValueError(
                f"`lower` and `upper` must satisfy 0 <= lower <= upper. Received: lower={lower}, "
                f"upper={upper}"
            )
        self.lower, self.upper, self.seed = float(lower), float(upper), seed
        self._rng = None if seed is None else make_rng(seed)

    def forward(self, x: Any, training: bool = False) -> Any:
        self._z = x
        if training:
            draws = noise_rng(self._rng).uniform(self.lower, self.upper, size=x.shape)
            self._slope = xp.where(x >= 0, 1.0, xp.asarray(draws, dtype=x.dtype))
        else:
            self._slope = xp.where(x >= 0, 1.0, (self.lower + self.upper) / 2.0).astype(x.dtype)
        return x * self._slope

    def backward(self, dy: Any) -> Any:
        return dy * self._slope

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lower": self.lower, "upper": self.upper,
                "seed": self.seed}
