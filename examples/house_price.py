"""House price from the size of the home (seed 001): one neuron, then a small network.

The seed predicts a price from a floor area with a single neuron, then stacks neurons into a
network. Here the size is RM, the average number of rooms per dwelling in each Boston tract
(the bundled real house-price data has no floor area), and the price is MEDV, the median home
value in $1000s. Writes house_price.png: the data and both fitted curves.

Run: python examples/house_price.py [OUT_DIR]
"""

import sys
from pathlib import Path

import numpy as np

import layerwise as lw
from layerwise.datasets import load_boston_housing
from layerwise.layers import Dense, Normalization
from layerwise.metrics import r2_score


def fit(hidden, data, epochs, optimizer):
    norm = Normalization(input_dim=1)
    norm.adapt(data.x_train)
    layers = [norm] + [Dense(units, activation="relu") for units in hidden] + [Dense(1)]
    model = lw.Sequential(layers)
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    model.fit(data.x_train, data.y_train, batch_size=32, epochs=epochs, verbose=0)
    return model, r2_score(data.y_test, model.predict(data.x_test))


def main(out_dir="examples/out"):
    lw.utils.set_random_seed(0)
    data = load_boston_housing(features=["RM"])
    # price = w * rooms + b: linear regression by gradient descent
    neuron, r2_neuron = fit([], data, epochs=100, optimizer=lw.optimizers.SGD(0.05))
    network, r2_network = fit([16, 16], data, epochs=150, optimizer=lw.optimizers.Adam(0.01))
    kernel, bias = neuron.layers[1].get_weights()
    print(f"one neuron:      price = {kernel[0, 0]:.2f} * (standardised rooms) + {bias[0]:.2f};"
          f" test R² {r2_neuron:.3f}")
    print(f"1-16-16-1 relu:  test R² {r2_network:.3f}")
    try:
        from layerwise.plot import _pyplot

        plt = _pyplot()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        grid = np.linspace(data.x_train.min(), data.x_train.max(), 200)[:, None]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(data.x_train[:, 0], data.y_train, s=8, alpha=0.4, label="training tracts")
        ax.scatter(data.x_test[:, 0], data.y_test, s=8, alpha=0.6, label="test tracts")
        ax.plot(grid, neuron.predict(grid), "k-", label=f"one neuron (R² {r2_neuron:.2f})")
        ax.plot(grid, network.predict(grid), "r-", label=f"small network (R² {r2_network:.2f})")
        ax.set_xlabel("average rooms per dwelling (RM)")
        ax.set_ylabel("median value, $1000s (MEDV)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "house_price.png", dpi=110)
        plt.close(fig)
    except ImportError as exc:
        print(f"no plot: {exc}")
    return {"r2_neuron": r2_neuron, "r2_network": r2_network}


if __name__ == "__main__":
    main(*sys.argv[1:])
