"""Helpers the tests share: which backends exist here, and small random problems."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1]

#: (backend, device) pairs that run on a CPU-only machine, when their library is installed.
CPU_BACKENDS = [("numpy", None), ("array_api_strict", "device1"), ("torch", "cpu"), ("jax", "cpu")]
#: Relative tolerance of "the same weights" across backends and between a stack and lone networks.
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def backend_params(backends=CPU_BACKENDS):
    """pytest params for backends, skipped with a reason when the library is missing."""
    params = []
    for name, device in backends:
        missing = importlib.util.find_spec(name) is None
        marks = pytest.mark.skip(reason=f"{name} is not installed") if missing else ()
        params.append(pytest.param((name, device), id=name, marks=marks))
    return params


def random_problem(n_in=12, n_out=3, n=16, seed=0):
    """Inputs ~ N(0, 1) and integer labels suited to ``n_out`` output units."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, max(n_out, 2), size=n)
    return X, y


def random_biases(net, seed=1):
    """Give every bias a small random value (zero biases can put a ReLU exactly on its kink)."""
    rng = np.random.default_rng(seed)
    net.set_weights([(W, rng.normal(0.0, 0.1, size=b.shape)) for W, b in net.get_weights()])
    return net


def assert_same_weights(got, expected, dtype):
    """Host weight lists equal to :data:`TOLERANCE` (relative to each array's largest entry)."""
    tol = TOLERANCE[dtype]
    for (W, b), (eW, eb) in zip(got, expected):
        scale = max(np.abs(eW).max(), 1e-300)
        np.testing.assert_allclose(W, eW, rtol=tol, atol=tol * scale)
        np.testing.assert_allclose(b, eb, rtol=tol, atol=tol * scale)
