"""The one-file model format: round trips, exact resume, atomic writes, malformed files."""

import json
import os
import struct

import numpy as np
import pytest

import layerwise as lw
from layerwise import Sequential, callbacks, optimizers, regularizers
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
from layerwise.saving import load_model


def _every_layer_model():
    norm = Normalization(mean=[0.1, 0.2, 0.3, 0.4], variance=[1.0, 2.0, 3.0, 4.0], input_dim=4)
    return Sequential([
        norm, Rescaling(2.0, offset=0.5),
        Dense(8, activation="gelu", kernel_regularizer=regularizers.l2(0.01)),
        PReLU(), Dropout(0.1, seed=3), Maxout(6, pieces=3, bias_regularizer="l1"),
        LeakyReLU(0.2), ELU(0.5), RReLU(), Activation("tanh"),
        Dense(5, activation=("selu")), Dense(3), Softmax(),
    ])


def test_every_layer_round_trips_bit_identically(tmp_path, rng):
    model = _every_layer_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_config() == model.get_config()
    assert loaded.get_compile_config() == model.get_compile_config()
    assert [m.name for m in loaded.metrics] == ["acc"]
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


@pytest.mark.parametrize("optimizer", [
    optimizers.SGD(0.05), optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    optimizers.Adagrad(0.05), optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    optimizers.Adam(0.01, amsgrad=True), optimizers.AdamW(0.01, weight_decay=0.1),
    optimizers.Adam(optimizers.schedules.CosineDecay(0.01, 20, warmup_target=0.02,
                                                     warmup_steps=3), clipnorm=1.0),
], ids=["sgd", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "adam_schedule"])
def test_resume_exactly_two_plus_three_epochs_equal_five(optimizer, tmp_path, rng):
    x, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    config = optimizers.serialize(optimizer)

    def fresh():
        model = Sequential([Dense(16, activation="relu", input_dim=5), Dropout(0.2),
                            Dense(3, activation="softmax")])
        model.compile(optimizer=optimizers.get(config), loss="sparse_categorical_crossentropy")
        return model

    lw.utils.set_random_seed(11)
    straight = fresh()
    straight.fit(x, y, epochs=5, batch_size=16, verbose=0)

    lw.utils.set_random_seed(11)
    first = fresh()
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "ckpt.safetensors"
    first.save(path)
    resumed = load_model(path)
    assert resumed.optimizer.iterations == 8
    resumed.fit(x, y, epochs=5, initial_epoch=2, batch_size=16, verbose=0)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_resume_in_a_new_process_with_restored_random_state(tmp_path, rng):
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 1))
    lw.utils.set_random_seed(5)
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dropout(0.3), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.safetensors")
    model.fit(x, y, epochs=2, initial_epoch=1, batch_size=8, verbose=0)
    lw.utils.set_random_seed(999)  # a "new process" whose generator is elsewhere
    again = load_model(tmp_path / "m.safetensors", restore_random_state=True)
    again.fit(x, y, epochs=2, initial_epoch=1, batch_size=8, verbose=0)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_load_without_compile(tmp_path):
    model = Sequential([Dense(2, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", compile=False)
    assert loaded.optimizer is None and loaded.loss is None
    uncompiled = Sequential([Dense(2, input_dim=3)])
    uncompiled.save(tmp_path / "u.safetensors")
    assert load_model(tmp_path / "u.safetensors").optimizer is None


def test_class_names_travel_with_the_model(tmp_path):
    model = Sequential([Dense(2, input_dim=3, activation="softmax")])
    model.class_names = ["cat", "dog"]
    model.save(tmp_path / "m.safetensors")
    assert load_model(tmp_path / "m.safetensors").class_names == ["cat", "dog"]


def test_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        Sequential([Dense(2)]).save(tmp_path / "m.safetensors")


def test_atomic_write_keeps_the_old_file_when_a_write_crashes(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    old = Sequential([Dense(2, input_dim=3)])
    old.save(path)
    before = path.read_bytes()
    new = Sequential([Dense(2, input_dim=3, kernel_initializer="ones")])

    def crash(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", crash)  # the crash comes after part of the bytes hit disk
    with pytest.raises(OSError, match="simulated"):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp left
    np.testing.assert_array_equal(load_model(path).get_weights()[0], old.get_weights()[0])


# ---- malformed files: each is a clear ValueError ----

def _saved(tmp_path):
    model = Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    path = tmp_path / "model.safetensors"
    model.save(path)
    return path


def _header(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _write(path, header, body):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def _edit_metadata(path, key, edit):
    header, body = _header(path)
    header["__metadata__"][key] = edit(header["__metadata__"][key])
    _write(path, header, body)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file at"):
        load_model(tmp_path / "nope.safetensors")


def test_truncated_file(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="not a readable safetensors model file"):
        load_model(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x00\x01not a model at all" * 10)
    with pytest.raises(ValueError, match="not a readable safetensors model file"):
        load_model(path)


def test_header_that_lies_about_sizes(tmp_path):
    path = _saved(tmp_path)
    header, body = _header(path)
    key = next(k for k in header if k != "__metadata__")
    start, end = header[key]["data_offsets"]
    header[key]["data_offsets"] = [start, end + 4096]
    _write(path, header, body)
    with pytest.raises(ValueError, match="not a readable safetensors model file"):
        load_model(path)


def test_bad_json_in_metadata(tmp_path):
    path = _saved(tmp_path)
    _edit_metadata(path, "model_config", lambda s: s[:-5])
    with pytest.raises(ValueError, match="'model_config' is not valid JSON"):
        load_model(path)


def test_unknown_layer_name(tmp_path):
    path = _saved(tmp_path)
    _edit_metadata(path, "model_config", lambda s: s.replace('"Dense"', '"Dence"', 1))
    with pytest.raises(ValueError, match=r"architecture in the file is invalid.*Unknown layer "
                                         r"'Dence'.*Did you mean 'Dense'"):
        load_model(path)


def test_wrong_shapes(tmp_path):
    path = _saved(tmp_path)
    _edit_metadata(path, "model_config", lambda s: s.replace('"units": 4', '"units": 5', 1))
    with pytest.raises(ValueError, match=r"tensor 'layers.0.kernel' has shape \(3, 4\), but the "
                                         r"architecture needs \(3, 5\)"):
        load_model(path)


def test_missing_tensor(tmp_path):
    path = _saved(tmp_path)
    _edit_metadata(path, "model_config", lambda s: s.replace('"use_bias": true', '"use_bias": '
                                                             'false', 1))
    with pytest.raises(ValueError, match=r"do not match the architecture.*unexpected: "
                                         r"\['layers.0.bias'\]"):
        load_model(path)


def test_not_a_layerwise_file(tmp_path):
    import safetensors.numpy

    path = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"w": np.ones(3, dtype=np.float32)}, str(path))
    with pytest.raises(ValueError, match="not a layerwise model"):
        load_model(path)


def test_optimizer_state_that_does_not_fit(tmp_path):
    path = _saved(tmp_path)
    _edit_metadata(path, "compile_config", lambda s: s.replace('"Adam"', '"SGD"').replace(
        '"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-08, "amsgrad": false', '"momentum": 0.9'))
    with pytest.raises(ValueError, match=r"optimizer slots \['m', 'v'\] do not match SGD"):
        load_model(path)


def test_model_checkpoint_saves_best_only(tmp_path, rng):
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    model = Sequential([Dense(8, activation="tanh", input_dim=3), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    best = callbacks.ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_loss",
                                     save_best_only=True)
    every = callbacks.ModelCheckpoint(tmp_path / "e{epoch:02d}.safetensors")
    history = model.fit(x, y, epochs=4, validation_split=0.25, verbose=0, callbacks=[best, every])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.safetensors", "e01.safetensors", "e02.safetensors", "e03.safetensors",
        "e04.safetensors"]
    val = history.history["val_loss"]
    best_epoch = int(np.argmin(val)) + 1
    reloaded = load_model(tmp_path / "best.safetensors")
    at_best = load_model(tmp_path / f"e{best_epoch:02d}.safetensors")
    for a, b in zip(reloaded.get_weights(), at_best.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
def test_pickled_model_keeps_training_like_the_original(copier, rng):
    import copy
    import pickle

    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    model = Sequential([Dense(6, activation="relu", input_dim=3), Dense(2, "softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    twin = pickle.loads(pickle.dumps(model)) if copier == "pickle" else copy.deepcopy(model)
    for m in (model, twin):
        m.train_step(x.astype(np.float32), y)  # the public step, straight after unpickling
        m.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
