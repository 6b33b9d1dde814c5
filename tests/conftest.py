"""Shared fixtures: which backends exist here, and small random problems."""

import importlib.util

import numpy as np
import pytest

#: (backend, device) pairs that run on a CPU-only machine, when their library is installed.
CPU_BACKENDS = [("numpy", None), ("array_api_strict", "device1"), ("torch", "cpu"), ("jax", "cpu")]


def backend_params(backends=CPU_BACKENDS):
    """pytest params for backends, skipped with a reason when the library is missing."""
    params = []
    for name, device in backends:
        module = "jax" if name == "jax" else name
        missing = importlib.util.find_spec(module) is None
        marks = pytest.mark.skip(reason=f"{module} is not installed") if missing else ()
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


@pytest.fixture
def shared_fashion():
    """The real Fashion-MNIST beside the checkout (or Debian's copy); skipped when neither exists."""
    from pathlib import Path

    for candidate in (Path(__file__).parents[2] / "shared" / "data" / "fashion-mnist",
                      Path("/usr/share/datasets/fashion-mnist")):
        if (candidate / "t10k-labels-idx1-ubyte.gz").is_file():
            return candidate
    pytest.skip("Fashion-MNIST is not on this machine (../shared/data or apt-get install dataset-fashion-mnist)")
