"""Vanishing gradients (seed 002): the same deep network, once with sigmoid, once with relu.

Ten Dense layers on the 8x8 digits, with one initialiser (Glorot) for both, so that only the
activation differs, as the seeds compare them. The sigmoid's derivative is at most 1/4, so
the gradient shrinks at every layer on its way back and the first layers barely learn; relu
passes it back at full size where it is active. A second comparison shows what a matched
initialiser adds (seed 003): relu with He initialisation, made for it.

GradientMonitor records each layer's gradient norm. Writes vanishing_sigmoid.png,
vanishing_relu.png and vanishing_relu_he.png, and prints the last/first layer gradient ratio
and test accuracy of each.

Run: python examples/vanishing_gradients.py [OUT_DIR]
"""

import sys
import warnings
from pathlib import Path

import layerwise as lw
from layerwise.datasets import load_digits
from layerwise.layers import Dense, Rescaling

#: the main comparison: one initialiser, two activations; then relu with its own initialiser
RUNS = (("sigmoid", "sigmoid", "glorot_uniform"), ("relu", "relu", "glorot_uniform"),
        ("relu_he", "relu", "he_normal"))


def deep(activation, init, depth=10):
    layers = [Rescaling(1 / 16, input_dim=64)]
    layers += [Dense(64, activation=activation, kernel_initializer=init) for _ in range(depth)]
    model = lw.Sequential([*layers, Dense(10, activation="softmax")])
    model.compile(optimizer=lw.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(out_dir="examples/out", epochs=10):
    data = load_digits()
    results = {}
    for name, activation, init in RUNS:
        lw.utils.set_random_seed(0)  # the same initial draws for each network
        model = deep(activation, init)
        monitor = lw.callbacks.GradientMonitor()
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            model.fit(data.x_train, data.y_train, batch_size=32, epochs=epochs, verbose=0,
                      callbacks=[monitor])
        dense = [layer.name for layer in model.layers if layer.params]
        first = monitor.record[f"grad_norm/{dense[0]}"][-1]
        last = monitor.record[f"grad_norm/{dense[-1]}"][-1]
        accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)[1]
        results[name] = {"ratio": last / first, "accuracy": accuracy, "initializer": init,
                         "warnings": monitor.messages}
        print(f"{activation:8s} + {init:14s}: last/first layer gradient norm "
              f"{last / first:12.1f}, test accuracy {accuracy:.3f}")
        try:
            from layerwise import plot

            Path(out_dir).mkdir(parents=True, exist_ok=True)
            plot.gradient_flow(monitor, path=Path(out_dir) / f"vanishing_{name}.png")
        except ImportError as exc:
            print(f"no plot: {exc}")
    return results


if __name__ == "__main__":
    main(*sys.argv[1:])
