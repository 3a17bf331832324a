"""Streaming data: memmaps with preprocess, Sequences and generators."""

import numpy as np
import pytest

import layerwise as lw
from layerwise import data
from layerwise.layers import Dense


def _model(inputs=6):
    model = lw.Sequential([Dense(8, activation="relu", input_dim=inputs),
                           Dense(3, activation="softmax")])
    model.compile(optimizer=lw.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.fixture
def images(tmp_path, rng):
    """uint8 'images' on disk as a memmap, labels in memory."""
    x = rng.integers(0, 256, size=(500, 6), dtype=np.uint8)
    y = (x[:, 0] > 128).astype(np.int64) + (x[:, 1] > 128)
    path = tmp_path / "x.u8"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=x.shape)
    mm[:] = x
    mm.flush()
    return np.memmap(path, dtype=np.uint8, mode="r", shape=x.shape), x, y


def scale(batch):
    return batch.astype(np.float32) / 255


def test_memmap_stream_equals_in_memory_training(images, monkeypatch):
    mm, x, y = images
    monkeypatch.setattr(data, "BLOCK_BYTES", 6 * 64)  # many small blocks
    a, b = _model(), _model()
    b.set_weights(a.get_weights())
    a.fit(scale(x), y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    b.fit(mm, y, batch_size=32, epochs=2, shuffle=False, verbose=0, preprocess=scale)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict(scale(x)), b.predict(mm, preprocess=scale))
    assert a.evaluate(scale(x), y, verbose=0) == b.evaluate(mm, y, verbose=0, preprocess=scale)


def test_memmap_stream_shuffles_blocks_and_rows_and_learns(images, monkeypatch):
    mm, x, y = images
    monkeypatch.setattr(data, "BLOCK_BYTES", 6 * 128)
    seen = []
    model = _model()
    original = model.train_step

    def spy(xb, yb, wb=None):
        seen.append(xb[:, 0].copy())
        return original(xb, yb, wb)

    model.train_step = spy
    lw.utils.set_random_seed(1)
    history = model.fit(mm, y, batch_size=32, epochs=30, verbose=0, preprocess=scale,
                        validation_split=0.2)
    first_epoch = np.concatenate(seen[: len(seen) // 30])
    assert sorted(first_epoch) == sorted(scale(x[:400])[:, 0])  # every training row once
    assert not np.array_equal(first_epoch, scale(x[:400])[:, 0])  # ...not in file order
    assert history.history["accuracy"][-1] > 0.8 and "val_accuracy" in history.history


def test_stream_errors_come_before_training(images):
    mm, _x, y = images
    model = _model(inputs=5)
    before = model.get_weights()
    with pytest.raises(ValueError, match="has 6 features, but the model expects input_dim=5"):
        model.fit(mm, y, preprocess=scale, verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        _model().fit(mm, y[:10], preprocess=scale, verbose=0)
    bad = y.copy()
    bad[3] = 7
    with pytest.raises(ValueError, match="class index 7"):
        _model().fit(mm, bad, preprocess=scale, verbose=0, batch_size=8)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


class Batches(data.Sequence):
    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        part = slice(i * self.size, (i + 1) * self.size)
        return self.x[part], self.y[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_sequence(rng):
    x = rng.normal(size=(90, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    seq = Batches(x, y, 16)
    model = _model()
    history = model.fit(seq, epochs=20, verbose=0, validation_data=Batches(x[:30], y[:30], 8))
    assert seq.epochs_ended == 20 and len(history.history["val_loss"]) == 20
    assert model.evaluate(seq, verbose=0)[1] > 0.9
    assert model.predict(seq).shape == (90, 3)
    np.testing.assert_allclose(model.predict(seq), model.predict(x), rtol=1e-5, atol=1e-7)


def test_generator_with_steps_per_epoch(rng):
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 1] > 0).astype(np.int64)

    def forever():
        while True:
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]

    model = _model()
    history = model.fit(forever(), steps_per_epoch=4, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and model.optimizer.iterations == 12
    finite = ((x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16))
    assert model.evaluate(finite, verbose=0)[0] > 0
    with pytest.raises(ValueError, match=r"must be a tuple \(x, y\)"):
        model.fit(iter([x]), verbose=0)
    with pytest.raises(ValueError, match="validation_split` needs array data"):
        model.fit(forever(), steps_per_epoch=1, validation_split=0.1, verbose=0)


def test_a_generator_that_ends_stops_training(rng):
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = np.zeros(32, dtype=np.int64)
    model = _model()
    batches = ((x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8))
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(batches, epochs=5, verbose=0)
    assert len(history.history["loss"]) == 1 and model.optimizer.iterations == 4


def test_sparse_matrix_is_densified_one_batch_at_a_time(rng, monkeypatch):
    """CSR and CSC input trains as the dense array does; only batches are ever dense."""
    sp = pytest.importorskip("scipy.sparse")
    x = rng.normal(size=(90, 6))
    x[rng.random(x.shape) < 0.7] = 0.0
    y = rng.integers(0, 3, size=90)
    widest = []
    real = lw.models.as_feature_array

    def spy(array, *args, **kwargs):
        if sp.issparse(array):
            widest.append(array.shape[0])
        return real(array, *args, **kwargs)

    monkeypatch.setattr(lw.models, "as_feature_array", spy)
    results, start = [], None
    for matrix in (x, sp.csr_matrix(x), sp.csc_matrix(x)):
        model = _model()
        if start is None:
            start = model.get_weights()
        model.set_weights(start)
        model.fit(matrix, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results.append((model.get_weights(), model.predict(matrix),
                        model.evaluate(matrix, y, verbose=0)))
    for weights, predictions, loss in results[1:]:
        for a, b in zip(weights, results[0][0]):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(predictions, results[0][1], rtol=1e-6)
        assert loss == pytest.approx(results[0][2], rel=1e-6)
    assert widest and max(widest) <= 32  # batches of fit (16), evaluate and predict (32)
