"""Hostile model files and inputs: each is refused with a clear error, quickly, without
allocating more than the file holds, without hanging, and never by running code from it."""

import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc

import numpy as np
import pytest
import safetensors.numpy

from layerwise.layers import Dense
from layerwise.models import Sequential, load_model
from layerwise.saving import MAX_LAYERS


def _model_file(path, layers, tensors=None, **metadata):
    """A layerwise model file with the given layer configs, tensors and extra metadata."""
    meta = {"format": "layerwise", "format_version": "1",
            "model_config": json.dumps({"name": "m", "input_dim": None, "layers": layers})}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    path.write_bytes(safetensors.numpy.save(tensors or {}, metadata=meta))
    return path


def _dense(units, input_dim=None):
    config = {"units": units, "activation": {"class_name": "ReLU", "config": {}}}
    if input_dim is not None:
        config["input_dim"] = input_dim
    return {"class_name": "Dense", "config": config}


def _trained(tmp_path, classes=3):
    model = Sequential([Dense(4, activation="relu", input_dim=3),
                        Dense(classes, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.ones((6, 3)), np.arange(6) % classes, verbose=0)
    return model


def _resave(tmp_path, model, edit):
    """Save ``model``, then rewrite its metadata and tensors with ``edit(meta, tensors)``."""
    path = tmp_path / "m.safetensors"
    model.save(path)
    with safetensors.safe_open(path, framework="numpy") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    edit(meta, tensors)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))
    return path


def test_a_tiny_file_declaring_a_huge_layer_allocates_nothing(tmp_path):
    path = _model_file(tmp_path / "huge.safetensors", [_dense(16000, input_dim=16000)],
                       {"layers.0.kernel": np.zeros((1, 1), "float32"),
                        "layers.0.bias": np.zeros(1, "float32")})
    assert path.stat().st_size < 600
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"tensor 'layers.0.kernel' has shape \(1, 1\), "
                                             r"but the architecture needs \(16000, 16000\)"):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # the old loader drew a 1 GB float32 kernel first


def test_a_declared_weight_without_a_tensor_is_refused(tmp_path):
    path = _model_file(tmp_path / "m.safetensors", [_dense(16000, input_dim=16000)])
    with pytest.raises(ValueError, match=r"no tensor 'layers\.0\.kernel' is stored"):
        load_model(path)


def test_loading_draws_no_random_weights(tmp_path, monkeypatch):
    from layerwise import initializers

    model = _trained(tmp_path)
    model.save(tmp_path / "m.safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("an initialiser ran while loading")
    monkeypatch.setattr(initializers.GlorotUniform, "sample", refuse)
    monkeypatch.setattr(initializers.Zeros, "sample", refuse, raising=False)
    loaded = load_model(tmp_path / "m.safetensors")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_layer_count_is_capped_and_many_layers_load(tmp_path):
    relu = {"class_name": "Activation", "config": {"activation": "relu"}}
    many = [{**relu, "config": {**relu["config"], "name": f"a{i}"}} for i in range(5000)]
    many[0]["config"]["input_dim"] = 2
    model = load_model(_model_file(tmp_path / "many.safetensors", many))
    assert len(model.layers) == 5000
    too_many = [relu] * (MAX_LAYERS + 1)
    with pytest.raises(ValueError, match=f"declares {MAX_LAYERS + 1} layers"):
        load_model(_model_file(tmp_path / "too.safetensors", too_many))


def _load_in_subprocess(path, timeout=30):
    code = textwrap.dedent(f"""
        from layerwise.models import load_model
        try:
            load_model({str(path)!r})
        except Exception as exc:
            print(type(exc).__name__ + ": " + str(exc))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)


def _load_as_nobody(path):
    """``load_model(path)``'s error in a forked child running as uid/gid 65534."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exec, so the interpreter needs no permissions
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_model(path)
                text = "loaded"
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
            os.write(write, text.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        text = handle.read()
    os.waitpid(pid, 0)
    return text


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    result = _load_in_subprocess(fifo)  # a hang fails the test through the timeout
    assert "is not a regular file (a FIFO, socket or device)" in result.stdout, result


def test_a_device_is_refused():
    with pytest.raises(ValueError, match="is not a regular file"):
        load_model("/dev/zero")


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory, not a model file"):
        load_model(tmp_path)


def test_an_unreadable_file_says_permission_denied(tmp_path):
    model = _trained(tmp_path)
    folder = tempfile.mkdtemp()
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "m.safetensors")
        model.save(path)
        os.chmod(path, 0)
        if os.geteuid() == 0:  # root reads anything: try as the unprivileged user 'nobody'
            message = _load_as_nobody(path)
        else:
            with pytest.raises(PermissionError) as info:
                load_model(path)
            message = f"PermissionError: {info.value}"
        assert message.startswith("PermissionError: Permission denied"), message
    finally:
        os.chmod(os.path.join(folder, "m.safetensors"), stat.S_IRUSR | stat.S_IWUSR)
        os.unlink(os.path.join(folder, "m.safetensors"))
        os.rmdir(folder)


@pytest.mark.parametrize("key, value, message", [
    ("class_names", ["a", "b"], "class_names has 2 entries, but the model has 3 outputs"),
    ("class_names", [["nested"], "b", "c"], "class_names must be a list of strings or numbers"),
    ("class_names", {"a": 1}, "class_names must be a list"),
    ("class_names", ["a", "a", "b"], "class_names has repeated entries"),
    ("feature_names", ["x", "y"], "feature_names has 2 entries, but the model has 3 inputs"),
    ("target_name", 5, "target_name must be a string"),
])
def test_names_of_the_wrong_type_or_length_are_refused(tmp_path, key, value, message):
    path = _resave(tmp_path, _trained(tmp_path),
                   lambda meta, tensors: meta.__setitem__(key, json.dumps(value)))
    with pytest.raises(ValueError, match=message):
        load_model(path)


def test_negative_adam_second_moments_are_refused(tmp_path):
    def negate(meta, tensors):
        tensors["optimizer.v.0"] = -np.abs(tensors["optimizer.v.0"]) - 1.0
    path = _resave(tmp_path, _trained(tmp_path), negate)
    with pytest.raises(ValueError, match=r"optimizer slot 'v' .* holds negative values"):
        load_model(path)


def test_deeply_nested_json_is_a_value_error(tmp_path):
    nested = "[" * 100_000 + "]" * 100_000
    path = _resave(tmp_path, _trained(tmp_path),
                   lambda meta, tensors: meta.__setitem__("class_names", nested))
    with pytest.raises(ValueError, match="class_names"):
        load_model(path)


@pytest.mark.parametrize("key", ["layers.x.kernel", "layers.9.kernel", "layers.0.",
                                 "optimizer.m", "optimizer.m.x"])
def test_unexpected_tensor_names_are_refused(tmp_path, key):
    path = _resave(tmp_path, _trained(tmp_path), lambda meta, tensors: tensors.__setitem__(
        key, np.zeros(3, "float32")))
    with pytest.raises(ValueError, match="unexpected"):
        load_model(path)


@pytest.mark.parametrize("layers", [
    [_dense(10**30, input_dim=3)],
    [_dense(-4, input_dim=3)],
    [{"class_name": "__import__", "config": {}}],
    [{"class_name": "Dense", "config": {"units": 4, "input_dim": 3, "kernel_initializer":
                                        {"class_name": "os.system", "config": {}}}}],
    ["not a dict"],
])
def test_hostile_architectures_are_refused(tmp_path, layers):
    with pytest.raises(ValueError, match="architecture"):
        load_model(_model_file(tmp_path / "m.safetensors", layers))


def test_compile_settings_of_the_wrong_shape_are_refused(tmp_path):
    path = _resave(tmp_path, _trained(tmp_path),
                   lambda meta, tensors: meta.__setitem__("compile_config", "[1, 2]"))
    with pytest.raises(ValueError, match="compile settings must be a dict"):
        load_model(path)


def test_garbage_bytes_are_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="not a readable safetensors model file"):
        load_model(path)


# ---- hostile inputs ---------------------------------------------------------------------

@pytest.fixture
def model():
    net = Sequential([Dense(3, activation="softmax", input_dim=2)])
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return net


@pytest.mark.parametrize("x, error, message", [
    ([["a", "b"]], TypeError, "must hold numbers; it holds strings"),
    (np.array([[1, None]], dtype=object), TypeError, "must hold numbers"),
    (np.zeros((2, 2, 2)), ValueError, "must be 2-D"),
    (np.zeros((2, 5)), ValueError, "has 5 features, but the model expects input_dim=2"),
    (np.array([[1.0, np.inf]]), ValueError, r"x\[0, 1\] is inf"),
    (np.array([[1 + 2j, 0]]), TypeError, "must be real"),
    (np.array([[np.datetime64("2020-01-01"), np.datetime64("2020-01-02")]]), TypeError,
     "must hold numbers"),
])
def test_hostile_features_are_refused_before_training(model, x, error, message):
    start = [w.copy() for w in model.get_weights()]
    with pytest.raises(error, match=message):
        model.fit(x, np.zeros(len(x), dtype=int), verbose=0)
    for a, b in zip(start, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("y, message", [
    ([0, 3], "class"),
    ([0.5, 1], "integer"),
    ([-1, 0], "class"),
    ([0, np.nan], "finite"),
])
def test_labels_that_do_not_match_the_output_layer_are_refused(model, y, message):
    with pytest.raises(ValueError, match=message):
        model.fit(np.zeros((2, 2)), np.array(y), verbose=0)
