"""Fixtures: the backends installed here and the real data sets."""

import pytest
from helpers import BACKENDS, CPU, ROOT


@pytest.fixture(params=CPU)
def backend(request):
    """A :class:`xpnet.Backend`: each CPU backend in turn, or the ids of ``helpers.BACKENDS`` a test names
    (``@pytest.mark.parametrize("backend", GPU, indirect=True)``); skipped, with the reason, where the
    library or the device is missing."""
    import xpnet

    name, device = BACKENDS[request.param]
    try:
        return xpnet.get_backend(name, device)
    except xpnet.BackendError as exc:
        pytest.skip(str(exc))


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
    pytest.skip("Fashion-MNIST is not on this machine (apt-get install dataset-fashion-mnist brings it)")
