"""The backend seam, exercised on CPU with a strict stand-in for CuPy (tests/strict_backend.py).

Under the stand-in, device arrays refuse implicit conversion to NumPy, NumPy functions, and
hidden host reads (``float()``, ``bool()``). So every test here fails if a code path of
``fit``, ``evaluate``, ``predict``, a layer, loss, optimizer, callback or ``save``/``load``
converts implicitly or calls NumPy on device data. Where the NumPy backend and the stand-in
compute the same thing (no noise), the weights must agree.

GPU-only tests (the real CuPy backend) are marked ``gpu`` and skipped here, saying why.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import layerwise as lw
from layerwise import activations, backend, callbacks, losses
from layerwise.layers import (
    ELU,
    Activation,
    Dense,
    Dropout,
    LeakyReLU,
    Maxout,
    Normalization,
    PReLU,
    Rescaling,
    RReLU,
    Softmax,
)
from layerwise.models import Sequential, load_model

sys.path.insert(0, str(Path(__file__).parent))
import strict_backend


@pytest.fixture
def strict():
    backend.set_backend(strict_backend.namespace)
    try:
        yield strict_backend
    finally:
        backend.set_backend("numpy")


def _data(n=48, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    return x, rng.integers(0, classes, n)


def _train(build, compile_kwargs, x, y, **fit):
    lw.utils.set_random_seed(7)
    model = build()
    model.compile(**{k: v() if callable(v) else v for k, v in compile_kwargs.items()})
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, **fit)
    return model, history


def _both(build, compile_kwargs, x, y, strict_module, exact=True, **fit):
    """Train on NumPy, then under the stand-in; returns both models after checking them."""
    reference, _ = _train(build, compile_kwargs, x, y, **fit)
    backend.set_backend(strict_module.namespace)
    device, history = _train(build, compile_kwargs, x, y, **fit)
    assert all(math.isfinite(v) for v in history.history["loss"])
    if exact:
        for a, b in zip(reference.get_weights(), device.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return reference, device


@pytest.mark.parametrize("make", [
    lambda: Activation("tanh"), lambda: LeakyReLU(0.1), lambda: PReLU(), lambda: ELU(0.5),
    lambda: Softmax(), lambda: Maxout(4, pieces=3), lambda: Rescaling(0.5, 0.1),
    lambda: Normalization(mean=[0.1] * 8, variance=[2.0] * 8),
], ids=["Activation", "LeakyReLU", "PReLU", "ELU", "Softmax", "Maxout", "Rescaling",
        "Normalization"])
def test_every_layer_trains_under_the_stand_in(strict, make):
    x, y = _data()

    def build():
        return Sequential([Dense(8, input_dim=4), make(), Dense(3, activation="softmax")])
    _both(build, {"optimizer": "sgd", "loss": "sparse_categorical_crossentropy"}, x, y, strict)


@pytest.mark.parametrize("make", [lambda: Dropout(0.3), lambda: RReLU()],
                         ids=["Dropout", "RReLU"])
def test_noise_layers_draw_on_the_device(strict, make):
    x, y = _data()

    def build():
        return Sequential([Dense(8, input_dim=4), make(), Dense(3, activation="softmax")])
    _both(build, {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"}, x, y,
          strict, exact=False)


@pytest.mark.parametrize("name", [n for n in activations.names() if n != "hardmax"])
def test_every_activation_under_the_stand_in(strict, name):
    x, y = _data()

    def build():
        return Sequential([Dense(8, activation=name, input_dim=4),
                           Dense(3, activation="softmax")])
    _both(build, {"optimizer": "sgd", "loss": "sparse_categorical_crossentropy"}, x, y, strict)


@pytest.mark.parametrize("loss, units, make_y", [
    ("mse", 2, lambda y: np.stack([y, -y], 1).astype("float32")),
    ("mae", 2, lambda y: np.stack([y, -y], 1).astype("float32")),
    ("huber", 2, lambda y: np.stack([y, -y], 1).astype("float32")),
    ("binary_crossentropy", 1, lambda y: (y > 0).astype("float32")),
    ("categorical_crossentropy", 3, lambda y: lw.utils.to_categorical(y, 3)),
    ("sparse_categorical_crossentropy", 3, lambda y: y),
])
def test_every_loss_under_the_stand_in(strict, loss, units, make_y):
    x, y = _data()
    activation = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax",
                  "sparse_categorical_crossentropy": "softmax"}.get(loss)

    def build():
        return Sequential([Dense(8, activation="relu", input_dim=4),
                           Dense(units, activation=activation)])
    _both(build, {"optimizer": "sgd", "loss": loss, "metrics":
                  ["accuracy"] if "entropy" in loss else ["mae"]}, x, make_y(y), strict)
    assert losses.get(loss) is not None


@pytest.mark.parametrize("optimizer", [
    lambda: lw.optimizers.SGD(0.05), lambda: lw.optimizers.SGD(0.05, momentum=0.9),
    lambda: lw.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: lw.optimizers.Adagrad(0.05), lambda: lw.optimizers.RMSprop(0.01),
    lambda: lw.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    lambda: lw.optimizers.Adam(0.01), lambda: lw.optimizers.Adam(0.01, amsgrad=True),
    lambda: lw.optimizers.AdamW(0.01), lambda: lw.optimizers.Adam(0.01, clipnorm=0.1),
    lambda: lw.optimizers.SGD(0.05, clipvalue=0.01),
    lambda: lw.optimizers.SGD(0.05, global_clipnorm=0.1),
    lambda: lw.optimizers.SGD(lw.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)),
    lambda: lw.optimizers.Nadam(0.01), lambda: lw.optimizers.Adamax(0.01),
    lambda: lw.optimizers.Adadelta(1.0), lambda: lw.optimizers.Lion(0.001),
    lambda: lw.optimizers.RMSprop(0.01, weight_decay=0.01),
], ids=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop-centered", "adam",
        "amsgrad", "adamw", "clipnorm", "clipvalue", "global_clipnorm", "schedule", "nadam",
        "adamax", "adadelta", "lion", "weight_decay"])
def test_every_optimizer_under_the_stand_in(strict, optimizer):
    x, y = _data()

    def build():
        return Sequential([Dense(8, activation="relu", input_dim=4,
                                 kernel_regularizer=lw.regularizers.l1_l2(1e-3, 1e-3)),
                           Dense(3, activation="softmax")])
    _both(build, {"optimizer": optimizer, "loss": "sparse_categorical_crossentropy"}, x, y,
          strict)  # a new optimizer for each run


def test_callbacks_validation_weights_and_streaming_under_the_stand_in(strict, tmp_path):
    x, y = _data(96)
    backend.set_backend("numpy")
    np.save(tmp_path / "x.npy", x)
    backend.set_backend(strict.namespace)
    monitor = callbacks.GradientMonitor(warn=False)
    cbs = [callbacks.EarlyStopping(patience=1, restore_best_weights=True),
           callbacks.ReduceLROnPlateau(patience=1), callbacks.TerminateOnNaN(),
           callbacks.CSVLogger(tmp_path / "log.csv"), monitor,
           callbacks.ModelCheckpoint(tmp_path / "ckpt.safetensors"),
           callbacks.LearningRateScheduler(lambda epoch, lr: lr),
           callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)]
    model = Sequential([Dense(8, activation="relu", input_dim=4),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=3, verbose=2, validation_split=0.25, callbacks=cbs,
              class_weight={0: 1.0, 1: 2.0, 2: 1.0}, sample_weight=np.ones(96))
    assert any(key.startswith("grad_norm/") for key in monitor.record)
    model.fit(np.load(tmp_path / "x.npy", mmap_mode="r"), y, batch_size=16, epochs=1,
              verbose=0)
    model.train_on_batch(x[:8], y[:8])
    model.test_on_batch(x[:8], y[:8])
    assert load_model(tmp_path / "ckpt.safetensors").built


def test_save_on_the_device_load_on_the_host_and_back(strict, tmp_path):
    x, y = _data()
    model = Sequential([Dense(8, activation="relu", input_dim=4),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    device_outputs = model.predict(x)
    model.save(tmp_path / "device.safetensors")
    backend.set_backend("numpy")
    host = load_model(tmp_path / "device.safetensors")
    np.testing.assert_allclose(host.predict(x), device_outputs, rtol=1e-6)
    host.fit(x, y, epochs=1, verbose=0)  # the optimizer state crossed too
    host.save(tmp_path / "host.safetensors")
    host_outputs = host.predict(x)
    backend.set_backend(strict.namespace)
    again = load_model(tmp_path / "host.safetensors")
    np.testing.assert_allclose(again.predict(x), host_outputs, rtol=1e-6)
    assert again.optimizer.iterations == host.optimizer.iterations
    for slot, arrays in again.optimizer.get_state()["slots"].items():  # explicit copies out
        for a, b in zip(arrays, host.optimizer.get_state()["slots"][slot]):
            np.testing.assert_array_equal(a, b)


def test_predict_reads_back_once_per_batch_and_nothing_else(strict):
    x, _ = _data(100)
    model = Sequential([Dense(8, activation="relu", input_dim=4),
                        Dense(3, activation="softmax")])
    model.predict(x[:4])
    before = dict(strict.TRANSFERS)
    model.predict(x, batch_size=25)
    assert strict.TRANSFERS["get"] - before["get"] == 4  # one result per batch
    assert strict.TRANSFERS["item"] == before["item"]


def test_the_stand_in_catches_what_it_should(strict):
    array = backend.xp.asarray(np.ones(3, dtype="float32"))
    with pytest.raises(strict.ImplicitTransferError):
        np.asarray(array)
    with pytest.raises(strict.ImplicitTransferError):
        float(array.sum())
    with pytest.raises(TypeError):
        array + np.ones(3)
    with pytest.raises(strict.ImplicitTransferError):
        np.sum(array)


def test_set_backend_errors_name_the_extra(monkeypatch):
    import importlib

    def missing(name):
        raise ImportError(name)
    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ImportError, match=r"pip install 'layerwise\[gpu\]' \(CUDA 12\) or "
                                          r"'layerwise\[gpu-cuda13\]'"):
        backend.set_backend("cupy")
    with pytest.raises(ValueError, match="`name` must be one of"):
        backend.set_backend("torch")


@pytest.mark.gpu
def test_cupy_backend_trains_on_a_real_gpu():
    cupy = pytest.importorskip("cupy", reason="GPU test: needs CuPy and an NVIDIA GPU")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("GPU test: CuPy finds no GPU")
    except Exception as exc:  # no driver
        pytest.skip(f"GPU test: no usable GPU ({exc})")
    x, y = _data(256)
    backend.set_backend("cupy")
    try:
        model = Sequential([Dense(64, activation="relu", input_dim=4),
                            Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(x, y, epochs=3, verbose=0)
        assert all(math.isfinite(v) for v in history.history["loss"])
        assert isinstance(model.layers[0].params["kernel"], cupy.ndarray)
    finally:
        backend.set_backend("numpy")


@pytest.fixture
def strict_as_cupy(monkeypatch):
    """``set_backend("cupy")`` loads the stand-in, so the GPU options run their real path."""
    monkeypatch.setattr(backend, "_load_cupy", lambda: strict_backend.namespace)
    yield strict_backend
    backend.set_backend("numpy")


def test_estimator_device_gpu_trains_on_the_device(strict_as_cupy):
    from layerwise.sklearn import DenseClassifier

    x, y = _data(60)
    clf = DenseClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0, device="gpu")
    clf.fit(x, y)
    assert isinstance(clf.model_.layers[0].params["kernel"], strict_backend.StrictArray)
    assert backend.backend_name() == "numpy"  # restored after fit
    assert clf.predict(x).shape == (60,) and 0 <= clf.score(x, y) <= 1
    cpu = DenseClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0, device="cpu")
    np.testing.assert_allclose(clf.predict_proba(x), cpu.fit(x, y).predict_proba(x),
                               rtol=1e-4, atol=1e-5)


def test_cli_device_gpu_trains_on_the_device(strict_as_cupy, tmp_path):
    from click.testing import CliRunner

    from layerwise.cli import cli

    result = CliRunner().invoke(cli, ["train", "--dataset", "xor", "--hidden", "8", "--epochs",
                                      "2", "--device", "gpu", "--out", str(tmp_path),
                                      "--no-plot", "--verbose", "0"])
    assert result.exit_code == 0, result.output
    backend.set_backend("numpy")
    assert load_model(tmp_path / "model.safetensors").built  # saved on the device, read here


def test_data_already_on_the_device_is_used_in_place(strict):
    x, y = _data(64)
    backend.set_backend("numpy")
    lw.utils.set_random_seed(3)
    host = Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    host.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    host.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=5)
    backend.set_backend(strict.namespace)
    lw.utils.set_random_seed(3)
    model = Sequential([Dense(8, activation="relu", input_dim=4),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    xd, yd = backend.xp.asarray(x), backend.xp.asarray(y)
    model.fit(xd, yd, batch_size=16, epochs=2, verbose=0, seed=5, validation_split=0.0)
    for a, b in zip(model.get_weights(), host.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert model.predict(xd).shape == (64, 3)
    assert model.evaluate(xd, yd, verbose=0) > 0
    bad = backend.xp.asarray(np.full((4, 4), np.nan, dtype="float32"))
    with pytest.raises(ValueError, match="this device array holds NaN"):
        model.predict(bad)


def _reads(strict, run):
    before = dict(strict.TRANSFERS)
    run()
    return {k: strict.TRANSFERS[k] - before[k] for k in before}


def test_fit_reads_the_device_once_per_epoch_whatever_the_steps(strict):
    x, y = _data(480)
    model = Sequential([Dense(8, activation="relu", input_dim=4,
                              kernel_regularizer=lw.regularizers.l2(1e-3)),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[:32], y[:32], epochs=1, verbose=0)  # builds everything once
    few = _reads(strict, lambda: model.fit(x, y, batch_size=240, epochs=3, verbose=0))
    many = _reads(strict, lambda: model.fit(x, y, batch_size=8, epochs=3, verbose=0))
    assert few == many == {"get": 3, "item": 0}  # 2 or 60 steps an epoch: one read each
    with_validation = _reads(strict, lambda: model.fit(x, y, batch_size=8, epochs=2,
                                                       verbose=0, validation_split=0.25))
    assert with_validation == {"get": 4, "item": 2}  # + the evaluation's sums and penalty


def test_the_device_nan_guard_rolls_back_to_the_epoch_start(strict):
    x, _ = _data(96)
    y = np.zeros((96, 1), dtype="float32")
    y[70:] = 1e30  # finite, but the squared error of these rows overflows float32
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    start = model.get_weights()
    with pytest.raises(lw.models.NonFiniteLossError,
                       match=r"in epoch 1 \(found after batch 6; read every 200 steps .* "
                             r"rolled back to the start of epoch 1"):
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(start, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False,
              callbacks=[callbacks.TerminateOnNaN()])  # quietly, still rolled back
    for a, b in zip(start, model.get_weights()):
        np.testing.assert_array_equal(a, b)
