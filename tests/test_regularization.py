"""L1/L2 penalties and dropout (SPEC §7)."""

import numpy as np
import pytest

from _gradcheck import numerical_gradient, relative_error
from layerwise import Sequential, optimizers, regularizers
from layerwise.layers import Dense, Dropout, Maxout


def _model(lr=0.01, **reg):
    model = Sequential([Dense(5, activation="tanh", input_dim=3, **reg),
                        Maxout(3, pieces=2, **reg), Dense(2, **reg)])
    model.compile(optimizer=optimizers.SGD(lr), loss="mse")
    return model


@pytest.mark.parametrize("reg", [regularizers.l1(0.01), regularizers.l2(0.02),
                                 regularizers.l1_l2(0.01, 0.03), "l2"])
def test_penalty_is_in_the_loss_and_gradients_pass_finite_differences(reg, float64, rng):
    model = _model(kernel_regularizer=reg, bias_regularizer=reg)
    for layer in model.layers:  # nonzero biases so their penalty matters too
        layer.params["bias"][...] = rng.normal(size=layer.params["bias"].shape)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    model._begin("test")
    x, y, _ = model._prepare(x, y)
    penalty = sum(regularizers.get(reg)(p) for p in model.params)
    data_loss = model.loss(y, model.forward(x))
    loss, _ = model.compute_gradients(x, y)
    assert penalty > 0 and loss == pytest.approx(data_loss + penalty, rel=1e-12)

    def total():
        return model.loss(y, model.forward(x)) + model.regularization(x.shape[0])

    for param, grad in zip(model.params, [g.copy() for g in model.grads]):
        assert relative_error(grad, numerical_gradient(total, param)) < 1e-6


def test_fit_reports_loss_with_penalty(rng):
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    plain = _model()
    weighted = _model(kernel_regularizer=regularizers.l2(0.5))
    weighted.set_weights(plain.get_weights())
    penalty = sum(0.5 * (w**2).sum() for w in weighted.get_weights()[0::2])
    assert weighted.evaluate(x, y, verbose=0) == pytest.approx(
        plain.evaluate(x, y, verbose=0) + penalty, rel=1e-5)
    history = weighted.fit(x, y, epochs=1, batch_size=20, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(plain.evaluate(x, y, verbose=0) + penalty,
                                                       rel=1e-5)


def test_l2_shrinks_weights(rng):
    x, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 2))
    plain, decayed = _model(0.05), _model(0.05, kernel_regularizer=regularizers.l2(0.1))
    decayed.set_weights(plain.get_weights())
    for model in (plain, decayed):
        model.fit(x, y, epochs=50, verbose=0)
    norm = [sum((w**2).sum() for w in m.get_weights()[0::2]) for m in (plain, decayed)]
    assert norm[1] < 0.5 * norm[0]


def test_l1_drives_weights_towards_zero(rng):
    x, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 2))
    plain = _model(0.05)
    sparse = _model(0.05, kernel_regularizer=regularizers.l1(0.05))
    sparse.set_weights(plain.get_weights())
    for model in (plain, sparse):
        model.fit(x, y, epochs=100, verbose=0)
    def near_zero(m):
        kernels = np.concatenate([w.ravel() for w in m.get_weights()[0::2]])
        return np.mean(np.abs(kernels) < 0.02)

    assert near_zero(sparse) > 0.3 and near_zero(sparse) > 3 * near_zero(plain)


def test_regularizer_names_and_errors():
    assert isinstance(regularizers.get("l1"), regularizers.L1)
    assert regularizers.get(regularizers.serialize(regularizers.l1_l2(0.1, 0.2))).l2 == 0.2
    with pytest.raises(ValueError, match="Did you mean 'l2'"):
        Dense(3, kernel_regularizer="l22")
    with pytest.raises(ValueError, match="Received: l2=-1"):
        regularizers.l2(-1)


# ---- dropout ----

def test_dropout_is_identity_at_inference(rng):
    layer = Dropout(0.5)
    layer.build(10)
    x = rng.normal(size=(4, 10))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    model = Sequential([Dense(4, input_dim=10), Dropout(0.9), Dense(1)])
    np.testing.assert_array_equal(model.predict(x), model.predict(x))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_training_drop_rate_matches_rate(rate, rng):
    layer = Dropout(rate, seed=1)
    x = np.ones((1000, 1000))
    y = layer(x, training=True)
    assert np.mean(y == 0) == pytest.approx(rate, abs=0.005)
    np.testing.assert_allclose(np.unique(y), [0.0, 1.0 / (1.0 - rate)])
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, y)  # gradient flows through the kept units only


def test_masks_are_redrawn_every_step():
    layer = Dropout(0.5, seed=0)
    x = np.ones((1, 1000))
    assert not np.array_equal(layer(x, training=True), layer(x, training=True))


def test_inverted_dropout_equals_seed_dropout_in_expectation():
    """Seed: train with unscaled masks, multiply by (1-p) at test. Ours: scale by 1/(1-p) in
    training, identity at test. Same masks -> outputs differ by exactly 1/(1-p), and both
    forms' training outputs average to their inference outputs."""
    p = 0.3
    x = np.linspace(-2, 2, 50)[None, :].repeat(20000, axis=0)
    layer = Dropout(p, seed=5)
    ours = layer(x, training=True)
    mask = ours != 0
    seed_form = x * mask
    np.testing.assert_allclose(ours, seed_form / (1 - p))
    np.testing.assert_allclose(ours.mean(axis=0), layer(x, training=False)[0], atol=0.03)
    np.testing.assert_allclose(seed_form.mean(axis=0), (1 - p) * x[0], atol=0.03)
    # a following Dense layer: inverted dropout with kernel W == seed dropout with W/(1-p)
    w = np.random.default_rng(0).normal(size=(50, 4))
    np.testing.assert_allclose(ours @ w, seed_form @ (w / (1 - p)))
    np.testing.assert_allclose(layer(x[:1], training=False) @ w, ((1 - p) * x[:1]) @ (w / (1 - p)))


def test_dropout_on_the_input_layer_trains(rng):
    x = rng.normal(size=(100, 6))
    y = (x[:, :1] > 0).astype(float)
    model = Sequential([Dropout(0.2, input_dim=6), Dense(8, activation="relu"),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=60, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.9


def test_dropout_rejects_bad_rate():
    with pytest.raises(ValueError, match=r"`rate` must be a number in \[0, 1\). Received: rate=1"):
        Dropout(1)


def test_per_sample_l2_is_scikit_learns_alpha(float64, rng):
    """½α‖W‖² per batch of n samples: the penalty and its gradient divide by n."""
    alpha = 0.3
    model = _model(kernel_regularizer=regularizers.L2PerSample(alpha))
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    model._begin("test")
    x, y, _ = model._prepare(x, y)
    kernels = [layer.params["kernel"] for layer in model.layers]
    penalty = sum(0.5 * alpha * (k**2).sum() for k in kernels) / 8
    loss, _ = model.compute_gradients(x, y)
    assert loss == pytest.approx(model.loss(y, model.forward(x)) + penalty, rel=1e-12)

    def total():
        return model.loss(y, model.forward(x)) + model.regularization(x.shape[0])

    for param, grad in zip(model.params, [g.copy() for g in model.grads]):
        assert relative_error(grad, numerical_gradient(total, param)) < 1e-6
    assert regularizers.get({"class_name": "l2_per_sample", "config": {"alpha": 0.3}}
                            ).alpha == 0.3
