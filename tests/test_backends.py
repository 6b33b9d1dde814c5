"""One seed, one code path, the same weights on every backend; clear errors for missing ones."""

import sys
import types

import numpy as np
import pytest

import xpnet
from xpnet.backends import get_backend
from xpnet.errors import BackendError

from helpers import BACKENDS, CPU, GPU, TOLERANCE, assert_same_weights, random_problem, sample_chunk


def _train(backend, dtype, batch_size, X, y):
    net = xpnet.MLP([30, 16, 16, 4], activation="sigmoid", init="normal-max", seed=7, backend=backend, dtype=dtype)
    steps = 50
    n = steps * batch_size
    xpnet.fit(net, X[:n], y[:n], epochs=1, lr=0.5, batch_size=batch_size, progress=False)
    return net.get_weights()


@pytest.fixture(scope="module")
def reference():
    X, y = random_problem(30, 4, n=800, seed=5)
    return X, y, {(d, b): _train("numpy", d, b, X, y) for d in TOLERANCE for b in (1, 16)}


@pytest.mark.parametrize("batch_size", [1, 16])
@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("backend", CPU[1:] + GPU, indirect=True)
def test_fifty_steps_give_the_same_weights_as_numpy(backend, dtype, batch_size, reference):
    X, y, expected = reference
    got = _train(backend, dtype, batch_size, X, y)
    assert all(W.dtype == np.dtype(dtype) and b.dtype == np.dtype(dtype) for W, b in got)
    assert_same_weights(got, expected[(dtype, batch_size)], dtype)
    # and training actually moved the weights away from their initial values
    init = xpnet.MLP([30, 16, 16, 4], seed=7).get_weights()
    assert not np.allclose(got[0][0], init[0][0], atol=1e-3)


def test_float32_runs_on_a_device_without_float64():
    pytest.importorskip("array_api_strict")
    X, y = random_problem(30, 4, n=64)
    net = xpnet.MLP([30, 16, 4], backend="array_api_strict", device="no_float64", dtype="float32")
    history = net.fit(X, y, epochs=2, lr=0.1, batch_size=1, X_test=X, y_test=y, progress=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    with pytest.raises(BackendError, match="float64 is not supported"):
        xpnet.MLP([30, 4], backend="array_api_strict", device="no_float64", dtype="float64")


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(BackendError, match=r"unknown backend 'tensorflow'; known backends: numpy, cupy"):
        get_backend("tensorflow")


def test_missing_library_gives_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(BackendError) as info:
        get_backend("torch")
    message = str(info.value)
    assert "needs the 'torch' package, which is not installed" in message and "\n" not in message


def test_cupy_without_a_cuda_device_gives_one_line(monkeypatch):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    message = str(info.value)
    assert "backend 'cupy' is installed but no CUDA device" in message and "\n" not in message
    assert "numpy" in message  # it says what can be used instead


def test_bad_devices_are_refused():
    with pytest.raises(BackendError, match="numpy' runs on device 'cpu' only"):
        get_backend("numpy", "cuda:0")
    pytest.importorskip("array_api_strict")
    with pytest.raises(BackendError, match="no device 'gpu7'.*device1"):
        get_backend("array_api_strict", "gpu7")


def test_jax_float64_is_enabled_on_request():
    pytest.importorskip("jax")
    net = xpnet.MLP([5, 3], backend="jax", dtype="float64")
    assert str(net.params[0][0].dtype) == "float64"


def test_host_round_trip_on_every_backend(backend):
    host = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(backend.to_host(backend.asarray(host, "float32")), host.astype(np.float32))


def test_jax_compiled_epochs_match_the_step_by_step_loop():
    pytest.importorskip("jax")
    X, y = random_problem(30, 4, n=203, seed=3)  # 203 = 12 batches of 16 and a remainder of 11
    weights = []
    for compile in (True, False):
        net = xpnet.MLP([30, 16, 4], backend="jax", dtype="float64", seed=2)
        net.fit(X, y, epochs=2, lr=0.3, batch_size=16, compile=compile, progress=False)
        weights.append(net.get_weights())
    for (W, b), (W2, b2) in zip(*weights):
        np.testing.assert_allclose(W, W2, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(b, b2, rtol=1e-12, atol=1e-13)


def test_jax_compiled_epoch_still_names_the_diverging_step():
    pytest.importorskip("jax")
    X, y = random_problem(8, 3, n=300)
    net = xpnet.MLP("8-16-16-3", activation="identity", loss="squared", backend="jax", dtype="float32")
    with pytest.raises(xpnet.DivergenceError, match=r"epoch 1, step \d+ of 300") as info:
        net.fit(X * 100, y, epochs=1, lr=10.0, batch_size=1, compile=True, progress=False,
                sample_chunk=sample_chunk(net.backend))
    assert info.value.step < 300
    assert all(np.isfinite(W).all() for W, _ in net.get_weights())


@pytest.mark.parametrize("shape", [(1, 10), (8, 10), (64, 32), (256, 32), (1024, 10), (300, 40), (4, 5, 6), (3, 300, 8)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_reductions_equal_the_standard_ones(shape, dtype):
    """The kernels' helpers take NumPy fast paths (ufunc reduce, products with ones, transposed copies);
    they must give what the standard spelling gives, NaN and infinity included, and the same on every
    namespace."""
    from xpnet.backends import column_sum, model_sum, row_max, row_sum

    x = np.random.default_rng(0).normal(size=shape).astype(dtype)
    x.flat[3] = np.nan
    x.flat[-1] = np.inf
    strict = pytest.importorskip("array_api_strict")
    xs = strict.asarray(x)
    expected = {
        column_sum: np.sum(x, axis=-2, keepdims=True), row_sum: np.sum(x, axis=-1, keepdims=True),
        row_max: np.max(x, axis=-1, keepdims=True), model_sum: np.sum(x, axis=(-2, -1)),
    }
    tol = 1e-5 if dtype == "float32" else 1e-12  # sums of N(0, 1) can cancel: atol too
    for helper, want in expected.items():
        for got in (helper(np, x), np.asarray(helper(strict, xs))):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=tol, atol=10 * tol)


def test_every_backend_is_a_class_with_its_capabilities():
    from xpnet.backends import BACKENDS, Backend

    assert set(BACKENDS) == {"numpy", "cupy", "torch", "jax", "array_api_strict", "dask", "ndonnx"}
    for name, cls in BACKENDS.items():
        assert issubclass(cls, Backend) and cls.name == name
    assert [n for n, c in BACKENDS.items() if not c.supports_inplace] == ["jax", "ndonnx"]
    assert [n for n, c in BACKENDS.items() if c.can_compile] == ["jax"]
    assert [n for n, c in BACKENDS.items() if not c.can_train] == ["ndonnx"]
    assert [n for n, c in BACKENDS.items() if c.trains_by_chunks] == ["dask"]
    assert get_backend("numpy").xp is np  # NumPy itself, not a rebuilt module
