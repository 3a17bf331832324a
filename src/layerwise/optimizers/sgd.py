"""Gradient descent, with the seed's momentum and Nesterov's variant."""

from __future__ import annotations

from typing import Any

from ..backend import xp
from .base import Optimizer
from .chunked import BLAS_CHUNK, CHUNK, chunks, vector_kernels
from .registry import OPTIMIZERS


@OPTIMIZERS.register("sgd", "gradient_descent")
class SGD(Optimizer):
    """Gradient descent θ <- θ - η∇L, optionally with momentum.

    With ``momentum`` λ > 0 (the seed's formula, v⁰ = 0):
    v <- λv - η∇L; θ <- θ + v.
    With ``nesterov=True`` the step looks ahead along the velocity: θ <- θ + λv - η∇L.
    With a constant η both equal PyTorch's ``torch.optim.SGD`` (whose buffer b = -v/η).

    Whether it is batch, stochastic or mini-batch gradient descent is set by ``fit``'s
    ``batch_size``, not here.
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("`nesterov=True` needs a momentum > 0. Received: momentum=0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slot_names = ("velocity",) if self.momentum else ()

    def update(self, param: Any, grad: Any, lr: float, slots: dict[str, Any]) -> None:
        p, g = param.reshape(-1), grad.reshape(-1)
        v = slots["velocity"].reshape(-1) if self.momentum else p
        lib = vector_kernels(p, g, v)
        if lib is not None:  # the same steps as MKL vector calls, with no scratch array
            for part in chunks(p.shape[0], BLAS_CHUNK):
                pp, gg = p[part], g[part]
                if not self.momentum:
                    lib.axpy(-lr, gg, pp)
                    continue
                lib.axpby(-lr, gg, self.momentum, v[part])
                if self.nesterov:
                    lib.axpy(self.momentum, v[part], pp)
                    lib.axpy(-lr, gg, pp)
                else:
                    lib.axpy(1.0, v[part], pp)
            return
        (work,) = self.scratch(min(p.shape[0], CHUNK), p.dtype)
        for part in chunks(p.shape[0]):
            pp, gg = p[part], g[part]
            step = xp.multiply(gg, lr, out=work[: pp.shape[0]])  # η∇L
            if not self.momentum:  # θ <- θ - η∇L
                pp -= step
                continue
            vv = v[part]
            vv *= self.momentum  # v <- λv - η∇L
            vv -= step
            if self.nesterov:  # θ <- θ + λv - η∇L
                pp -= step
                pp += xp.multiply(vv, self.momentum, out=step)
            else:  # θ <- θ + v
                pp += vv

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@OPTIMIZERS.register("momentum")
class Momentum(SGD):
    """``SGD`` with the seed's momentum on by default (λ = 0.9); the string ``'momentum'``."""

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.9, nesterov: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
