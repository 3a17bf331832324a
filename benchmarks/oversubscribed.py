"""Training under a background load: how BLAS thread counts degrade when other processes
keep the cores busy.

Config C (784-512-512-10, ReLU, softmax, Adam, batch 128) trains for a fixed wall time with
NumPy's BLAS, once on a quiet machine and once while ``--burners`` processes (default: one
per core) spin on the CPU, under three thread policies: every GEMM on all cores, on one
core, and layerwise's default (``layerwise.threads``: it measures the step rate under each
thread count and keeps the faster, probing again from time to time). Reports samples/s and
the ratio to the best fixed policy of the same scenario.

    python benchmarks/oversubscribed.py [--seconds 6] [--burners 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

os.environ.setdefault("LAYERWISE_BLAS", "numpy")

import layerwise as lw
from layerwise.callbacks import Callback
from layerwise.layers import Dense


def _burn(deadline: float) -> None:
    while time.time() < deadline:
        pass


class _StopAfter(Callback):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.samples = 0

    def on_train_batch_end(self, batch, logs=None):
        self.samples += (logs or {}).get("size", 0)
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.rate = self.samples / (time.perf_counter() - self.start)


def train_rate(seconds: float, threads: int | None) -> float:
    """Samples/s of config C over ``seconds``; ``threads`` fixes the BLAS threads (None:
    layerwise's default)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8192, 784)).astype("float32")
    y = rng.integers(0, 10, 8192)
    model = lw.Sequential([Dense(512, activation="relu", input_dim=784),
                           Dense(512, activation="relu"), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:1024], y[:1024], batch_size=128, epochs=1, verbose=0)  # warm-up
    timer = _StopAfter(seconds)
    if threads is None:
        model.fit(x, y, batch_size=128, epochs=10_000, verbose=0, callbacks=[timer])
        for rates, choice in lw.threads.last_history[0]:
            print("    measured " + ", ".join(f"{n} threads {r:.0f} steps/s"
                                          for n, r in rates.items()) + f" -> {choice}")
    else:
        with threadpool_limits(limits=threads), lw.threads.fixed(threads):
            model.fit(x, y, batch_size=128, epochs=10_000, verbose=0, callbacks=[timer])
    return timer.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--burners", type=int, default=cores)
    args = parser.parse_args()
    policies = {f"{cores} threads": cores, "1 thread": 1, "layerwise default": None}
    print(f"config C training, NumPy BLAS, {cores} cores; {args.burners} background "
          f"processes in the loaded runs; {args.seconds:g} s per figure\n")
    print("| scenario | " + " | ".join(policies) + " |")
    print("|---|" + "---|" * len(policies))
    for scenario, burners in (("quiet", 0), ("loaded", args.burners)):
        deadline = time.time() + args.seconds * (len(policies) + 1) + 5
        procs = [multiprocessing.Process(target=_burn, args=(deadline,), daemon=True)
                 for _ in range(burners)]
        for p in procs:
            p.start()
        rates = {name: train_rate(args.seconds, threads) for name, threads in policies.items()}
        for p in procs:
            p.terminate()
            p.join()
        best_fixed = max(v for k, v in rates.items() if k != "layerwise default")
        cells = [f"{v:,.0f} ({v / best_fixed:.2f})" for v in rates.values()]
        print(f"| {scenario} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
