"""The batch-size trade-off (seed 001): time per epoch against epochs to reach an accuracy.

Batch size 1 is stochastic gradient descent (many cheap, noisy steps per epoch), the whole
training set is batch gradient descent (one exact step per epoch), mini-batches sit between.
The same 64-64-10 network learns the 8x8 digits with plain SGD at each batch size until its
accuracy on a validation split, carved from the training data, reaches the target. The test
set never steers training (seed 002): it is scored once, at the end. Writes batch_size.png
and prints a table.

Run: python examples/batch_size.py [OUT_DIR]
"""

import sys
import time
from pathlib import Path

import layerwise as lw
from layerwise.datasets import load_digits, train_test_split
from layerwise.layers import Dense, Rescaling

TARGET = 0.90


class Timer(lw.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["seconds"] = time.perf_counter() - self.start
        if logs["val_accuracy"] >= TARGET:
            self.model.stop_training = True


def main(out_dir="examples/out", max_epochs=400, learning_rate=0.05):
    data = load_digits()
    # the validation rows that decide when to stop come out of the training data
    x_train, y_train, x_val, y_val = train_test_split(data.x_train, data.y_train, 0.2, seed=0)
    n = len(x_train)
    rows = []
    for batch_size in (1, 32, 128, 512, n):
        lw.utils.set_random_seed(0)
        model = lw.Sequential([Rescaling(1 / 16, input_dim=64), Dense(64, activation="relu"),
                               Dense(10, activation="softmax")])
        model.compile(optimizer=lw.optimizers.SGD(learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x_train, y_train, batch_size=batch_size,
                            epochs=max_epochs, validation_data=(x_val, y_val),
                            verbose=0, callbacks=[Timer()])
        accuracy = history.history["val_accuracy"]
        reached = next((i + 1 for i, a in enumerate(accuracy) if a >= TARGET), None)
        seconds = sum(history.history["seconds"]) / len(accuracy)
        test_accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)[1]  # once, at the end
        rows.append({"batch_size": batch_size, "seconds_per_epoch": seconds,
                     "updates_per_epoch": -(-n // batch_size), "epochs_to_target": reached,
                     "final_accuracy": accuracy[-1], "test_accuracy": test_accuracy})
    print(f"target validation accuracy {TARGET}, plain SGD, learning rate {learning_rate}")
    print("| batch size | updates/epoch | s/epoch | epochs to target | seconds to target | "
          "test accuracy at the end |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        name = f"{r['batch_size']} (full)" if r["batch_size"] == n else str(r["batch_size"])
        epochs = r["epochs_to_target"] or f"> {max_epochs}"
        total = (f"{r['epochs_to_target'] * r['seconds_per_epoch']:.2f}"
                 if r["epochs_to_target"] else "-")
        print(f"| {name} | {r['updates_per_epoch']} | {r['seconds_per_epoch']:.4f} | {epochs} |"
              f" {total} | {r['test_accuracy']:.3f} |")
    try:
        from layerwise.plot import _pyplot

        plt = _pyplot()
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        labels = [str(r["batch_size"]) for r in rows]
        left.bar(labels, [r["seconds_per_epoch"] for r in rows])
        left.set_xlabel("batch size")
        left.set_ylabel("seconds per epoch")
        left.set_yscale("log")
        right.bar(labels, [r["epochs_to_target"] or max_epochs for r in rows],
                  color=["C0" if r["epochs_to_target"] else "grey" for r in rows])
        right.set_xlabel("batch size")
        right.set_ylabel(f"epochs to {TARGET:.0%} (grey: not reached)")
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "batch_size.png", dpi=110)
        plt.close(fig)
    except ImportError as exc:
        print(f"no plot: {exc}")
    return rows


if __name__ == "__main__":
    main(*sys.argv[1:])
