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
def test_sklearn_estimator_checks(estimator, monkeypatch):
    """Every check, the Array API ones included: with SCIPY_ARRAY_API=1 scikit-learn runs
    check_array_api_input for each namespace, device and dtype installed here (numpy, array_api_strict on
    CPU_DEVICE and device1, torch on the CPU), check_array_api_mixed_inputs and
    check_array_api_same_namespace."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    results = check_estimator(estimator, expected_failed_checks=EXPECTED_FAILURES, on_fail=None)
    assert not [r["check_name"] for r in results if r["status"] == "failed"]
    ran = [r["check_name"] for r in results if "array_api" in r["check_name"] and r["status"] == "passed"]
    assert ran.count("check_array_api_input") >= 5 and "check_array_api_same_namespace" in ran


ARRAY_API_CASES = [("numpy", None, "float64"), ("array_api_strict", "CPU_DEVICE", "float64"),
                   ("array_api_strict", "device1", "float32"), ("torch", "cpu", "float64"), ("torch", "cpu", "float32")]


@pytest.mark.parametrize("namespace,device,dtype", ARRAY_API_CASES)
@pytest.mark.parametrize("estimator", [MLPClassifier(), MLPRegressor()], ids=["classifier", "regressor"])
def test_array_api_inputs_give_numpys_values(estimator, namespace, device, dtype, monkeypatch):
    """scikit-learn's value check: fitted attributes and every method's output, trained on the input's
    namespace and device, equal the NumPy fit's."""
    from sklearn.utils.estimator_checks import check_array_api_input_and_values

    pytest.importorskip(namespace)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check_array_api_input_and_values(type(estimator).__name__, estimator, namespace, device, dtype)


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


@pytest.mark.parametrize("backend", ["torch", "jax", "array_api_strict"], indirect=True)
def test_other_backends_give_numpy_out(pair, backend):
    X, y, X_test, _ = pair
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0, backend=backend).fit(X[:500], y[:500])
    ref = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X[:500], y[:500])
    out = clf.predict_proba(X_test[:50])
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, ref.predict_proba(X_test[:50]), rtol=1e-8, atol=1e-10)


@pytest.fixture
def dispatch(monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


def test_torch_tensors_train_with_torch_and_come_back_as_tensors(pair, dispatch):
    torch = pytest.importorskip("torch")
    X, y, X_test, y_test = pair
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    clf.fit(torch.asarray(X[:600]), torch.asarray(y[:600]))
    assert clf.net_.backend.name == "torch" and str(clf.net_.backend.device) == "cpu"
    Xt = torch.asarray(X_test[:200])
    proba, labels = clf.predict_proba(Xt), clf.predict(Xt)
    assert isinstance(proba, torch.Tensor) and proba.shape == (200, 2) and proba.dtype == torch.float64
    assert isinstance(labels, torch.Tensor) and all(isinstance(W, torch.Tensor) for W in clf.coefs_)
    assert [tuple(W.shape) for W in clf.coefs_] == [(784, 8), (8, 1)] and tuple(clf.intercepts_[0].shape) == (8,)
    assert isinstance(clf.score(Xt, torch.asarray(y_test[:200])), float)
    with sklearn.config_context(array_api_dispatch=False):  # the same fit on NumPy arrays
        ref = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X[:600], y[:600])
        np.testing.assert_allclose(proba.numpy(), ref.predict_proba(X_test[:200]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(clf.coefs_[0].numpy(), ref.coefs_[0], rtol=1e-9, atol=1e-12)


def test_regressor_attributes_follow_x(dispatch):
    strict = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 5)), rng.normal(size=64) * 100 + 7
    Xs = strict.asarray(X, device=strict.Device("device1"))
    reg = MLPRegressor(max_iter=2, random_state=0).fit(Xs, strict.asarray(y, device=strict.Device("device1")))
    assert reg.y_mean_.device == Xs.device and reg.predict(Xs).device == Xs.device
    assert reg.predict(Xs).shape == (64,)


def test_explicit_backend_or_device_must_agree_with_x(pair, dispatch):
    torch = pytest.importorskip("torch")
    X, y, _, _ = pair
    Xt, yt = torch.asarray(X[:100]), torch.asarray(y[:100])
    with pytest.raises(ValueError, match=r"backend='jax' contradicts X, a torch array on cpu"):
        MLPClassifier(backend="jax", max_iter=1).fit(Xt, yt)
    with pytest.raises(ValueError, match=r"has no CUDA device"):  # a device xpnet cannot use: one line
        MLPClassifier(backend="torch", device="cuda:7", max_iter=1).fit(Xt, yt)
    agreed = MLPClassifier(backend="torch", device="cpu", max_iter=1).fit(Xt, yt)
    assert isinstance(agreed.predict(Xt), torch.Tensor)
    # NumPy inputs: the explicit backend chooses where to train, and results come back as NumPy
    on_torch = MLPClassifier(backend="torch", max_iter=1, random_state=0).fit(X[:100], y[:100])
    assert on_torch.net_.backend.name == "torch" and type(on_torch.predict_proba(X[:5])) is np.ndarray


def test_y_follows_x_and_predict_must_use_the_fit_namespace(pair, dispatch):
    torch = pytest.importorskip("torch")
    strict = pytest.importorskip("array_api_strict")
    X, y, _, _ = pair
    Xs = strict.asarray(X[:100], device=strict.Device("device1"))
    clf = MLPClassifier(max_iter=1, random_state=0).fit(Xs, torch.asarray(y[:100]))  # y on another library
    assert clf.net_.backend.name == "array_api_strict" and clf.predict(Xs).device == Xs.device
    with pytest.raises(ValueError, match=r"device='CPU_DEVICE' contradicts X, which is on .*device1"):
        MLPClassifier(device="CPU_DEVICE", max_iter=1).fit(Xs, y[:100])
    with pytest.raises(ValueError, match=r"MLPClassifier.predict\(\) must use the same namespace and the same device"):
        clf.predict(torch.asarray(X[:5]))


def test_without_dispatch_nothing_changes(pair):
    torch = pytest.importorskip("torch")
    X, y, X_test, _ = pair
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(torch.asarray(X[:300]), y[:300])
    assert clf.net_.backend.name == "numpy" and type(clf.predict_proba(torch.asarray(X_test[:5]))) is np.ndarray
    assert type(clf.coefs_[0]) is np.ndarray and clf.out_activation_ == "logistic" and clf.n_layers_ == 3


def test_logistic_is_the_sigmoid(pair):
    X, y, X_test, y_test = pair
    clf = MLPClassifier(hidden_layer_sizes=(8,), activation="logistic", max_iter=2, random_state=0).fit(X[:500], y[:500])
    assert clf.net_.activation_names == ["sigmoid"] and clf.score(X_test, y_test) > 0.9
