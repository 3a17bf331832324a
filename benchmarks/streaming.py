"""Training on data bigger than memory: config C for one epoch on a 2,000,000-row uint8 memmap.

Writes a 2,000,000 x 784 uint8 file (1.5 GB) of random "images" and labels, then, each in a
fresh process so that peak resident memory (ru_maxrss) is its own:

- streamed: ``model.fit(memmap, y, batch_size=128, epochs=1, preprocess=to_float)``;
- in memory: the same model on 100,000 rows already converted to float32 in memory.

Prints samples per second of both, their ratio, and the streamed run's peak resident memory.

    python benchmarks/streaming.py [--rows 2000000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from run import peak_rss_mb  # benchmarks/ is on the path when this file runs

FEATURES = 784


def to_float(batch: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], one batch at a time."""
    return batch.astype(np.float32) * np.float32(1 / 255)


def build() -> object:
    import layerwise as lw
    from layerwise.layers import Dense

    lw.utils.set_random_seed(0)
    model = lw.Sequential([Dense(512, activation="relu", input_dim=FEATURES),
                           Dense(512, activation="relu"), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def child(mode: str, path: str, rows: int) -> None:
    labels = np.load(path + ".labels.npy", mmap_mode="r")
    model = build()
    if mode == "streamed":
        x = np.memmap(path, dtype=np.uint8, mode="r", shape=(rows, FEATURES))
        y = np.asarray(labels)
        model.fit(x[:4096], y[:4096], batch_size=128, epochs=1, verbose=0,
                  preprocess=to_float)  # warm-up
        start = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0, preprocess=to_float)
        n = rows
    else:
        n = min(rows, 100_000)
        x = to_float(np.fromfile(path, dtype=np.uint8, count=n * FEATURES).reshape(n, FEATURES))
        y = np.asarray(labels[:n])
        model.fit(x[:4096], y[:4096], batch_size=128, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    print(json.dumps({"samples_per_s": n / seconds, "peak_mb": peak, "seconds": seconds}))


def make_file(path: str, rows: int) -> None:
    rng = np.random.default_rng(0)
    out = np.memmap(path, dtype=np.uint8, mode="w+", shape=(rows, FEATURES))
    for start in range(0, rows, 100_000):
        stop = min(start + 100_000, rows)
        out[start:stop] = rng.integers(0, 256, size=(stop - start, FEATURES), dtype=np.uint8)
    out.flush()
    del out
    np.save(path + ".labels.npy", rng.integers(0, 10, rows).astype(np.int64))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path, args.rows)
        return 0
    path = os.path.join(args.dir, f"layerwise_stream_{args.rows}.u8")
    if not os.path.exists(path) or os.path.getsize(path) != args.rows * FEATURES:
        print(f"writing {args.rows} x {FEATURES} uint8 to {path} "
              f"({args.rows * FEATURES / 1e9:.2f} GB)", file=sys.stderr)
        make_file(path, args.rows)
    results = {}
    for mode in ("in_memory", "streamed"):
        run = subprocess.run([sys.executable, __file__, "--child", mode, "--path", path,
                              "--rows", str(args.rows)], capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    streamed, memory = results["streamed"], results["in_memory"]
    print(f"| run | rows | samples/s | peak RSS (MB) |\n|---|---|---|---|\n"
          f"| in memory (float32) | {min(args.rows, 100_000):,} | "
          f"{memory['samples_per_s']:,.0f} | {memory['peak_mb']:.0f} |\n"
          f"| streamed uint8 memmap + preprocess | {args.rows:,} | "
          f"{streamed['samples_per_s']:,.0f} | {streamed['peak_mb']:.0f} |\n\n"
          f"streamed / in-memory throughput: "
          f"{streamed['samples_per_s'] / memory['samples_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
