"""Cases run under ``mpiexec -n N python tests/mpi_cases.py CASE OUTDIR`` by test_distributed.py.

Each case trains on every rank after ``layerwise.distributed.init`` and writes what the test
checks into OUTDIR (rank 0 writes the shared results; per-rank facts are gathered first).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys

import numpy as np

import layerwise as lw
from layerwise import data, saving
from layerwise.layers import Dense, Dropout, Normalization

SEED = 1234


def dataset(n: int = 1001, features: int = 6, classes: int = 3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, np.minimum(y, classes - 1)


def model(optimizer="sgd", dropout=0.0, features=6):
    layers = [Dense(16, activation="relu", input_dim=features)]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Dense(16, activation="tanh"), Dense(3, activation="softmax")]
    net = lw.Sequential(layers)
    net.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
    return net


class Rows(data.Sequence):
    """A Sequence of fixed batches of arrays."""

    def __init__(self, x, y, batch):
        self.x, self.y, self.batch = x, y, batch

    def __len__(self):
        return -(-len(self.x) // self.batch)

    def __getitem__(self, i):
        part = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[part], self.y[part]


class RankRows(Rows):
    """A Sequence that reads only this rank's rows of each global batch, and records the
    epochs and ranks fit told it."""

    shards_by_rank = True

    def __init__(self, x, y, batch):
        super().__init__(x, y, batch)
        self.told = []

    def __getitem__(self, i):
        self.told.append((self.epoch, self.rank, self.world_size))
        x, y = super().__getitem__(i)
        part = data.share(len(x), self.rank, self.world_size)
        return x[part], y[part]


def case_sequence_shards(ctx, out):
    x, y = dataset(1001)
    runs = {}
    for name, sequence in (("split", Rows(x, y, 64)), ("by_rank", RankRows(x, y, 64))):
        lw.utils.set_random_seed(SEED)
        net = model("adam")
        net.fit(sequence, epochs=2, verbose=0, seed=7)
        runs[name] = weights_digest(net)
    told = sorted(set(sequence.told))
    if ctx.is_chief:
        with open(os.path.join(out, "sequence.json"), "w") as handle:
            json.dump({"runs": runs, "told": told}, handle)


def weights_digest(net):
    return hashlib.sha256(b"".join(w.tobytes() for w in net.get_weights())).hexdigest()


def save_weights(ctx, net, out, name="weights.npz", **extra):
    digests = ctx.comm.gather(weights_digest(net), root=0)
    if ctx.is_chief:
        np.savez(os.path.join(out, name), *net.get_weights())
        with open(os.path.join(out, name + ".json"), "w") as handle:
            json.dump({"digests": digests, **extra}, handle)


def case_fit(ctx, out, source="arrays", n="1001", optimizer="sgd", batch="64", epochs="3"):
    x, y = dataset(int(n))
    net = model(optimizer)
    kwargs = dict(batch_size=int(batch), epochs=int(epochs), verbose=0, seed=7)
    if source == "arrays":
        history = net.fit(x, y, **kwargs)
    elif source == "memmap":
        path = os.path.join(out, f"x-{ctx.rank}.npy")
        np.save(path, x)
        history = net.fit(np.load(path, mmap_mode="r"), y, **kwargs)
    else:
        history = net.fit(Rows(x, y, int(batch)), **{k: v for k, v in kwargs.items()
                                                   if k != "batch_size"})
    save_weights(ctx, net, out, history=history.history)


def case_callbacks(ctx, out):
    x, y = dataset(600)
    net = model("adam")
    writes = []
    original = saving.atomic_write

    def logged(path, payload):
        writes.append(os.path.basename(os.fspath(path)))
        return original(path, payload)
    saving.atomic_write = logged
    stopper = lw.callbacks.EarlyStopping("val_loss", patience=3, min_delta=10.0)
    plateau = lw.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_delta=10.0)
    checkpoint = lw.callbacks.ModelCheckpoint(os.path.join(out, "ckpt-{epoch}.safetensors"))
    history = net.fit(x, y, batch_size=32, epochs=20, validation_split=0.25, verbose=2,
                      callbacks=[stopper, plateau, checkpoint])
    facts = {"stopped": stopper.stopped_epoch, "epochs": len(history.epoch),
             "lr": history.history.get("learning_rate"), "val_loss": history.history["val_loss"],
             "writes": writes}
    gathered = ctx.comm.gather(facts, root=0)
    if ctx.is_chief:
        with open(os.path.join(out, "callbacks.json"), "w") as handle:
            json.dump(gathered, handle)


def case_resume(ctx, out):
    x, y = dataset(500)
    lw.utils.set_random_seed(SEED)
    straight = model("adam", dropout=0.3)
    straight.fit(x, y, batch_size=32, epochs=4, verbose=0)
    lw.utils.set_random_seed(SEED)
    first = model("adam", dropout=0.3)
    first.fit(x, y, batch_size=32, epochs=2, verbose=0)
    path = os.path.join(out, "half.safetensors")
    first.save(path)
    ctx.barrier()
    resumed = lw.distributed.load_model(path)
    resumed.fit(x, y, batch_size=32, epochs=4, initial_epoch=2, verbose=0)
    same = all(np.array_equal(a, b) for a, b in zip(straight.get_weights(),
                                                     resumed.get_weights()))
    results = ctx.comm.gather(same, root=0)
    pickled = pickle.loads(pickle.dumps(resumed))  # a model carries no communicator
    try:
        pickle.dumps(ctx)
        context_pickles = True
    except TypeError:
        context_pickles = False
    if ctx.is_chief:
        with open(os.path.join(out, "resume.json"), "w") as handle:
            json.dump({"same": results, "context_pickles": context_pickles,
                       "pickled_layers": len(pickled.layers),
                       "world_size": resumed.saved_world_size}, handle)


def case_broadcast(ctx, out):
    """Rank 1 starts from other weights, optimizer state and Normalization constants; fit
    starts every rank from rank 0's."""
    x, y = dataset(300)
    norm = Normalization()
    norm.adapt(x + ctx.rank)  # different constants on each rank
    net = lw.Sequential([norm, Dense(8, activation="relu"), Dense(3, activation="softmax")])
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    if ctx.rank == 1:
        net.set_weights([w + 1.0 for w in net.get_weights()])
        net.train_on_batch(x[:10], y[:10])  # a built optimizer with its own state
    net.fit(x, y, batch_size=32, epochs=2, verbose=0)
    save_weights(ctx, net, out, mean=float(net.layers[0].mean[0]))


def case_error(ctx, out):
    x, y = dataset(400)
    if ctx.rank == 1:
        x = x.copy()
        x[3, 0] = np.nan  # refused by this rank's input checks: an exception on one rank
    model().fit(x, y, batch_size=32, epochs=50, verbose=0)


def case_nonfinite(ctx, out):
    x, y = dataset(400)
    net = lw.Sequential([Dense(8, activation="relu", input_dim=6), Dense(1)])
    net.compile(optimizer="sgd", loss="mse")
    target = y.astype("float32")
    if ctx.rank == 1:
        target = np.full_like(target, 1e30)  # finite, but its squared error is not
    net.fit(x, target, batch_size=32, epochs=50, verbose=0)


def case_adapt(ctx, out):
    x, _ = dataset(1001)
    mine = x[data.share(len(x), ctx.rank, ctx.size)]
    layer = Normalization()
    ctx.adapt(layer, mine)
    if ctx.is_chief:
        np.savez(os.path.join(out, "adapt.npz"), mean=layer.mean, variance=layer.variance)


def main() -> None:
    case, out, *args = sys.argv[1:]
    ctx = lw.distributed.init(seed=SEED)
    globals()[f"case_{case}"](ctx, out, *args)


if __name__ == "__main__":
    main()
