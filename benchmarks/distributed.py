"""Measurements behind docs/distributed.md: allreduce times, step times, epoch times.

Run once per world size; rank 0 prints the figures:

    mpiexec -n 1 python benchmarks/distributed.py
    mpiexec -n 2 python benchmarks/distributed.py

- the allreduce of each config's gradient buffer (+2 for the loss and count), median of 30;
- one training step of configs C and D at their global batch (each rank computes its part);
- a training epoch of the main job (784-500-500-10 on the 4,000 MNIST training images,
  batch 100), median of 3 after one warm-up.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from mpi4py import MPI

import layerwise as lw
from layerwise.callbacks import Callback
from layerwise.datasets import load_mnist
from layerwise.layers import Dense, Rescaling

CONFIGS = {"main job": ((784, 500, 500, 10), 100), "C": ((784, 512, 512, 10), 128),
           "D": ((1024, 4096, 4096, 10), 512)}


def n_params(dims):
    return sum(a * b + b for a, b in itertools.pairwise(dims))


def allreduce_ms(comm, size):
    buffer = np.ones(size + 2, dtype=np.float32)
    times = []
    for _ in range(33):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[3:]))


class _EpochTimes(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = [*getattr(self, "times", []), time.perf_counter() - self.start]


def step_ms(dims, batch, steps=20):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, dims[0])).astype("float32")
    y = rng.integers(0, dims[-1], batch * steps)
    model = lw.Sequential([Dense(dims[1], activation="relu", input_dim=dims[0]),
                           *[Dense(d, activation="relu") for d in dims[2:-1]],
                           Dense(dims[-1], activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    timer = _EpochTimes()
    model.fit(x, y, batch_size=batch, epochs=3, verbose=0, callbacks=[timer])
    return 1000 * min(timer.times[1:]) / steps


def main() -> None:
    ctx = lw.distributed.init(seed=0)
    rows = []
    for name, (dims, batch) in CONFIGS.items():
        size = n_params(dims)
        reduce = allreduce_ms(ctx.comm, size) if ctx.size > 1 else 0.0
        steps = 6 if name == "D" else 20
        rows.append((name, size, reduce, step_ms(dims, batch, steps)))
    data = load_mnist()
    model = lw.Sequential([Rescaling(1 / 255, input_dim=784), Dense(500, activation="relu"),
                           Dense(500, activation="relu"), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    timer = _EpochTimes()
    model.fit(data.x_train, data.y_train, batch_size=100, epochs=4, verbose=0,
              callbacks=[timer])
    if ctx.is_chief:
        print(f"{ctx.size} rank(s), {lw.blas.blas_name()} BLAS, one BLAS thread per rank")
        print("| config | parameters | allreduce (ms) | training step (ms) |")
        print("|---|---|---|---|")
        for name, size, reduce, step in rows:
            print(f"| {name} | {size:,} | {reduce:.2f} | {step:.2f} |")
        print(f"main job epoch: {1000 * float(np.median(timer.times[1:])):.0f} ms "
              f"(median of {len(timer.times) - 1})")


if __name__ == "__main__":
    main()
