"""CuPy on a real CUDA GPU: the same results as NumPy. Skipped cleanly where there is no GPU."""

import numpy as np
import pytest

import xpnet
from xpnet.errors import BackendError

from helpers import random_problem

cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install 'xpnet[cuda]')")
try:
    xpnet.get_backend("cupy")
except BackendError as exc:  # installed, but no CUDA device
    pytest.skip(str(exc), allow_module_level=True)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_cupy_training_matches_numpy(dtype, tol, batch_size):
    X, y = random_problem(30, 4, n=50 * batch_size, seed=5)
    weights = []
    for backend in ("numpy", "cupy"):
        net = xpnet.MLP([30, 16, 16, 4], seed=7, backend=backend, dtype=dtype)
        net.fit(X, y, epochs=1, lr=0.5, batch_size=batch_size, progress=False)
        weights.append(net.get_weights())
    for (W, b), (eW, eb) in zip(weights[1], weights[0]):
        np.testing.assert_allclose(W, eW, rtol=tol, atol=tol * np.abs(eW).max())


def test_cupy_gradcheck():
    net = xpnet.MLP([12, 8, 8, 3], activation="tanh", backend="cupy", dtype="float64")
    X, y = random_problem(12, 3, n=8)
    assert xpnet.gradcheck(net, X, y)["passed"]
