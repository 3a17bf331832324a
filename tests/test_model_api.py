"""Sequential's Keras-shaped API: batching, history, weights, summary, metrics."""

import numpy as np
import pytest

import layerwise as lw
from layerwise.callbacks import Callback
from layerwise.layers import Dense, PReLU
from layerwise.models import Sequential


class CountSteps(Callback):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def on_train_batch_end(self, batch, logs=None):
        self.sizes.append(logs["size"])


def _regression(rng, n=10):
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 1))


def _model():
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


@pytest.mark.parametrize(("batch_size", "sizes"), [(1, [1] * 10), (10, [10]), (4, [4, 4, 2]),
                                                   (64, [10])])
def test_batch_size_sets_the_kind_of_gradient_descent(batch_size, sizes, rng):
    x, y = _regression(rng)
    counter = CountSteps()
    model = _model()
    model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, callbacks=[counter])
    assert counter.sizes == sizes * 2  # the last partial batch is used, not dropped
    assert model.optimizer.iterations == 2 * len(sizes)


def test_each_epoch_reshuffles(rng):
    x, y = _regression(rng, n=12)
    seen = []

    class Record(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            pass

    model = _model()
    original = model.train_step

    def spy(xb, yb, sample_weight=None):
        seen.append(xb[:, 0].copy())
        return original(xb, yb, sample_weight)

    model.train_step = spy
    model.fit(x, y, batch_size=12, epochs=3, verbose=0)
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    assert all(np.array_equal(np.sort(s), np.sort(x[:, 0].astype(np.float32))) for s in seen)
    seen.clear()
    model.fit(x, y, batch_size=12, epochs=2, verbose=0, shuffle=False)
    np.testing.assert_array_equal(seen[0], x[:, 0].astype(np.float32))


def test_history_records_loss_and_metrics_per_epoch(rng):
    x, y = _regression(rng, n=40)
    model = _model()
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    assert len(history.history["loss"]) == 5 and history.epoch == [0, 1, 2, 3, 4]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_evaluate_returns_float_without_metrics_and_list_with(rng):
    x, y = _regression(rng)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse")
    value = model.evaluate(x, y, verbose=0)
    assert isinstance(value, float)
    expected = np.mean((model.predict(x) - y) ** 2)
    assert value == pytest.approx(expected, rel=1e-5)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mse"])
    loss, mae, mse = model.evaluate(x, y, batch_size=3, verbose=0)
    assert mse == pytest.approx(loss, rel=1e-6)
    assert mae == pytest.approx(np.mean(np.abs(model.predict(x) - y)), rel=1e-5)


def test_train_on_batch_returns_loss_before_the_update(rng):
    x, y = _regression(rng)
    model = _model()
    before = model.evaluate(x, y, verbose=0)[0]
    loss, _mae = model.train_on_batch(x, y)
    assert loss == pytest.approx(before, rel=1e-6)
    assert model.evaluate(x, y, verbose=0)[0] < before


def test_input_dim_is_inferred_on_first_fit_or_predict(rng):
    x, y = _regression(rng)
    model = Sequential([Dense(4, activation="relu"), Dense(2)])
    assert not model.built
    assert model.predict(x).shape == (10, 2)
    assert model.built and model.input_dim == 3
    model2 = Sequential([Dense(4), Dense(1)])
    model2.compile(optimizer="sgd", loss="mse")
    model2.fit(x, y, verbose=0)
    assert model2.layers[0].params["kernel"].shape == (3, 4)
    model3 = Sequential([Dense(4), Dense(1)])
    model3.build(input_shape=(None, 3))
    assert model3.count_params() == 3 * 4 + 4 + 4 + 1


def test_input_shape_argument(rng):
    model = Sequential([Dense(4, input_shape=(3,)), Dense(1)])
    assert model.built and model.input_dim == 3


def test_predict_batch_size_does_not_change_outputs(rng):
    x = rng.normal(size=(37, 3))
    model = _model()
    # equal up to rounding: BLAS may sum in another order for another batch shape
    np.testing.assert_allclose(model.predict(x, batch_size=5), model.predict(x, batch_size=100),
                               rtol=1e-6, atol=1e-7)


def test_get_set_weights_order_and_round_trip(rng):
    model = Sequential([Dense(4, input_dim=3), PReLU(), Dense(2, use_bias=False)])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 4), (4,), (4,), (4, 2)]
    new = [rng.normal(size=s) for s in shapes]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_allclose(a, b.astype(np.float32))
        assert a.dtype == np.float32
    copy = model.get_weights()
    copy[0][...] = 0  # get_weights returns copies
    assert np.abs(model.get_weights()[0]).sum() > 0
    with pytest.raises(ValueError, match=r"has 4 weight arrays\. Received: a list of 3"):
        model.set_weights(new[:3])
    with pytest.raises(ValueError, match=r"has shape \(3, 4\). Received: shape \(4, 3\)"):
        model.set_weights([new[0].T, *new[1:]])


def test_summary_lists_layers_shapes_and_params():
    model = Sequential([Dense(500, input_dim=10, activation="sigmoid"), Dense(10)], name="seed")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 500)" in text and "5500" in text and "5010" in text
    assert "Total params: 10,510" in text
    assert model.count_params() == 10510


@pytest.mark.parametrize(("loss", "units", "metric_class"), [
    ("sparse_categorical_crossentropy", 3, "SparseCategoricalAccuracy"),
    ("categorical_crossentropy", 3, "CategoricalAccuracy"),
    ("binary_crossentropy", 1, "BinaryAccuracy"),
    ("mse", 1, "BinaryAccuracy"),
    ("mse", 4, "CategoricalAccuracy"),
])
def test_accuracy_adapts_to_loss_and_output(loss, units, metric_class):
    model = Sequential([Dense(units, input_dim=2)])
    model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    assert type(model.metrics[0]).__name__ == metric_class
    assert model.metrics[0].name == "accuracy"


def test_float64_model_keeps_float64(rng, float64):
    x, y = _regression(rng)
    model = _model()
    model.fit(x, y, verbose=0)
    assert all(p.dtype == np.float64 for p in model.params)
    assert model.predict(x).dtype == np.float64


def test_config_round_trip_rebuilds_architecture():
    model = Sequential([Dense(4, input_dim=3, activation="elu"), PReLU(), Dense(2)])
    clone = Sequential.from_config(model.get_config())
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    assert clone.get_config() == model.get_config()
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]


def test_gradient_reducer_runs_between_backward_and_update(rng):
    x, y = _regression(rng)
    model = _model()
    before = model.get_weights()
    model.gradient_reducer = lambda grads: [g.fill(0) for g in grads]
    model.fit(x, y, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)  # zeroed gradients: no change at all


def test_verbose_prints_one_line_per_epoch(rng, capsys):
    x, y = _regression(rng)
    _model().fit(x, y, epochs=3, verbose=2)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3 and out[-1].startswith("Epoch 3/3 - ") and " - loss: " in out[-1]
    _model().fit(x, y, epochs=3, verbose=0)
    assert capsys.readouterr().out == ""


def test_package_exports():
    assert lw.Sequential is Sequential
    assert lw.optimizers.get("sgd").learning_rate == 0.01


def test_loss_weights_scale_the_data_loss_and_its_gradient(rng, tmp_path):
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 1))
    plain, weighted = _model(), _model()
    weighted.compile(optimizer="sgd", loss="mse", loss_weights=[2.5])
    plain.build(3)
    weighted.build(3)
    weighted.set_weights(plain.get_weights())
    loss, _ = plain.compute_gradients(x, y)
    loss2, _ = weighted.compute_gradients(x, y)
    assert loss2 == pytest.approx(2.5 * loss)
    for g, g2 in zip(plain.grads, weighted.grads):
        np.testing.assert_allclose(g2, 2.5 * g, rtol=1e-6)
    assert weighted.evaluate(x, y, verbose=0) == pytest.approx(2.5 * plain.evaluate(
        x, y, verbose=0)[0], rel=1e-6)  # plain also reports its metric
    weighted.save(tmp_path / "m.safetensors")
    assert lw.load_model(tmp_path / "m.safetensors").loss_weight == 2.5
    with pytest.raises(ValueError, match="`loss_weights` must be a positive number"):
        weighted.compile(optimizer="sgd", loss="mse", loss_weights=0)
    with pytest.raises(ValueError, match="one number for a model with one output"):
        weighted.compile(optimizer="sgd", loss="mse", loss_weights=[1, 2])


def test_a_random_state_gives_the_epoch_orders(rng):
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    runs = []
    for _ in range(2):
        model = _model()
        model.build(3)
        model.set_weights([np.full_like(w, 0.1) for w in model.get_weights()])
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, seed=np.random.RandomState(5))
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
