"""Binary classification with a sigmoid output: malignant or benign breast tumours.

30 measured features per tumour, standardised by a Normalization layer, one hidden relu
layer, and one sigmoid output unit trained with binary cross-entropy (computed from the
logit). Writes breast_cancer.png (training curves).

Run: python examples/breast_cancer.py [OUT_DIR]
"""

import sys
from pathlib import Path

import layerwise as lw
from layerwise.datasets import load_breast_cancer
from layerwise.layers import Dense, Normalization


def main(out_dir="examples/out"):
    lw.utils.set_random_seed(0)
    data = load_breast_cancer()
    norm = Normalization(input_dim=data.n_features)
    norm.adapt(data.x_train)
    model = lw.Sequential([norm, Dense(16, activation="relu"), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(data.x_train, data.y_train, batch_size=32, epochs=60,
                        validation_split=0.15, verbose=0,
                        callbacks=[lw.callbacks.EarlyStopping(patience=10,
                                                              restore_best_weights=True)])
    loss, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    print(f"{len(history.epoch)} epochs; test loss {loss:.4f}, test accuracy {accuracy:.4f}")
    try:
        from layerwise import plot

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        plot.history(history, path=Path(out_dir) / "breast_cancer.png")
    except ImportError as exc:
        print(f"no plot: {exc}")
    return {"accuracy": accuracy, "loss": loss}


if __name__ == "__main__":
    main(*sys.argv[1:])
