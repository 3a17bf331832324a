"""Handwritten digit recognition (seed 002) on real 28x28 MNIST images.

The seed's network shape, 784-500-500-10 with a softmax output and cross-entropy, here with
relu hidden layers and Adam, on the 5,000-image MNIST subset. Writes mnist_history.png and
mnist_confusion.png.

Run: python examples/mnist_digits.py [OUT_DIR]
"""

import sys
from pathlib import Path

import layerwise as lw
from layerwise.datasets import load_mnist
from layerwise.layers import Dense, Rescaling


def main(out_dir="examples/out", epochs=10):
    lw.utils.set_random_seed(0)
    data = load_mnist()
    model = lw.Sequential([
        Rescaling(1 / 255, input_dim=784),
        Dense(500, activation="relu"),
        Dense(500, activation="relu"),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(data.x_train, data.y_train, batch_size=100, epochs=epochs, verbose=0,
                        validation_split=0.1,
                        callbacks=[lw.callbacks.EarlyStopping(patience=3,
                                                              restore_best_weights=True)])
    loss, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f} on {len(data.x_test)} images")
    try:
        from layerwise import plot

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot.history(history, path=out / "mnist_history.png")
        plot.confusion_matrix(data.y_test, model.predict(data.x_test).argmax(axis=1),
                              class_names=list(range(10)), path=out / "mnist_confusion.png")
    except ImportError as exc:
        print(f"no plot: {exc}")
    return {"accuracy": accuracy, "loss": loss}


if __name__ == "__main__":
    main(*sys.argv[1:])
