"""layerwise.sklearn.MLPClassifier/MLPRegressor against scikit-learn's classes, step for step,
and what layerwise adds (dropout, activations, optimizers, sparse batches, class weights)."""

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="the estimators need scikit-learn")
pytest.importorskip("scipy", reason="solver='lbfgs' needs SciPy")
import scipy.sparse as sp  # noqa: E402
from sklearn.datasets import load_digits, make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

import layerwise.sklearn as lw_sklearn  # noqa: E402
from layerwise import layers, optimizers  # noqa: E402
from layerwise.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _quiet(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(n_class=4, return_X_y=True)
    return x[:240] / 16.0, y[:240]


@pytest.mark.parametrize("settings", [
    {"learning_rate": "constant", "momentum": 0.0},
    {"learning_rate": "invscaling", "momentum": 0.9, "nesterovs_momentum": True},
    {"learning_rate": "constant", "momentum": 0.5, "nesterovs_momentum": False},
])
def test_sgd_follows_scikit_learn_step_for_step(digits, settings):
    """Same random_state: the same starting weights; no shuffling: the same batches. Then
    alpha, batch_size="auto", momentum and the schedules must give scikit-learn's weights."""
    x, y = digits
    common = dict(hidden_layer_sizes=(12, 7), activation="tanh", solver="sgd", alpha=0.01,
                  batch_size=50, learning_rate_init=0.05, max_iter=8, shuffle=False,
                  random_state=3, tol=0.0, **settings)
    ours, theirs = _quiet(MLPClassifier(**common), x, y), _quiet(SkClassifier(**common), x, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    assert ours.t_ == theirs.t_ and ours.n_iter_ == theirs.n_iter_
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)


def test_regression_sgd_with_sample_weight_matches_on_full_batches():
    x, y = make_regression(n_samples=80, n_features=6, noise=5.0, random_state=0)
    y = y / y.std()
    weights = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    common = dict(hidden_layer_sizes=(9,), solver="sgd", alpha=0.3, batch_size=80,
                  learning_rate_init=0.01, max_iter=6, shuffle=False, random_state=1, tol=0.0)
    ours = _quiet(MLPRegressor(**common), x, y, sample_weight=weights)
    theirs = _quiet(SkRegressor(**common), x, y, sample_weight=weights)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_lbfgs_reaches_scikit_learns_solution(digits):
    x, y = digits
    common = dict(hidden_layer_sizes=(10,), solver="lbfgs", alpha=1e-3, max_iter=60,
                  random_state=0)
    ours, theirs = _quiet(MLPClassifier(**common), x, y), _quiet(SkClassifier(**common), x, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), atol=1e-6)


def test_multioutput_regression_loss_is_the_sum_over_outputs():
    x, y = make_regression(n_samples=60, n_features=4, n_targets=3, random_state=2)
    y = y / y.std(axis=0)
    reg = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", alpha=0.0, max_iter=1,
                       random_state=0)
    _quiet(reg, x, y)
    theta = reg._pack()
    loss, grad = reg._loss_grad_lbfgs(theta, x, y, None)
    assert loss == pytest.approx(0.5 * np.mean(np.sum((reg.predict(x) - y) ** 2, axis=1)))
    eps = 1e-6
    for i in [0, 7, len(theta) - 1]:
        step = np.zeros_like(theta)
        step[i] = eps
        numeric = (reg._loss_grad_lbfgs(theta + step, x, y, None)[0]
                   - reg._loss_grad_lbfgs(theta - step, x, y, None)[0]) / (2 * eps)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sparse_input_equals_dense(digits, solver, monkeypatch):
    x, y = digits
    if solver == "lbfgs":  # several row blocks, each densified on its own
        monkeypatch.setattr(lw_sklearn, "_CHUNK_BYTES", 8 * x.shape[1] * 50)
    common = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, shuffle=False,
                  random_state=0)
    dense = _quiet(MLPClassifier(**common), x, y)
    sparse = _quiet(MLPClassifier(**common), sp.csr_matrix(x), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(dense.predict(x), sparse.predict(sp.csc_matrix(x)))


def test_coefs_are_the_networks_own_arrays(digits):
    x, y = digits
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0), x, y)
    dense = [layer for layer in clf.model_.layers if isinstance(layer, layers.Dense)]
    assert all(c is layer.params["kernel"] for c, layer in zip(clf.coefs_, dense))
    before = clf.predict_proba(x)
    clf.coefs_[0][...] = 0.0  # a change to coefs_ is a change to the network
    assert not np.allclose(before, clf.predict_proba(x))
    clf.coefs_ = [np.ones_like(c) for c in clf.coefs_]  # assigned arrays: used from the
    clf.predict(x)                                     # next predict or fit on
    np.testing.assert_array_equal(dense[0].params["kernel"], 1.0)


def test_tol_stopping_and_convergence_warning(digits):
    x, y = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(x, y)
    clf = MLPClassifier(hidden_layer_sizes=(5,), tol=10.0, n_iter_no_change=2, max_iter=50,
                        random_state=0).fit(x, y)
    assert clf.n_iter_ == 4 and clf._no_improvement_count == 3  # epoch 1 sets best_loss_


def test_early_stopping_keeps_the_best_validation_weights(digits):
    x, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3,
                        max_iter=200, learning_rate_init=0.05, random_state=0).fit(x, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_what_layerwise_adds(digits):
    x, y = digits
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(16, 8), activation=["gelu", "elu"],
                               dropout=[0.2, 0.0], optimizer=optimizers.Nadam(0.01),
                               kernel_initializer="he_uniform", class_weight="balanced",
                               dtype="float32", max_iter=30, random_state=0), x, y)
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dense"]
    assert clf.coefs_[0].dtype == np.float32 and isinstance(clf._optimizer, optimizers.Nadam)
    assert clf.score(x, y) > 0.9
    again = _quiet(MLPClassifier(hidden_layer_sizes=(16, 8), activation=["gelu", "elu"],
                                 dropout=[0.2, 0.0], optimizer="nadam",
                                 kernel_initializer="he_uniform", max_iter=2,
                                 random_state=0), x, y)
    twice = _quiet(MLPClassifier(**again.get_params()), x, y)
    np.testing.assert_array_equal(again.coefs_[0], twice.coefs_[0])  # random_state rules


def test_poisson_regression_uses_the_exponential_output():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(200, 2))
    y = rng.poisson(np.exp(1 + x @ np.array([0.5, -0.3])))
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), solver="lbfgs",
                       random_state=0).fit(x, y)
    assert reg.out_activation_ == "exp" and reg.model_.layers[-1].activation.name == \
        "exponential"
    assert np.all(reg.predict(x) > 0)
    with pytest.raises(ValueError, match="non-negative"):
        reg.fit(x, -np.ones(200))


def test_clear_errors():
    x, y = make_classification(n_samples=30, n_features=4, random_state=0)
    with pytest.raises(ValueError, match=r"`solver` must be one of .* Did you mean 'adam'"):
        MLPClassifier(solver="adm").fit(x, y)
    with pytest.raises(ValueError, match="Did you mean 'relu'"):
        MLPClassifier(activation="rellu").fit(x, y)
    with pytest.raises(ValueError, match=r"`learning_rate` must be one of"):
        MLPClassifier(learning_rate=0.01).fit(x, y)
    with pytest.raises(ValueError, match=r"`max_iter` must be an integer .* max_iter=0"):
        MLPClassifier(max_iter=0).fit(x, y)
    with pytest.raises(ValueError, match="`dropout` needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.3).fit(x, y)
    with pytest.raises(ValueError, match="one entry per hidden layer"):
        MLPClassifier(hidden_layer_sizes=(3, 3), activation=["relu"]).fit(x, y)
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
