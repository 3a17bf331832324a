"""Adam (momentum + RMSProp, with bias correction) and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math
from typing import Any

from .. import blas
from ..backend import xp
from .base import MomentOptimizer
from .chunked import BLAS_CHUNK, CHUNK, chunks, vector_kernels
from .registry import OPTIMIZERS


@OPTIMIZERS.register("adam")
class Adam(MomentOptimizer):
    """Adam (Kingma & Ba, 2015) with PyTorch's update rule. At step t = 1, 2, ...:

    m <- β₁ m + (1 - β₁) g          (momentum: running mean of gradients)
    v <- β₂ v + (1 - β₂) g²         (RMSProp: running mean of squared gradients)
    θ <- θ - η/(1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)

    The factors 1/(1 - βᵗ) correct the bias of m and v towards their zero start. With
    ``amsgrad=True``, v is replaced by its running maximum, so the step never grows.

    ``epsilon_style="keras"`` adds ε to √v before the bias correction, as Keras, TensorFlow
    and scikit-learn's MLP do: θ <- θ - η√(1 - β₂ᵗ)/(1 - β₁ᵗ) · m / (√v + ε), which is the
    rule above with ε/√(1 - β₂ᵗ) in place of ε.
    """

    nonnegative_slots = ("v", "v_max")
    decays_itself = True  # θ <- θ (1 - η λ) inside the fused pass below

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        amsgrad: bool = False,
        epsilon_style: str = "pytorch",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.amsgrad = bool(amsgrad)
        if epsilon_style not in ("pytorch", "keras"):
            raise ValueError("`epsilon_style` must be 'pytorch' or 'keras'. Received: "
                             f"epsilon_style={epsilon_style!r}")
        self.epsilon_style = epsilon_style
        self.slot_names = ("m", "v", "v_max") if amsgrad else ("m", "v")

    def update(self, param: Any, grad: Any, lr: float, slots: dict[str, Any]) -> None:
        t = self.iterations + 1
        step = lr / (1.0 - self.beta_1**t)
        scale = 1.0 / math.sqrt(1.0 - self.beta_2**t)
        # ε as added to √v̂ (PyTorch), or to √v (Keras: the same as ε·scale added to √v̂)
        eps = self.epsilon * scale if self.epsilon_style == "keras" else self.epsilon
        decay = 1.0 - lr * self.weight_decay
        p, g = param.reshape(-1), grad.reshape(-1)
        m, v = slots["m"].reshape(-1), slots["v"].reshape(-1)
        v_max = slots["v_max"].reshape(-1) if self.amsgrad else v
        lib = vector_kernels(p, g, m, v, v_max)
        if lib is not None:
            self._update_blas(lib, p, g, m, v, v_max, step, scale, decay, eps)
            return
        (work,) = self.scratch(min(p.shape[0], CHUNK), p.dtype)
        for part in chunks(p.shape[0]):
            pp, gg, mm, vv = p[part], g[part], m[part], v[part]
            w = xp.multiply(gg, gg, out=work[: pp.shape[0]])
            mm -= gg  # m <- β₁ m + (1 - β₁) g, as g + β₁ (m - g), with no temporary
            mm *= self.beta_1
            mm += gg
            # v <- β₂ v + (1 - β₂) g², with 1 - β₂ rounded once as PyTorch does (1 - 0.999f
            # in float32 is 1.3e-5 away from 0.001f)
            w *= 1.0 - self.beta_2
            vv *= self.beta_2
            vv += w
            if self.amsgrad:
                vv = xp.maximum(v_max[part], vv, out=v_max[part])
            # θ <- θ - m / ((√v / √(1 - β₂ᵗ) + ε) / step): the step folded into the divisor
            xp.sqrt(vv, out=w)
            w *= scale / step
            w += eps / step
            if decay != 1.0:
                pp *= decay
            pp -= xp.divide(mm, w, out=w)

    def _update_blas(self, lib: blas.MKL, p: Any, g: Any, m: Any, v: Any, v_max: Any,
                     step: float, scale: float, decay: float, eps: float) -> None:
        """The same update as six multi-threaded MKL vector calls per chunk."""
        b1, b2 = self.beta_1, self.beta_2
        (work,) = self.scratch(min(p.shape[0], BLAS_CHUNK), p.dtype)
        for part in chunks(p.shape[0], BLAS_CHUNK):
            pp, gg, mm, vv, w = p[part], g[part], m[part], v[part], work[: part.stop - part.start]
            lib.axpby(1.0 - b1, gg, b1, mm)  # m <- β₁ m + (1 - β₁) g
            lib.sqr(gg, w)
            lib.axpby(1.0 - b2, w, b2, vv)  # v <- β₂ v + (1 - β₂) g²
            if self.amsgrad:
                vv = v_max[part]
                lib.fmax(vv, v[part], vv)
            lib.sqrt(vv, w)
            # w <- m / (√v / √(1 - β₂ᵗ) + ε) · η/(1 - β₁ᵗ), the step folded into the divisor
            lib.linear_frac(mm, w, 1.0, 0.0, scale / step, eps / step, w)
            lib.axpby(-1.0, w, decay, pp)  # θ <- (1 - ηλ) θ - w

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "amsgrad": self.amsgrad}
        if self.epsilon_style != "pytorch":
            config["epsilon_style"] = self.epsilon_style
        return config


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's ``AdamW``:

    θ <- θ (1 - η λ), then the Adam step. The decay acts on the weights directly instead of
    passing through the adaptive denominator, as an L2 penalty in the loss would.
    """

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.01,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay}")
        self.weight_decay = float(weight_decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight_decay": self.weight_decay}
