"""The facts the seed documents state, shown on the engine (SPEC §1, §2, §5, §8, §9)."""

import numpy as np
import pytest

import layerwise as lw
from layerwise import initializers
from layerwise.layers import Dense
from layerwise.models import Sequential


def test_worked_example_2x2_sigmoid():
    layer = Dense(2, activation="sigmoid", input_dim=2)
    model = Sequential([layer])
    # the seed's W (2x2, rows = neurons) is our kernel transposed: kernel is (inputs, units)
    model.set_weights([np.array([[1.0, -2.0], [-1.0, 1.0]]).T, np.array([1.0, 0.0])])
    out = model.predict(np.array([[1.0, -1.0]]))[0]
    np.testing.assert_allclose(np.round(out, 2), [0.98, 0.12])


def test_symmetry_constant_init_keeps_hidden_units_identical(rng):
    x = rng.normal(size=(64, 3))
    y = (x[:, :1] * x[:, 1:2] > 0).astype(float)

    def train(init):
        model = Sequential([Dense(5, activation="tanh", input_dim=3, kernel_initializer=init),
                            Dense(1, activation="sigmoid", kernel_initializer=init)])
        model.compile(optimizer=lw.optimizers.SGD(0.5), loss="binary_crossentropy")
        model.fit(x, y, batch_size=16, epochs=20, verbose=0)
        return model.get_weights()[0]  # first kernel, (inputs, hidden units)

    constant = train(initializers.Constant(0.3))
    assert np.ptp(constant, axis=1).max() < 1e-6  # every hidden unit's column is the same
    assert not np.allclose(constant, 0.3)  # ...even though the weights did change
    random = train("glorot_uniform")
    assert np.ptp(random, axis=1).min() > 1e-2


def test_linear_activations_collapse_to_one_linear_map(rng):
    model = Sequential([Dense(7, input_dim=4, bias_initializer="random_normal"),
                        Dense(6, activation="linear", bias_initializer="random_normal"),
                        Dense(5, activation="identity", bias_initializer="random_normal"),
                        Dense(3, bias_initializer="random_normal")], name="deep_linear")
    w = model.get_weights()
    kernel, bias = np.eye(4), np.zeros(4)
    for k, b in zip(w[0::2], w[1::2]):
        kernel, bias = kernel @ k, bias @ k + b
    x = rng.normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), x @ kernel + bias, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hidden", [2, 4])
def test_xor_is_learned_by_a_small_network(hidden):
    lw.utils.set_random_seed(7)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0], dtype=float)
    model = Sequential([Dense(hidden, activation="tanh", input_dim=2),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer=lw.optimizers.SGD(0.5, momentum=0.9), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=4, epochs=500, verbose=0)
    _loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy == 1.0
    np.testing.assert_array_equal(model.predict(x)[:, 0] > 0.5, y > 0.5)


def test_a_straight_line_cannot_learn_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0], dtype=float)
    model = Sequential([Dense(1, activation="sigmoid", input_dim=2)])  # logistic regression
    model.compile(optimizer=lw.optimizers.SGD(0.5), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=4, epochs=500, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] <= 0.75


def test_seed_keras_example_runs_line_for_line(rng, capsys):
    x_train = rng.random((300, 10))
    y_train = np.eye(10)[rng.integers(0, 10, 300)]
    x_test = rng.random((50, 10))
    y_test = np.eye(10)[rng.integers(0, 10, 50)]
    # --- the seed's code, with keras replaced by layerwise ---
    model = Sequential()
    model.add(Dense(input_dim=10, units=500, activation="sigmoid"))
    model.add(Dense(units=500, activation="sigmoid"))
    model.add(Dense(units=10, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=100, epochs=20)
    score = model.evaluate(x_test, y_test)
    result = model.predict(x_test)
    # ---
    assert len(score) == 2 and 0 <= score[1] <= 1 and score[0] > 0
    assert result.shape == (50, 10)
    np.testing.assert_allclose(result.sum(axis=1), 1.0, rtol=1e-5)
    assert "Epoch 20/20" in capsys.readouterr().out


def test_package_level_api(rng):
    model = lw.Sequential([lw.layers.Dense(3, input_dim=2, activation="relu"),
                           lw.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    assert model.count_params() == 2 * 3 + 3 + 3 + 1
