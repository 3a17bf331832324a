"""Points no straight line separates (seed 001, lines P1 and P2).

"Crosses" lie above the line P1 and below the line P2; everything else is a "circle". A
single neuron (logistic regression) draws one straight line and fails; a network with two
hidden units draws two lines (one each) and its output unit combines them. Writes
nonlinear_region.png with the learned region and the two hidden units' lines.

Run: python examples/nonlinear_region.py [OUT_DIR]
"""

import sys
from pathlib import Path

import layerwise as lw
from layerwise.datasets import load_p1p2
from layerwise.layers import Dense


def train(hidden, data):
    layers = [Dense(hidden, activation="sigmoid", input_dim=2)] if hidden else []
    model = lw.Sequential([*layers, Dense(1, activation="sigmoid", input_dim=2 if not hidden
                                          else None)])
    model.compile(optimizer=lw.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, batch_size=32, epochs=300, verbose=0)
    return model, model.evaluate(data.x_test, data.y_test, verbose=0)[1]


def hidden_lines(model):
    """Each hidden unit's boundary w1·x1 + w2·x2 + b = 0 as (slope, intercept)."""
    kernel, bias = model.layers[0].get_weights()
    return [(-kernel[0, j] / kernel[1, j], -bias[j] / kernel[1, j]) for j in range(2)]


def main(out_dir="examples/out"):
    lw.utils.set_random_seed(1)
    data = load_p1p2(n=1000)
    line, line_accuracy = train(0, data)
    network, accuracy = train(2, data)
    print(f"one neuron (a straight line): test accuracy {line_accuracy:.3f}")
    print(f"2 hidden units + output:      test accuracy {accuracy:.3f}")
    for i, (slope, intercept) in enumerate(hidden_lines(network), start=1):
        print(f"hidden unit {i}: x2 = {slope:.2f}·x1 + {intercept:.2f}")
    print(f"(the true lines: P1 x2 = {lw.datasets.P1[0]}·x1 + {lw.datasets.P1[1]}, "
          f"P2 x2 = {lw.datasets.P2[0]}·x1 + {lw.datasets.P2[1]})")
    try:
        from layerwise import plot

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot.decision_boundary(network, data.x_test, data.y_test, path=out /
                               "nonlinear_region.png", lines=hidden_lines(network),
                               title=f"2 hidden units: accuracy {accuracy:.2f}")
        plot.decision_boundary(line, data.x_test, data.y_test, path=out / "one_line.png",
                               title=f"one neuron: accuracy {line_accuracy:.2f}")
    except ImportError as exc:
        print(f"no plot: {exc}")
    return {"line_accuracy": line_accuracy, "accuracy": accuracy,
            "lines": hidden_lines(network)}


if __name__ == "__main__":
    main(*sys.argv[1:])
