"""The handwriting network (seed 002), trained data-parallel on several processes with MPI.

The same script runs on every rank. After ``layerwise.distributed.init()`` the ordinary
``fit`` splits each global batch of 100 images across the ranks, and sums the gradients with
one allreduce per step. Every rank then holds the same weights. Rank 0 prints the progress
and the test accuracy, and saves the model (``docs/distributed.md`` explains it all).

Run (needs ``pip install 'layerwise[mpi,data]'``):

    mpiexec -n 2 python examples/distributed_mnist.py [--epochs 10] [--out examples/out]
"""

from __future__ import annotations

import argparse
import os
import time

import layerwise as lw
from layerwise.datasets import load_mnist
from layerwise.layers import Dense, Dropout, Rescaling


def main() -> None:
    parser = argparse.ArgumentParser(description="MNIST 784-500-500-10 on MPI ranks")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="examples/out")
    args = parser.parse_args()

    ctx = lw.distributed.init(seed=0)  # the same seed, hence the same initial weights
    data = load_mnist()  # every rank reads the data; each trains on its part of each batch
    model = lw.Sequential([
        Rescaling(1 / 255, input_dim=784),
        Dense(500, activation="relu"), Dropout(0.2),
        Dense(500, activation="relu"), Dropout(0.2),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(data.x_train, data.y_train, batch_size=100, epochs=args.epochs,
              validation_split=0.1, verbose=2,  # progress from rank 0 only
              callbacks=[lw.callbacks.EarlyStopping(patience=8, restore_best_weights=True)])
    seconds = time.perf_counter() - start
    # evaluate is collective: every rank scores its part of the test images, the sums meet
    loss, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, "distributed_mnist.safetensors"))  # written by rank 0
    if ctx.is_chief:
        print(f"{ctx.size} ranks, {seconds:.1f} s of training; test accuracy {accuracy:.4f} "
              f"(loss {loss:.4f}) on {len(data.x_test)} images")


if __name__ == "__main__":
    main()
