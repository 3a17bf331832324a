"""Time of one optimizer update over config C's 670k float32 parameters: the formula as one
compiled pass (numba, ``layerwise.compiled.update_in_one_pass``) against the same formula in
NumPy chunks (``LAYERWISE_JIT=0``). Each figure is the median of 50 updates after a warm-up.

    python benchmarks/optimizer_pass.py
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from layerwise import optimizers

SIZE = 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10  # config C's parameters
CASES = {
    "SGD momentum": lambda: optimizers.SGD(0.01, momentum=0.9),
    "RMSprop": lambda: optimizers.RMSprop(0.001),
    "Adam": lambda: optimizers.Adam(0.001),
    "Nadam": lambda: optimizers.Nadam(0.001),
}


def median_ms(make: object, jit: str) -> float:
    os.environ["LAYERWISE_JIT"] = jit
    rng = np.random.default_rng(0)
    params = [rng.normal(size=SIZE).astype(np.float32)]
    grads = [rng.normal(size=SIZE).astype(np.float32)]
    optimizer = make()  # type: ignore[operator]
    optimizer.apply(params, grads)  # builds the state, compiles the pass
    times = []
    for _ in range(50):
        start = time.perf_counter()
        optimizer.apply(params, grads)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    print(f"{'optimizer':14s} {'compiled pass':>14s} {'NumPy chunks':>13s}  ratio")
    for name, make in CASES.items():
        compiled, chunks = median_ms(make, "1"), median_ms(make, "0")
        print(f"{name:14s} {compiled:11.2f} ms {chunks:10.2f} ms  {chunks / compiled:5.1f}x")


if __name__ == "__main__":
    main()
