"""fit's training machinery: validation, early stopping, callbacks, NaN guard, seeds."""

import csv
import io
import math
import warnings

import numpy as np
import pytest

import layerwise as lw
from layerwise import Sequential, callbacks, optimizers
from layerwise.layers import Dense, Dropout, RReLU
from layerwise.models import NonFiniteLossError


def _overfit_problem(rng):
    """Few noisy samples, a large network: validation loss turns up after a while."""
    x = rng.normal(size=(40, 10))
    y = (x[:, 0] + rng.normal(scale=1.5, size=40) > 0).astype(float)
    model = Sequential([Dense(128, activation="relu", input_dim=10),
                        Dense(128, activation="relu"), Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model, x, y


class WeightLog(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []
        self.batches = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(self.model.get_weights())

    def on_train_batch_begin(self, batch, logs=None):
        self.batches.append(self.model.get_weights())


def test_early_stopping_stops_and_restores_best_weights(rng):
    model, x, y = _overfit_problem(rng)
    log = WeightLog()
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = model.fit(x, y, epochs=200, batch_size=8, validation_split=0.25,
                        callbacks=[log, stop], verbose=0)
    epochs_run = len(history.history["loss"])
    assert epochs_run < 200 and stop.stopped_epoch == epochs_run - 1
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert stop.best_epoch == best and epochs_run == best + 1 + 3
    for restored, at_best in zip(model.get_weights(), log.epochs[best]):
        np.testing.assert_array_equal(restored, at_best)
    assert model.evaluate(x[30:], y[30:], verbose=0)[0] == pytest.approx(val[best], rel=1e-5)


def test_early_stopping_without_restore_keeps_last_weights(rng):
    model, x, y = _overfit_problem(rng)
    log = WeightLog()
    model.fit(x, y, epochs=200, batch_size=8, validation_split=0.25, verbose=0,
              callbacks=[log, callbacks.EarlyStopping(patience=2)])
    for now, last in zip(model.get_weights(), log.epochs[-1]):
        np.testing.assert_array_equal(now, last)


def test_early_stopping_on_accuracy_uses_max_mode(rng):
    stop = callbacks.EarlyStopping(monitor="val_accuracy")
    assert stop._improved(0.9, 0.8) and not stop._improved(0.8, 0.9)
    assert callbacks.EarlyStopping(monitor="val_loss")._improved(0.1, 0.2)


def test_monitor_that_fit_does_not_log_fails_before_training(rng):
    model, x, y = _overfit_problem(rng)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"monitors 'val_loss', which fit\(\) does not log.*"
                                         r"Available: loss, accuracy.*validation_split="):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[callbacks.EarlyStopping()])
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_validation_split_is_the_last_fraction_before_shuffling(rng):
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(50, 1))
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    seen = []
    original = model.train_step

    def spy(xb, yb, sample_weight=None):
        seen.append(xb.copy())
        return original(xb, yb, sample_weight)

    model.train_step = spy
    history = model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    trained_on = np.concatenate(seen)
    assert trained_on.shape[0] == 80  # 40 training samples, 2 epochs
    assert set(map(tuple, trained_on.round(5))) == set(map(tuple, x[:40].astype(np.float32)
                                                           .round(5)))
    val_loss, val_mae = model.evaluate(x[40:], y[40:], verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-6)
    assert history.history["val_mae"][-1] == pytest.approx(val_mae, rel=1e-6)


def test_validation_data(rng):
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 1))
    xv, yv = rng.normal(size=(10, 3)), rng.normal(size=(10, 1))
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=2, validation_data=(xv, yv), verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, verbose=0))
    with pytest.raises(ValueError, match=r"`x_val` has 2 features"):
        model.fit(x, y, validation_data=(xv[:, :2], yv), verbose=0)
    with pytest.raises(ValueError, match="must be a tuple"):
        model.fit(x, y, validation_data=xv, verbose=0)
    with pytest.raises(ValueError, match=r"`validation_split` must be in \[0, 1\)"):
        model.fit(x, y, validation_split=1.5, verbose=0)


def test_nan_guard_stops_with_epoch_batch_and_untouched_weights(rng):
    x = rng.normal(size=(64, 4)) * 10
    y = rng.normal(size=(64, 1)) * 10
    model = Sequential([Dense(16, activation="relu", input_dim=4), Dense(16), Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=1e6), loss="mse")
    log = WeightLog()
    with pytest.raises(NonFiniteLossError) as info:
        model.fit(x, y, epochs=5, batch_size=8, callbacks=[log], verbose=0)
    error = info.value
    message = str(error)
    assert not math.isfinite(error.loss)
    assert f"at epoch {error.epoch + 1}, batch {error.batch + 1}" in message
    assert "learning_rate=1e+06" in message and "lower learning_rate" in message
    for now, before_bad_step in zip(model.get_weights(), log.batches[-1]):
        np.testing.assert_array_equal(now, before_bad_step)


def test_terminate_on_nan_stops_quietly(rng, capsys):
    x, y = rng.normal(size=(64, 4)) * 10, rng.normal(size=(64, 1)) * 10
    model = Sequential([Dense(16, activation="relu", input_dim=4), Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=1e6), loss="mse")
    log = WeightLog()
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0,
                        callbacks=[log, callbacks.TerminateOnNaN()])
    assert "invalid loss" in capsys.readouterr().out
    assert len(history.history.get("loss", [])) <= 1
    for now, before_bad_step in zip(model.get_weights(), log.batches[-1]):
        np.testing.assert_array_equal(now, before_bad_step)


def _seeded_run(seed):
    lw.utils.set_random_seed(seed)
    x = np.random.default_rng(0).normal(size=(64, 5))
    y = (x[:, 0] > 0).astype(int)
    model = Sequential([Dense(16, activation="relu", input_dim=5), Dropout(0.3), RReLU(),
                        Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    return model.get_weights()


def test_same_seed_gives_bit_identical_runs():
    first, second, other = _seeded_run(42), _seeded_run(42), _seeded_run(43)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))


def _deep(activation, init, depth=10):
    layers = [Dense(32, activation=activation, input_dim=20, kernel_initializer=init)]
    layers += [Dense(32, activation=activation, kernel_initializer=init)
               for _ in range(depth - 2)]
    layers.append(Dense(2, activation="softmax", kernel_initializer=init))
    model = Sequential(layers)
    model.compile(optimizer=optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model


def test_vanishing_gradients_are_visible_in_gradient_monitor(rng):
    x, y = rng.normal(size=(256, 20)), rng.integers(0, 2, 256)
    sigmoid = _deep("sigmoid", "glorot_uniform")
    monitor = callbacks.GradientMonitor()
    with pytest.warns(UserWarning, match="Vanishing gradients: .* layer 'dense"):
        history = sigmoid.fit(x, y, epochs=2, callbacks=[monitor], verbose=0)
    first, last = sigmoid.layers[0].name, sigmoid.layers[-1].name
    ratio = monitor.record[f"grad_norm/{last}"][-1] / monitor.record[f"grad_norm/{first}"][-1]
    assert ratio >= 100
    assert history.history[f"grad_norm/{first}"] == monitor.record[f"grad_norm/{first}"]

    relu = _deep("relu", "he_normal")
    monitor = callbacks.GradientMonitor()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        relu.fit(x, y, epochs=2, callbacks=[monitor], verbose=0)
    first, last = relu.layers[0].name, relu.layers[-1].name
    ratio = monitor.record[f"grad_norm/{last}"][-1] / monitor.record[f"grad_norm/{first}"][-1]
    assert ratio < 100


def test_dead_relus_and_saturation_are_reported(rng):
    x, y = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
    model = Sequential([Dense(10, activation="relu", input_dim=4, name="dying"),
                        Dense(10, activation="sigmoid", name="saturating"),
                        Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    bias = model.layers[0].params["bias"]
    bias[:7] = -100.0  # 7 of 10 units can never fire
    model.layers[1].params["kernel"][...] *= 500.0  # pushes most sigmoid units flat
    monitor = callbacks.GradientMonitor()
    with pytest.warns(UserWarning, match=r"Dead ReLUs: .*70% of the units of layer 'dying'"):
        history = model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
    assert history.history["dead/dying"] == [pytest.approx(0.7)]
    assert history.history["saturated/saturating"][0] > 0.5


def test_verbose_1_off_a_terminal_prints_one_line_per_epoch(rng, capsys):
    x, y = rng.normal(size=(640, 3)), rng.normal(size=(640, 1))
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=3, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and len(out.strip().splitlines()) == 3


def test_verbose_1_on_a_terminal_shows_a_tqdm_bar(rng):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    x, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 1))
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    logger = callbacks.ProgbarLogger(verbose=1, stream=stream)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[logger])
    text = stream.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text and "8/8" in text
    assert "mae: " in text


def test_sample_and_class_weights(rng):
    x, labels = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    model = Sequential([Dense(2, activation="softmax", input_dim=3)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    p = model.predict(x)
    per_sample = -np.log(p[np.arange(40), labels])
    w = rng.random(40)
    assert model.evaluate(x, labels, sample_weight=w, verbose=0) == pytest.approx(
        (per_sample * w).mean(), rel=1e-5)
    class_w = {0: 1.0, 1: 3.0}
    expected = (per_sample * np.where(labels == 1, 3.0, 1.0)).mean()
    assert model.evaluate(x, labels, class_weight=class_w, verbose=0) == pytest.approx(
        expected, rel=1e-5)
    loss = model.train_on_batch(x, labels, class_weight=class_w)
    assert loss == pytest.approx(expected, rel=1e-5)
    # zero weight on half the data == training on the other half alone
    half = Sequential([Dense(2, activation="softmax", input_dim=3)])
    half.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    full = Sequential([Dense(2, activation="softmax", input_dim=3)])
    full.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    full.set_weights(half.get_weights())
    mask = np.arange(40) < 20
    half.train_on_batch(x[mask], labels[mask])
    full.train_on_batch(x, labels, sample_weight=mask * 2.0)  # mean over 40 -> x2
    for a, b in zip(half.get_weights(), full.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"`class_weight` has key 5, but the classes are 0..1"):
        model.fit(x, labels, class_weight={5: 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"one weight per sample, shape \(40,\)"):
        model.fit(x, labels, sample_weight=np.ones(3), verbose=0)


def test_learning_rate_scheduler_and_reduce_on_plateau(rng):
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 1))
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])

    model.compile(optimizer=optimizers.SGD(1e-12), loss="mse")  # no progress at all
    plateau = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=0)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[plateau])
    lrs = history.history["learning_rate"]
    assert lrs[0] == pytest.approx(1e-12) and lrs[-1] < lrs[0]
    scheduled = optimizers.SGD(optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    model.compile(optimizer=scheduled, loss="mse")
    with pytest.raises(ValueError, match="is a schedule"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ReduceLROnPlateau("loss")])


def test_csv_logger_and_lambda_callback(rng, tmp_path):
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 1))
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    ends = []
    path = tmp_path / "log.csv"
    model.fit(x, y, epochs=3, verbose=0, callbacks=[
        callbacks.CSVLogger(path), callbacks.LambdaCallback(on_epoch_end=lambda e, logs:
                                                            ends.append(e))])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "loss", "mae"] and len(rows) == 4
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2] == ends
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    assert len(list(csv.reader(path.open()))) == 6
    with pytest.raises(ValueError, match="Unknown hook 'on_epoch_finish'"):
        callbacks.LambdaCallback(on_epoch_finish=print)


def test_stop_training_from_a_callback(rng):
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 1))
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse")

    def stop(epoch, logs):
        if epoch == 1:
            model.stop_training = True

    history = model.fit(x, y, epochs=10, verbose=0,
                        callbacks=[callbacks.LambdaCallback(on_epoch_end=stop)])
    assert len(history.history["loss"]) == 2
