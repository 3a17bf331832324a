"""``Dropout``: randomly silence units while training (SPEC §7)."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from ..utils import make_rng, noise_rng
from .base import LAYERS, Layer


@LAYERS.register("Dropout")
class Dropout(Layer):
    """Drops each input unit with probability ``rate`` at every training step.

    Inverted dropout: in training y = x ⊙ m / (1 - p) with m ~ Bernoulli(1 - p) drawn afresh
    for every batch, and dL/dx = dL/dy ⊙ m / (1 - p); in inference (``predict``,
    ``evaluate``) y = x. The seed's form instead leaves training outputs unscaled and multiplies
    by (1 - p) at test time; the two differ only by the constant factor 1/(1 - p) in both
    phases, so a network trained one way equals the other with the next layer's weights scaled
    by (1 - p): the expected training output equals the inference output in both forms.
    Placed first (with ``input_dim``) it drops input features.

    Args:
        rate: the probability p of dropping a unit, in [0, 1).
        seed: seed of the masks; the global generator when None.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"`rate` must be a number in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = None if seed is None else make_rng(seed)
        self._mask = None

    def forward(self, x: Any, training: bool = False) -> Any:
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = noise_rng(self._rng).random(x.shape) >= self.rate
        self._mask = xp.asarray(keep, dtype=x.dtype) * (1.0 / (1.0 - self.rate))
        return x * self._mask

    def backward(self, dy: Any) -> Any:
        return dy if self._mask is None else dy * self._mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
