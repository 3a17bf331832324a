"""``python -m layerwise train``: train the seed's digit network and report test accuracy.

The seed's handwriting network (input-500-500-10, softmax output, categorical
cross-entropy, batch 100, 20 epochs), here with ReLU hidden layers, on scikit-learn's bundled
8x8 real digit images (1,797 images, a fixed 25% test split).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _load_digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("The digits data set comes with scikit-learn: pip install 'layerwise[data]'")
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.75 * len(x))
    train, test = order[:split], order[split:]
    return x[train], y[train], x[test], y[test]


def train(args: argparse.Namespace) -> float:
    import layerwise as lw
    from layerwise.layers import Dense

    lw.utils.set_random_seed(args.seed)
    x_train, y_train, x_test, y_test = _load_digits(args.seed)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8 pixels")
    model = lw.Sequential()
    model.add(Dense(input_dim=x_train.shape[1], units=500, activation="relu"))
    model.add(Dense(units=500, activation="relu"))
    model.add(Dense(units=10, activation="softmax"))
    model.compile(loss="categorical_crossentropy",
                  optimizer=lw.optimizers.SGD(learning_rate=args.lr, momentum=0.9),
                  metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    model.fit(x_train, lw.utils.to_categorical(y_train, 10), batch_size=args.batch_size,
              epochs=args.epochs, verbose=2)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, lw.utils.to_categorical(y_test, 10), verbose=0)
    print(f"trained in {seconds:.1f} s; test loss {loss:.4f}, test accuracy {accuracy:.4f}")
    return accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layerwise", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="train the seed's digit network, print accuracy")
    run.add_argument("--epochs", type=int, default=20)
    run.add_argument("--batch-size", type=int, default=100)
    run.add_argument("--lr", type=float, default=0.05)
    run.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
