"""The scikit-learn estimators: sklearn's own estimator checks, pipelines, grid search, labels."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install 'xpnet[peers]')")
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from xpnet import datasets  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

#: Checks marked as expected failures, with the reason (also listed in docs/sklearn.md).
EXPECTED_FAILURES = {}


@pytest.mark.parametrize("estimator", [MLPClassifier(), MLPRegressor()],
                         ids=["classifier", "regressor"])
def test_sklearn_estimator_checks(estimator):
    check_estimator(estimator, expected_failed_checks=EXPECTED_FAILURES)


@pytest.fixture(scope="module")
def pair():
    X, y, X_test, y_test = datasets.prepare(datasets.load_mnist(), digits="3,9")
    return X[:3000], y[:3000], X_test, y_test


def test_string_labels_pipeline_and_numpy_out(pair):
    X, y, X_test, y_test = pair
    names = np.array(["three", "nine"])
    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0))
    clf.fit(X, names[y])
    pred = clf.predict(X_test)
    assert pred.dtype.kind == "U" and set(pred) <= {"three", "nine"}
    assert clf.score(X_test, names[y_test]) > 0.95
    proba = clf.predict_proba(X_test[:3])
    assert isinstance(proba, np.ndarray) and proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_grid_search_on_a_digit_pair(pair):
    X, y, X_test, y_test = pair
    grid = GridSearchCV(MLPClassifier(max_iter=3, random_state=0),
                        {"learning_rate": [0.01, 0.1], "hidden_layer_sizes": [(8,), (32,)]}, cv=2)
    grid.fit(X[:1000], y[:1000])
    assert set(grid.best_params_) == {"learning_rate", "hidden_layer_sizes"}
    assert grid.score(X_test, y_test) > 0.9


def test_partial_fit_and_loss_curve(pair):
    X, y, _, _ = pair
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1])
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3 and clf.loss_curve_[2] < clf.loss_curve_[0]


@pytest.mark.parametrize("backend", ["torch", "jax", "array_api_strict"])
def test_other_backends_give_numpy_out(pair, backend):
    pytest.importorskip(backend)
    X, y, X_test, _ = pair
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0, backend=backend).fit(X[:500], y[:500])
    ref = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X[:500], y[:500])
    out = clf.predict_proba(X_test[:50])
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, ref.predict_proba(X_test[:50]), rtol=1e-8, atol=1e-10)
