"""How the main job's default training was chosen: cross-validation on the training images only.

The main job (``layerwise train``) trains 784-500-500-10 on the 4,000 training images of the
bundled MNIST subset and reports accuracy on the fixed 1,000-image test split. Its defaults
(epochs, early-stopping patience, validation fraction, L2, dropout, learning rate) are chosen
here by 5-fold cross-validation on the 4,000 training images: the test split is never read
while choosing. Each candidate is trained exactly as ``layerwise train`` trains (the same
``cli._build``; early stopping on a validation split carved from the training folds) and
scored on the held-out fold. Afterwards the chosen setting and scikit-learn's
``MLPClassifier((500, 500))`` (its defaults: Adam 1e-3, batch 200, early stopping off) are
trained once on all 4,000 images and scored on the test split, with their training times.

    python benchmarks/main_job_cv.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np

import layerwise as lw
from layerwise import cli, datasets


def train(data: datasets.Dataset, x: np.ndarray, y: np.ndarray, setting: dict, seed: int
          ) -> tuple[lw.Sequential, float, int]:
    lw.utils.set_random_seed(seed)
    part = datasets.Dataset(data.name, x, y, x[:1], y[:1], task="multiclass", description="",
                            source="", license="", class_names=data.class_names,
                            extra=data.extra)
    model, loss, metrics = cli._build(part, "multiclass", [500, 500], "relu",
                                      setting["dropout"], setting["l2"])
    model.compile(optimizer=lw.optimizers.Adam(learning_rate=setting["lr"]), loss=loss,
                  metrics=metrics)
    stop = lw.callbacks.EarlyStopping("val_loss", patience=setting["patience"],
                                      restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=100, epochs=setting["epochs"], verbose=0,
                        validation_split=setting["validation_split"], callbacks=[stop])
    return model, time.perf_counter() - start, len(history.epoch)


def accuracy(model: lw.Sequential, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x).argmax(axis=1) == y).mean())


def main() -> None:
    data = datasets.load("mnist")
    x, y = data.x_train, data.y_train
    folds = np.array_split(np.random.default_rng(0).permutation(len(x)), 5)
    grid = [dict(zip(("lr", "l2", "dropout", "patience"), values), epochs=60,
                 validation_split=0.1)
            for values in itertools.product((1e-3, 3e-4), (0.0, 1e-4), (0.0, 0.2), (3, 8))]
    grid.append(dict(lr=1e-3, l2=0.0, dropout=0.0, patience=3, epochs=20,
                     validation_split=0.1))  # the old default
    print("| lr | l2 | dropout | patience | epochs | CV accuracy (5 folds) | epochs run | "
          "fit s |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for setting in grid:
        scores, times, epochs = [], [], []
        for k, held in enumerate(folds):
            rest = np.concatenate([f for j, f in enumerate(folds) if j != k])
            model, seconds, ran = train(data, x[rest], y[rest], setting, seed=k)
            scores.append(accuracy(model, x[held], y[held]))
            times.append(seconds)
            epochs.append(ran)
        mean = float(np.mean(scores))
        results.append((mean, setting))
        print(f"| {setting['lr']:g} | {setting['l2']:g} | {setting['dropout']:g} | "
              f"{setting['patience']} | {setting['epochs']} | {mean:.4f} ± "
              f"{np.std(scores):.4f} | {np.mean(epochs):.1f} | {np.mean(times):.1f} |",
              flush=True)
    best_score, best = max(results, key=lambda r: r[0])
    print(f"\nchosen by CV: {best} (CV accuracy {best_score:.4f})")

    print("\n| model | test accuracy (mean of 3 seeds) | 95% interval (seed 0) | fit s |")
    print("|---|---|---|---|")
    rows = []
    for seed in range(3):
        model, seconds, _ = train(data, x, y, best, seed)
        rows.append((accuracy(model, data.x_test, data.y_test), seconds))
    acc = float(np.mean([r[0] for r in rows]))
    low, high = cli.wilson_interval(rows[0][0], len(data.y_test))
    print(f"| layerwise (chosen) | {acc:.4f} | [{low:.3f}, {high:.3f}] | "
          f"{np.mean([r[1] for r in rows]):.1f} |", flush=True)
    from sklearn.neural_network import MLPClassifier

    rows = []
    for seed in range(3):
        clf = MLPClassifier((500, 500), random_state=seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(x / 255.0, y)
        rows.append((float(clf.score(data.x_test / 255.0, data.y_test)),
                     time.perf_counter() - start))
    acc = float(np.mean([r[0] for r in rows]))
    low, high = cli.wilson_interval(rows[0][0], len(data.y_test))
    print(f"| scikit-learn MLPClassifier((500, 500)) | {acc:.4f} | [{low:.3f}, {high:.3f}] | "
          f"{np.mean([r[1] for r in rows]):.1f} |")


if __name__ == "__main__":
    main()
