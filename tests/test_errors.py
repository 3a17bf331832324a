"""Bad input fails before any training, with a message naming the argument and the value."""

import numpy as np
import pytest

from layerwise import Sequential, initializers, optimizers
from layerwise.layers import Dense


def _classifier(loss="sparse_categorical_crossentropy", units=3):
    model = Sequential([Dense(8, activation="relu", input_dim=4),
                        Dense(units, activation="softmax")])
    model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng):
    return rng.normal(size=(20, 4)), rng.integers(0, 3, 20)


def _untouched(model, action):
    """Run ``action``, which must raise, and check that no weight changed."""
    before = model.get_weights()
    action()
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_seed_typo_in_loss_name():
    model = Sequential([Dense(2, input_dim=2)])
    with pytest.raises(ValueError) as info:
        model.compile(loss="categotial_crossentropy", optimizer="sgd", metrics=["accuracy"])
    msg = str(info.value)
    assert "Unknown loss 'categotial_crossentropy'" in msg
    assert "Did you mean 'categorical_crossentropy'?" in msg
    assert "Valid names are: " in msg and "mean_squared_error" in msg


@pytest.mark.parametrize(("kind", "bad", "suggestion"), [
    ("optimizer", "sdg", "sgd"), ("metrics", "acuracy", "accuracy"),
])
def test_unknown_optimizer_and_metric_names(kind, bad, suggestion):
    model = Sequential([Dense(2, input_dim=2)])
    kwargs = {"loss": "mse", "optimizer": "sgd", "metrics": None}
    kwargs[kind] = [bad] if kind == "metrics" else bad
    with pytest.raises(ValueError, match=f"Did you mean '{suggestion}'.*Received: {kind}='{bad}'"):
        model.compile(**kwargs)


def test_unknown_activation_and_initializer_name_the_argument():
    with pytest.raises(ValueError, match=r"Did you mean 'relu'.*Received: activation='rellu'"):
        Dense(3, activation="rellu")
    with pytest.raises(ValueError, match="Received: kernel_initializer='glorot_unifrom'"):
        Dense(3, kernel_initializer="glorot_unifrom")
    with pytest.raises(ValueError, match="Did you mean 'he_normal'"):
        initializers.get("he_normall")


def test_fit_before_compile(data):
    model = Sequential([Dense(3, input_dim=4)])
    with pytest.raises(RuntimeError, match=r"must call compile\(\) before fit\(\)"):
        model.fit(*data, verbose=0)
    with pytest.raises(RuntimeError, match=r"before evaluate\(\)"):
        model.evaluate(*data, verbose=0)


def test_x_and_y_of_different_lengths(data):
    x, y = data
    model = _classifier()
    with pytest.raises(ValueError, match=r"same number of samples. Received: x.shape\[0\]=20, "
                                         r"y.shape\[0\]=19"):
        _untouched(model, lambda: model.fit(x, y[:19], verbose=0))


def test_wrong_feature_count(data):
    x, y = data
    model = _classifier()
    with pytest.raises(ValueError, match=r"`x` has 5 features, but the model expects "
                                         r"input_dim=4. Received: x.shape=\(20, 5\)"):
        _untouched(model, lambda: model.fit(np.hstack([x, x[:, :1]]), y, verbose=0))
    with pytest.raises(ValueError, match="has 5 features"):
        model.predict(np.ones((2, 5)))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["x", "y"])
def test_nan_or_inf_in_data(value, where, rng):
    model = _classifier(loss="mse", units=1)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 1))
    (x if where == "x" else y)[3, 0] = value
    with pytest.raises(ValueError, match=rf"`{where}` must hold finite numbers, but "
                                         rf"{where}\[3, 0\] is {value}"):
        _untouched(model, lambda: model.fit(x, y, verbose=0))


def test_class_index_beyond_output_units(data):
    x, y = data
    y = y.copy()
    y[5] = 3
    model = _classifier()
    with pytest.raises(ValueError, match=r"class index 3, but the output layer has units=3.*"
                                         r"class indices in \[0, 2\]"):
        _untouched(model, lambda: model.fit(x, y, verbose=0))
    y[5] = -1
    with pytest.raises(ValueError, match="class index -1"):
        model.fit(x, y, verbose=0)


def test_one_hot_width_differs_from_units(data):
    x, labels = data
    model = _classifier(loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"one-hot with width 4, but the output layer has "
                                         r"units=3.*Received: y.shape=\(20, 4\)"):
        _untouched(model, lambda: model.fit(x, np.eye(4)[labels], verbose=0))
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(x, labels, verbose=0)  # integer labels given to the one-hot loss


def test_binary_labels_out_of_range(data):
    x, _ = data
    model = _classifier(loss="binary_crossentropy", units=1)
    with pytest.raises(ValueError, match=r"labels in \[0, 1\].*from 0 to 2"):
        model.fit(x, np.arange(20) % 3, verbose=0)


def test_regression_target_shape(data, rng):
    x, _ = data
    model = _classifier(loss="mse", units=2)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\).*Received: y.shape=\(20, 3\)"):
        model.fit(x, rng.normal(size=(20, 3)), verbose=0)


def test_non_numeric_and_one_dimensional_x():
    model = _classifier()
    with pytest.raises(TypeError, match="`x` must hold numbers; it holds strings"):
        model.fit([["a", "b", "c", "d"]], [0], verbose=0)
    with pytest.raises(ValueError, match=r"`x` must be 2-D.*x.reshape\(-1, 1\)"):
        model.fit(np.ones(4), [0, 1, 2, 0], verbose=0)


@pytest.mark.parametrize(("arg", "value", "pattern"), [
    ("batch_size", 0, "`batch_size` must be a positive integer. Received: batch_size=0"),
    ("epochs", -1, "`epochs` must be a non-negative integer. Received: epochs=-1"),
    ("verbose", 3, "`verbose` must be 0, 1, 2 or 'auto'. Received: verbose=3"),
])
def test_bad_fit_arguments(arg, value, pattern, data):
    with pytest.raises(ValueError, match=pattern):
        _classifier().fit(*data, **{arg: value})


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match=r"Received: learning_rate=-0\.1"):
        optimizers.SGD(learning_rate=-0.1)
    with pytest.raises(ValueError, match=r"Received: momentum=1\.5"):
        optimizers.SGD(momentum=1.5)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="Received: input_dim=0"):
        Dense(3, input_dim=0)
    with pytest.raises(ValueError, match="Only the first layer takes `input_dim`"):
        Sequential([Dense(3, input_dim=2), Dense(2, input_dim=3)])
    with pytest.raises(TypeError, match="must be a layerwise Layer instance"):
        Sequential().add("dense")
