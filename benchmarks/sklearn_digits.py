"""DenseClassifier against scikit-learn's MLPClassifier on load_digits, same hyper-parameters.

One hidden layer of 100 relu units, Adam at 0.001, batch 200, 200 epochs (MLPClassifier's
defaults, with its early stopping on tolerance disabled so both run all 200 epochs), inputs
scaled to [0, 1], a stratified 25% test split. Reports the median fit time of 3 runs, the
test accuracy of each, and the speed ratio.

    python benchmarks/sklearn_digits.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from layerwise.sklearn import DenseClassifier


def main() -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25,
                                                        random_state=0, stratify=y)
    makers = {
        "layerwise DenseClassifier": lambda seed: DenseClassifier(
            hidden_layer_sizes=(100,), batch_size=200, epochs=200, learning_rate=0.001,
            random_state=seed),
        "scikit-learn MLPClassifier": lambda seed: MLPClassifier(
            hidden_layer_sizes=(100,), batch_size=200, max_iter=200, learning_rate_init=0.001,
            n_iter_no_change=200, tol=0.0, random_state=seed),
    }
    results = {}
    for name, make in makers.items():
        times, scores = [], []
        for seed in range(3):
            model = make(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                model.fit(x_train, y_train)
                times.append(time.perf_counter() - start)
            scores.append(model.score(x_test, y_test))
        results[name] = (float(np.median(times)), float(np.mean(scores)))
    print("| estimator | fit time (s, median of 3) | test accuracy (mean of 3) |")
    print("|---|---|---|")
    for name, (seconds, accuracy) in results.items():
        print(f"| {name} | {seconds:.2f} | {accuracy:.4f} |")
    ours, theirs = results["layerwise DenseClassifier"], results["scikit-learn MLPClassifier"]
    print(f"\nDenseClassifier trains {theirs[0] / ours[0]:.1f}x faster, accuracy "
          f"{ours[1]:.4f} vs {theirs[1]:.4f}")


if __name__ == "__main__":
    main()
