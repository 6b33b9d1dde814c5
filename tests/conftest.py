"""Fixtures: the backends installed here and the real data sets."""

import importlib.util

import pytest
from helpers import CPU_BACKENDS, ROOT, backend_params


@pytest.fixture(params=[p.values[0] for p in backend_params(CPU_BACKENDS)],
                ids=[name for name, _ in CPU_BACKENDS])
def backend(request):
    """Each installed CPU backend in turn (array_api_strict on ``device1``, which refuses a forgotten
    ``device=``); skipped where the library is missing."""
    import xpnet

    name, device = request.param
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    return xpnet.get_backend(name, device)


@pytest.fixture(scope="session")
def mnist():
    """MNIST scaled to [0, 1], float64: (X, y, X_test, y_test)."""
    from xpnet import datasets

    return datasets.prepare(datasets.load_mnist())


@pytest.fixture
def shared_fashion():
    """The real Fashion-MNIST beside the checkout (or Debian's copy); skipped when neither exists."""
    from pathlib import Path

    for candidate in (ROOT.parent / "shared" / "data" / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist")):
        if (candidate / "t10k-labels-idx1-ubyte.gz").is_file():
            return candidate
    pytest.skip("Fashion-MNIST is not on this machine (../shared/data or apt-get install dataset-fashion-mnist)")
