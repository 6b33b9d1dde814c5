"""CUDA GPUs: CuPy, PyTorch on CUDA and JAX on a GPU give NumPy's weights (float64 to 1e-10, float32 to
1e-4), stacks on the GPU give each network's weights alone, and the gradient check passes there. Each
backend is skipped, with the reason, where it has no GPU (always, on a CPU-only machine)."""

import numpy as np
import pytest

import xpnet
from xpnet.backends import GPU_DEVICES
from xpnet.errors import BackendError

from helpers import TOLERANCE, assert_same_weights, random_problem


def _gpu(name):
    try:
        return xpnet.get_backend(name, GPU_DEVICES[name])
    except BackendError as exc:
        pytest.skip(str(exc))


GPUS = list(GPU_DEVICES)


def _train(backend, dtype, batch_size, X, y):
    net = xpnet.MLP([30, 16, 16, 4], seed=7, backend=backend, dtype=dtype)
    net.fit(X, y, epochs=1, lr=0.5, batch_size=batch_size, progress=False)
    return net.get_weights()


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("batch_size", [1, 16])
@pytest.mark.parametrize("name", GPUS)
def test_gpu_training_matches_numpy(name, dtype, batch_size):
    backend = _gpu(name)
    X, y = random_problem(30, 4, n=50 * batch_size, seed=5)
    assert_same_weights(_train(backend, dtype, batch_size, X, y), _train("numpy", dtype, batch_size, X, y), dtype)


@pytest.mark.parametrize("batch_size", [1, 16])
@pytest.mark.parametrize("name", GPUS)
def test_gpu_stack_matches_each_network_alone(name, batch_size):
    backend = _gpu(name)
    X, y = random_problem(30, 4, n=40 * batch_size, seed=5)
    stack = xpnet.Stack([30, 16, 16, 4], seeds=[3, 4, 3], init=["he", "xavier", "normal-max"], backend=backend,
                        dtype="float64")
    stack.fit(X, y, epochs=2, lr=[0.5, 0.2, 0.1], batch_size=batch_size, progress=False)
    for k, (seed, init, lr) in enumerate(((3, "he", 0.5), (4, "xavier", 0.2), (3, "normal-max", 0.1))):
        alone = xpnet.MLP([30, 16, 16, 4], seed=seed, init=init, backend=backend, dtype="float64")
        alone.fit(X, y, epochs=2, lr=lr, batch_size=batch_size, progress=False)
        assert_same_weights(stack.model(k).get_weights(), alone.get_weights(), "float64")


@pytest.mark.parametrize("name", GPUS)
def test_gpu_gradcheck(name):
    net = xpnet.MLP([12, 8, 8, 3], activation="tanh", backend=_gpu(name), dtype="float64")
    X, y = random_problem(12, 3, n=8)
    assert xpnet.gradcheck(net, X, y)["passed"]


@pytest.mark.parametrize("name", GPUS)
def test_gpu_arrays_stay_on_the_gpu(name):
    backend = _gpu(name)
    net = xpnet.MLP("4-3", backend=backend)
    assert backend.describe()["name"]  # the device's own name, for reports
    assert type(net.params[0][0]).__module__.split(".")[0] in ("cupy", "torch", "jax", "jaxlib")
    assert isinstance(net.predict(np.zeros((2, 4))), np.ndarray)
