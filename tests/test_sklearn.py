"""MLPClassifier, MLPRegressor, DenseClassifier and DenseRegressor: scikit-learn's own
estimator checks, and use in its tools (scikit-learn's MLP test module runs against them in
test_sklearn_suite.py).

Two checks do not pass as such, each for a stated reason:
- check_array_api_input is skipped by scikit-learn itself unless SCIPY_ARRAY_API=1 is set;
  these estimators take NumPy-convertible input (their array_api_support tag is False).
- check_sample_weight_equivalence_on_dense_data is an expected failure for DenseClassifier
  and DenseRegressor (batches of 32): see SAMPLE_WEIGHT_REASON below. The MLP estimators'
  batch_size="auto" makes the check's data one batch, and there weights are exact.
"""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="the estimators need scikit-learn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_classification, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import layerwise.sklearn as lw_sklearn  # noqa: E402
from layerwise.sklearn import DenseClassifier, DenseRegressor  # noqa: E402

LayerwiseMLPClassifier, LayerwiseMLPRegressor = lw_sklearn.MLPClassifier, lw_sklearn.MLPRegressor

SAMPLE_WEIGHT_REASON = (
    "Training is stochastic mini-batch gradient descent: a sample repeated k times lands in "
    "up to k different shuffled batches, while a weight of k scales one sample's gradient in "
    "one batch, so the two fits agree in expectation but not to 1e-7 (the same holds for "
    "SGDClassifier and MLPClassifier). tests/test_sklearn.py checks exactly that weights "
    "of 1 change nothing and that a sample of weight 0 has no influence."
)


def _expected_failures(estimator):
    if isinstance(estimator, (LayerwiseMLPClassifier, LayerwiseMLPRegressor)) and \
            not isinstance(estimator, (DenseClassifier, DenseRegressor)):
        return {}  # batch_size="auto" covers the check's 15 to 60 rows: one batch, exact
    return {"check_sample_weight_equivalence_on_dense_data": SAMPLE_WEIGHT_REASON}


@parametrize_with_checks([DenseClassifier(random_state=0), DenseRegressor(random_state=0),
                          LayerwiseMLPClassifier(random_state=0),
                          LayerwiseMLPRegressor(random_state=0)],
                         expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_sample_weight_of_ones_and_zeros():
    x, y = make_classification(n_samples=120, n_features=5, random_state=0)
    plain = DenseClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(x, y)
    ones = DenseClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(
        x, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(plain.predict_proba(x), ones.predict_proba(x))
    # a sample of weight 0 has no influence at all: change it freely, the fit is the same
    weights = np.where(np.arange(len(y)) % 3 == 0, 0.0, 1.0)
    changed_x, changed_y = x.copy(), y.copy()
    changed_x[weights == 0] = np.random.default_rng(1).normal(size=changed_x[weights == 0].shape)
    changed_y[weights == 0] = 1 - changed_y[weights == 0]
    a = DenseClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(
        x, y, sample_weight=weights)
    b = DenseClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(
        changed_x, changed_y, sample_weight=weights)
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))


def test_string_labels_probabilities_and_score():
    x, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3,
                               random_state=1)
    names = np.array(["ant", "bee", "cat"])[y]
    clf = DenseClassifier(hidden_layer_sizes=(32,), epochs=60, random_state=0).fit(x, names)
    assert clf.classes_.tolist() == ["ant", "bee", "cat"]
    proba = clf.predict_proba(x)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(clf.predict(x)) <= {"ant", "bee", "cat"}
    assert clf.score(x, names) > 0.75  # chance is 0.33
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(x)), proba, rtol=1e-6)
    assert clf.decision_function(x).shape == (300, 3)
    assert isinstance(clf.model_, __import__("layerwise").Sequential)


def test_binary_decision_function_orders_like_probability():
    x, y = make_classification(n_samples=200, n_features=4, random_state=2)
    clf = DenseClassifier(hidden_layer_sizes=(8,), epochs=30, random_state=0).fit(x, y)
    scores = clf.decision_function(x)
    assert scores.shape == (200,)
    np.testing.assert_array_equal(np.argsort(scores, kind="stable"),
                                  np.argsort(clf.predict_proba(x)[:, 1], kind="stable"))


def test_multilabel_and_multioutput():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    labels = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 0] + x[:, 1] > 0], axis=1).astype(int)
    clf = DenseClassifier(hidden_layer_sizes=(16,), epochs=80, random_state=0).fit(x, labels)
    assert clf.predict(x).shape == (300, 3) and clf.predict_proba(x).shape == (300, 3)
    assert (clf.predict(x) == labels).mean() > 0.9
    xr, yr = make_regression(n_samples=300, n_features=5, n_targets=2, noise=0.1,
                             random_state=0)
    reg = make_pipeline(StandardScaler(), DenseRegressor(hidden_layer_sizes=(32,), epochs=200,
                                                         learning_rate=0.01, random_state=0))
    reg.fit(xr, yr / 100)
    assert reg.predict(xr).shape == (300, 2) and reg.score(xr, yr / 100) > 0.9


def test_partial_fit_and_warm_start():
    x, y = make_classification(n_samples=200, n_features=5, random_state=3)
    clf = DenseClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="`classes` must be given"):
        clf.partial_fit(x, y)
    for _ in range(3):
        clf.partial_fit(x, y, classes=[0, 1])
    # as scikit-learn: n_iter_ counts the epochs of the last call, t_ every sample seen
    assert clf.n_iter_ == 1 and clf.t_ == 600 and clf.model_.optimizer.iterations == 3 * 7
    warm = DenseClassifier(hidden_layer_sizes=(8,), epochs=2, warm_start=True, random_state=0)
    warm.fit(x, y)
    first = warm.model_
    warm.fit(x, y)
    assert warm.model_ is first and warm.n_iter_ == 2 and len(warm.loss_curve_) == 4


def test_pipeline_grid_search_cross_val_and_clone():
    x, y = make_classification(n_samples=200, n_features=6, random_state=4)
    pipe = make_pipeline(StandardScaler(), DenseClassifier(epochs=50, random_state=0))
    grid = GridSearchCV(pipe, {"denseclassifier__hidden_layer_sizes": [(4,), (16,)]}, cv=3)
    grid.fit(x, y)
    assert grid.best_score_ > 0.8
    scores = cross_val_score(DenseClassifier(epochs=20, random_state=0), x, y, cv=3)
    assert scores.mean() > 0.8
    copy = clone(DenseClassifier(hidden_layer_sizes=(3, 2), dropout=0.1))
    assert copy.get_params()["hidden_layer_sizes"] == (3, 2) and not hasattr(copy, "model_")


def test_early_stopping_and_bad_parameters():
    x, y = make_classification(n_samples=200, n_features=5, random_state=5)
    clf = DenseClassifier(epochs=500, early_stopping=True, patience=3, random_state=0).fit(x, y)
    assert clf.n_iter_ < 500 and len(clf.history_["val_score"]) == clf.n_iter_
    with pytest.raises(ValueError, match="`hidden_layer_sizes` must be positive integers"):
        DenseClassifier(hidden_layer_sizes=(0,)).fit(x, y)
    with pytest.raises(ValueError, match=r"`dropout` must be a number in \[0.0, 1.0\)"):
        DenseClassifier(dropout=1.5).fit(x, y)


def test_dataframes_keep_feature_names():
    pd = pytest.importorskip("pandas")
    x, y = make_classification(n_samples=100, n_features=3, n_informative=2, n_redundant=0,
                               random_state=6)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    clf = DenseClassifier(hidden_layer_sizes=(4,), epochs=5, random_state=0).fit(frame,
                                                                                pd.Series(y))
    assert clf.feature_names_in_.tolist() == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[["c", "a", "b"]])


def test_digits_at_least_mlpclassifier_accuracy():
    """Same hyper-parameters as MLPClassifier's defaults (one hidden layer of 100 relu units,
    Adam at 0.001, batch 32... MLP's batch is min(200, n)), both with 200 epochs."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25,
                                                        random_state=0, stratify=y)
    ours = DenseClassifier(hidden_layer_sizes=(100,), batch_size=200, epochs=200,
                           random_state=0).fit(x_train, y_train).score(x_test, y_test)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = MLPClassifier(hidden_layer_sizes=(100,), batch_size=200, max_iter=200,
                               random_state=0).fit(x_train, y_train).score(x_test, y_test)
    assert ours >= theirs - 1e-9
