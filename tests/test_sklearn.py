"""The scikit-learn estimators: equal to scikit-learn's own MLP (weights, loss curves, iterations, validation
scores) over a grid of solvers, schedules, early stopping, activations, batches and targets, on every backend;
sklearn's own estimator checks, pipelines, grid search, labels."""

import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install 'xpnet[peers]')")
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from xpnet import datasets  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

#: Checks marked as expected failures, with the reason (also listed in docs/sklearn.md).
EXPECTED_FAILURES = {}


def _problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(103, 6))  # 103 rows: every batch size below leaves a short last batch
    targets = {"binary": (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int), "3 classes": np.digitize(X[:, 2] + 0.3 * X[:, 0], [-0.5, 0.5]),
               "2 outputs": np.c_[X[:, 0] - X[:, 1], np.sin(X[:, 2])], "1 output": X[:, 0] - 2 * X[:, 3],
               "multilabel": np.c_[X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] * X[:, 4] > 0].astype(int),
               "counts": np.random.default_rng(1).poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1])).astype(float)}
    return X, targets, rng.uniform(0.2, 2.0, size=103)


#: (targets, parameters): a sampled grid of solvers, schedules, early stopping, activations, batches.
GRID = [
    ("binary", dict(solver="adam")),
    ("3 classes", dict(solver="sgd", learning_rate="invscaling", momentum=0.5, batch_size=16)),
    ("3 classes", dict(solver="sgd", nesterovs_momentum=False, learning_rate="adaptive", batch_size=10, tol=1e-2,
                       n_iter_no_change=2)),
    ("binary", dict(solver="adam", early_stopping=True, activation="tanh", batch_size=20, n_iter_no_change=3)),
    ("3 classes", dict(solver="lbfgs", activation="logistic", alpha=1e-2)),
    ("2 outputs", dict(solver="adam", activation="tanh", batch_size=32, beta_1=0.8, epsilon=1e-6)),
    ("1 output", dict(solver="sgd", learning_rate_init=0.01, early_stopping=True, activation="identity")),
    ("2 outputs", dict(solver="lbfgs")),
    ("binary", dict(solver="sgd", shuffle=False, batch_size=7, learning_rate_init=0.05, alpha=0.0)),
    ("multilabel", dict(solver="adam", batch_size=16)),
    ("multilabel", dict(solver="lbfgs", activation="tanh")),
    ("multilabel", dict(solver="sgd", early_stopping=True, batch_size=10, momentum=0.8)),
    ("counts", dict(loss="poisson", solver="adam", activation="tanh", batch_size=16)),
    ("counts", dict(loss="poisson", solver="lbfgs", alpha=1e-3)),
]


def _pair(targets, params, **xpnet_params):
    X, ys, _ = _problem()
    y = ys[targets]
    params = dict(hidden_layer_sizes=(8, 5), random_state=1, max_iter=30, **params)
    theirs = (neural_network.MLPClassifier if y.dtype.kind == "i" else neural_network.MLPRegressor)(**params)
    ours = (MLPClassifier if y.dtype.kind == "i" else MLPRegressor)(**params, **xpnet_params)
    return X, y, theirs, ours


def assert_same_fit(ours, theirs, rtol=1e-9):
    """Every fitted number scikit-learn reports, to relative ``rtol`` of its largest magnitude."""
    def close(got, expected):
        expected = np.asarray(expected, dtype=float)
        np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=rtol, atol=rtol * np.abs(expected).max())

    assert ours.n_iter_ == theirs.n_iter_ and ours.n_layers_ == theirs.n_layers_
    assert ours.n_outputs_ == theirs.n_outputs_ and ours.out_activation_ == theirs.out_activation_
    for got, expected in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        assert got.shape == expected.shape
        close(got, expected)
    close(ours.loss_, theirs.loss_)
    for name in ("loss_curve_", "validation_scores_", "best_loss_", "best_validation_score_", "t_"):
        if getattr(theirs, name, None) is not None:
            close(getattr(ours, name), getattr(theirs, name))
        else:
            assert getattr(ours, name, None) is None


@pytest.mark.parametrize("targets, params", GRID, ids=[f"{t}-{p['solver']}-{i}" for i, (t, p) in enumerate(GRID)])
def test_equals_scikit_learn(targets, params):
    """The same parameters on the same float64 data: scikit-learn's weights, loss curve, iterations and
    validation scores, to relative 1e-9 (its initial weights, batch order and split from random_state)."""
    X, y, theirs, ours = _pair(targets, params)
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs.fit(X, y)
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours.fit(X, y)
    assert_same_fit(ours, theirs)
    assert [(w.category, str(w.message)) for w in ours_warned] == [(w.category, str(w.message)) for w in theirs_warned]
    method = "predict_proba" if hasattr(theirs, "predict_proba") else "predict"
    np.testing.assert_allclose(getattr(ours, method)(X), getattr(theirs, method)(X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", ["array_api_strict", "torch", "jax"], indirect=True)
@pytest.mark.parametrize("case", [0, 4, 6, 9, 12], ids=["adam", "lbfgs", "sgd-early-stopping", "multilabel", "poisson"])
def test_equals_scikit_learn_on_every_backend(backend, case):
    """The same fits trained on another backend (array_api_strict on device1, torch, JAX): within the
    cross-backend float64 tolerance of scikit-learn's, NumPy out."""
    X, y, theirs, ours = _pair(*GRID[case], backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    assert ours.net_.backend.name == backend.name and type(ours.coefs_[0]) is np.ndarray
    assert_same_fit(ours, theirs)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_sample_weight_partial_fit_warm_start_and_log_proba_equal_scikit_learn(solver):
    X, ys, weights = _problem()
    y = ys["3 classes"]
    params = dict(hidden_layer_sizes=(8,), random_state=3, max_iter=15, batch_size=20, solver=solver,
                  early_stopping=solver == "sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = neural_network.MLPClassifier(**params).fit(X, y, sample_weight=weights)
        ours = MLPClassifier(**params).fit(X, y, sample_weight=weights)
        assert_same_fit(ours, theirs)
        np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-9)
        params.update(warm_start=True, early_stopping=False)
        theirs, ours = neural_network.MLPClassifier(**params), MLPClassifier(**params)
        for _ in range(2):  # warm start: the second fit continues from the first one's weights
            theirs.fit(X, y)
            ours.fit(X, y)
        assert_same_fit(ours, theirs)
    if solver == "lbfgs":
        assert not hasattr(ours, "partial_fit")
        return
    theirs, ours = neural_network.MLPClassifier(**params), MLPClassifier(**params)
    for _ in range(3):  # the optimizer's state kept between calls; n_iter_ counts this call (1), t_ all
        theirs.partial_fit(X, y, classes=[0, 1, 2])
        ours.partial_fit(X, y, classes=[0, 1, 2])
    assert_same_fit(ours, theirs)


def test_verbose_lines_and_warnings_are_scikit_learns(capsys):
    X, ys, _ = _problem()
    params = dict(hidden_layer_sizes=(8,), random_state=3, max_iter=15, batch_size=200, verbose=True, solver="sgd",
                  early_stopping=True, n_iter_no_change=2, learning_rate="adaptive", tol=0.05)
    printed = []
    for cls in (neural_network.MLPClassifier, MLPClassifier):
        with pytest.warns(UserWarning, match="It is going to be clipped"):
            cls(**params).fit(X, ys["binary"])
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and "Setting learning rate to" in printed[0] and "Validation score:" in printed[0]
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(max_iter=3, hidden_layer_sizes=(4,)).fit(X, ys["binary"])


@pytest.mark.parametrize("params", [dict(momentum=1.5), dict(solver="newton"), dict(beta_1=1.0), dict(epsilon=0.0),
                                    dict(alpha=-1.0), dict(batch_size=0), dict(learning_rate="cosine"),
                                    dict(n_iter_no_change=0), dict(dtype="float16"), dict(validation_fraction=1.0)])
def test_what_scikit_learn_refuses_raises_its_invalid_parameter_error(params):
    X, ys, _ = _problem()
    with pytest.raises(InvalidParameterError):
        neural_network.MLPClassifier(**{k: v for k, v in params.items() if k != "dtype"} or {"momentum": 2}).fit(X, ys["binary"])
    with pytest.raises(InvalidParameterError):
        MLPClassifier(**params).fit(X, ys["binary"])


def test_partial_fit_with_early_stopping_is_refused_as_scikit_learn_refuses_it():
    X, ys, _ = _problem()
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, ys["binary"], classes=[0, 1])


def test_one_class_predicts_that_class_as_scikit_learn_does():
    """check_estimator's one-label check draws its weights from the global RNG: found failing in one run of
    the suite in three (an output above 0.5 picked a second class that does not exist)."""
    rng = np.random.default_rng(0)
    X, X_test, y = rng.uniform(size=(10, 3)), rng.uniform(size=(40, 3)), np.full(10, 7.0)
    for seed in range(20):  # 12 of these 20 initial weights put some outputs above 0.5
        ours, theirs = (cls(hidden_layer_sizes=(4,), max_iter=3, random_state=seed).fit(X, y)
                        for cls in (MLPClassifier, neural_network.MLPClassifier))
        np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))
        np.testing.assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test), rtol=1e-12)


def _no_cuda_without_a_gpu(monkeypatch):
    """scikit-learn's array-API checks try PyTorch on "cuda" wherever ``torch.backends.cuda.is_built()``:
    with the CUDA build pip brings on Linux and no GPU or driver, they fail inside PyTorch ("CUDA driver
    version is insufficient"). Where CUDA cannot be used, the checks are told it is not built, so that
    they skip it as they do on a CPU build."""
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:
            return
    if torch.backends.cuda.is_built() and not torch.cuda.is_available():
        monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)


def test_the_checks_skip_cuda_where_pytorch_is_built_for_it_without_a_gpu(monkeypatch):
    """The README's test command on a machine where pip brought PyTorch's CUDA build and there is no GPU
    (simulated: this build answers is_built() as a CUDA build does): check_array_api_input on "cuda" is
    skipped, not failed."""
    from unittest import SkipTest

    from sklearn.utils.estimator_checks import check_array_api_input

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a usable CUDA device is here: the checks run on it")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)  # a CUDA build, no driver
    def check():
        check_array_api_input("MLPClassifier", MLPClassifier(max_iter=5), array_namespace="torch", device_name="cuda",
                              dtype_name="float32")

    with pytest.raises((RuntimeError, AssertionError)) as failed:  # what the command met: a failure inside PyTorch
        check()
    assert "cuda" in str(failed.value).lower() and not isinstance(failed.value, SkipTest)
    _no_cuda_without_a_gpu(monkeypatch)
    with pytest.raises(SkipTest):
        check()


@pytest.mark.parametrize("estimator", [MLPClassifier(max_iter=20), MLPRegressor(max_iter=20)],
                         ids=["classifier", "regressor"])
def test_sklearn_estimator_checks(estimator, monkeypatch):
    """Every check, the Array API ones included: with SCIPY_ARRAY_API=1 scikit-learn runs
    check_array_api_input for each namespace, device and dtype installed here (numpy, array_api_strict on
    CPU_DEVICE and device1, torch on the CPU), check_array_api_mixed_inputs and
    check_array_api_same_namespace."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    _no_cuda_without_a_gpu(monkeypatch)
    results = check_estimator(estimator, expected_failed_checks=EXPECTED_FAILURES, on_fail=None)
    assert not [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    ran = [r["check_name"] for r in results if "array_api" in r["check_name"] and r["status"] == "passed"]
    assert ran.count("check_array_api_input") >= 5 and "check_array_api_same_namespace" in ran
    if sklearn.__version__ == "1.9.1":  # docs/sklearn.md's counts, for the version they were read from
        counts = (len(results), sum(r["status"] == "passed" for r in results))
        assert counts == {"MLPClassifier": (83, 69), "MLPRegressor": (81, 67)}[type(estimator).__name__]


ARRAY_API_CASES = [("numpy", None, "float64"), ("array_api_strict", "CPU_DEVICE", "float64"),
                   ("array_api_strict", "device1", "float32"), ("torch", "cpu", "float64"), ("torch", "cpu", "float32")]


@pytest.mark.parametrize("namespace,device,dtype", ARRAY_API_CASES)
@pytest.mark.parametrize("estimator", [MLPClassifier(max_iter=20), MLPRegressor(max_iter=20)], ids=["classifier", "regressor"])
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
    assert clf.score(X_test, names[y_test]) > 0.967  # 97.67 % measured (2026-12-02)
    proba = clf.predict_proba(X_test[:3])
    assert isinstance(proba, np.ndarray) and proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_grid_search_on_a_digit_pair(pair):
    X, y, X_test, y_test = pair
    grid = GridSearchCV(MLPClassifier(max_iter=3, random_state=0),
                        {"learning_rate_init": [0.001, 0.01], "hidden_layer_sizes": [(8,), (32,)]}, cv=2)
    grid.fit(X[:1000], y[:1000])
    assert set(grid.best_params_) == {"learning_rate_init", "hidden_layer_sizes"}
    assert grid.score(X_test, y_test) > 0.966  # 97.57 % measured (2026-12-02)


def test_partial_fit_and_loss_curve(pair):
    X, y, _, _ = pair
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1])
    # as scikit-learn: n_iter_ counts the last call's epochs, t_ every sample seen
    assert clf.n_iter_ == 1 and clf.t_ == 3 * len(y) and len(clf.loss_curve_) == 3
    assert clf.loss_curve_[2] < clf.loss_curve_[0]


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
    assert reg.coefs_[0].device == Xs.device and reg.predict(Xs).device == Xs.device
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
    clf = MLPClassifier(hidden_layer_sizes=(8,), activation="logistic", max_iter=2, learning_rate_init=0.01,
                        random_state=0).fit(X[:500], y[:500])
    assert clf.net_.activation_names == ["sigmoid"] and clf.score(X_test, y_test) > 0.959  # 96.88 % measured


def test_a_backend_that_cannot_train_is_one_line():
    pytest.importorskip("ndonnx")
    X, targets, _ = _problem()
    with pytest.raises(ValueError, match=r"^backend='ndonnx' cannot train \(its arrays record a graph") as info:
        MLPClassifier(backend="ndonnx", max_iter=2).fit(X, targets["binary"])
    assert "\n" not in str(info.value)


# -- multilabel, sparse X, assignable weights ----------------------------------------------------------
def test_multilabel_partial_fit_and_predict_are_scikit_learns():
    X, ys, _ = _problem()
    y = ys["multilabel"]
    theirs, ours = (cls(hidden_layer_sizes=(8,), random_state=2, solver="sgd", batch_size=16)
                    for cls in (neural_network.MLPClassifier, MLPClassifier))
    for _ in range(3):
        theirs.partial_fit(X, y, classes=[0, 1, 2])
        ours.partial_fit(X, y, classes=[0, 1, 2])
    assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
    assert ours.predict(X).shape == y.shape and ours.score(X, y) == theirs.score(X, y)


SPARSE = ["csr_matrix", "csc_matrix", "csr_array"]


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "torch", "jax"], indirect=True)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_x_gives_scikit_learns_numbers_and_the_dense_weights(backend, solver):
    import scipy.sparse

    X, ys, _ = _problem()
    X = np.where(np.abs(X) > 1.0, X, 0.0)  # about 30 % of the entries kept
    y = ys["3 classes"]
    kind = SPARSE[["adam", "lbfgs"].index(solver) + (backend.name == "torch")]
    sparse = getattr(scipy.sparse, kind)(X)
    params = dict(hidden_layer_sizes=(8,), random_state=1, max_iter=20, solver=solver)
    theirs = neural_network.MLPClassifier(**params)
    ours, dense = MLPClassifier(**params, backend=backend), MLPClassifier(**params, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(sparse, y)
        ours.fit(sparse, y)
        dense.fit(X, y)
    assert_same_fit(ours, theirs)
    assert_same_fit(ours, dense, rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(sparse), theirs.predict_proba(sparse), rtol=1e-9)
    assert ours.score(sparse, y) == theirs.score(sparse, y)
    if solver == "adam":  # one more epoch on sparse rows, the optimizer's state kept
        theirs.partial_fit(sparse, y)
        ours.partial_fit(sparse, y)
        assert_same_fit(ours, theirs)


def test_assigned_weights_are_what_predict_and_partial_fit_use():
    X, ys, _ = _problem()
    y = ys["binary"]
    fitted = neural_network.MLPClassifier(hidden_layer_sizes=(4,), random_state=0, max_iter=5, solver="sgd").fit(X, y)
    theirs = neural_network.MLPClassifier(hidden_layer_sizes=(4,), random_state=3, max_iter=1, solver="sgd").fit(X, y)
    ours = MLPClassifier(hidden_layer_sizes=(4,), random_state=3, max_iter=1, solver="sgd").fit(X, y)
    for est in (theirs, ours):
        est.coefs_ = [W.copy() for W in fitted.coefs_]
        est.intercepts_ = [b.copy() for b in fitted.intercepts_]
    np.testing.assert_allclose(ours.predict_proba(X), fitted.predict_proba(X), rtol=1e-12)
    ours.coefs_[0][0, 0] += 1.0  # edited in place: scikit-learn's attribute is its truth
    theirs.coefs_[0][0, 0] += 1.0
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    theirs.partial_fit(X, y)
    ours.partial_fit(X, y)
    assert_same_fit(ours, theirs)
    ours.coefs_ = ours.coefs_[:1]
    with pytest.raises(ValueError, match=r"coefs_ and intercepts_ must be lists of 2 arrays for layers \[6, 4, 1\]"):
        ours.predict(X)
    ours.coefs_ = [np.zeros((6, 3)), np.zeros((3, 1))]
    with pytest.raises(ValueError, match=r"coefs_\[0\] and intercepts_\[0\] must have shapes \(6, 4\) and \(4,\)"):
        ours.predict(X)
