"""CUDA GPUs (CuPy, PyTorch on CUDA, JAX on a GPU): the gradient check passes there and arrays stay there.
That they give NumPy's weights (float64 to 1e-10, float32 to 1e-4) and that stacks give each network's
weights alone is tested with the other backends (test_backends.py, test_stack.py: the ``@cuda`` and
``@gpu`` ids of the ``backend`` fixture). Each is skipped, with the reason, where there is no GPU
(always, on a CPU-only machine); benchmarks/gpu_check.py runs every one of them."""

import numpy as np
import pytest

import xpnet

from helpers import GPU, random_problem


@pytest.mark.parametrize("backend", GPU, indirect=True)
def test_gpu_gradcheck(backend):
    net = xpnet.MLP([12, 8, 8, 3], activation="tanh", backend=backend, dtype="float64")
    X, y = random_problem(12, 3, n=8)
    assert xpnet.gradcheck(net, X, y)["passed"]


@pytest.mark.parametrize("backend", GPU, indirect=True)
def test_gpu_arrays_stay_on_the_gpu(backend):
    net = xpnet.MLP("4-3", backend=backend)
    assert backend.describe()["name"]  # the device's own name, for reports
    assert type(net.params[0][0]).__module__.split(".")[0] in ("cupy", "torch", "jax", "jaxlib")
    assert isinstance(net.predict(np.zeros((2, 4))), np.ndarray)
