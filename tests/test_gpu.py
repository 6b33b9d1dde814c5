"""CUDA GPUs (CuPy, PyTorch on CUDA, JAX on a GPU): the gradient check passes there, arrays stay there,
and the steps between two host reads never synchronise with the host (each library's own guard).
That they give NumPy's weights (float64 to 1e-10, float32 to 1e-4) and that stacks give each network's
weights alone is tested with the other backends (test_backends.py, test_stack.py: the ``@cuda`` and
``@gpu`` ids of the ``backend`` fixture). Each is skipped, with the reason, where there is no GPU
(always, on a CPU-only machine); benchmarks/gpu_check.py runs every one of them."""

import contextlib

import numpy as np
import pytest

import xpnet
from xpnet import train

from helpers import GPU, random_problem
from test_transfers import CASES, IDS, _fit


@contextlib.contextmanager
def no_synchronisation(backend):
    """Any wait for the device (a copy to or from the host, a read of a value) raises inside."""
    if backend.name == "torch" and backend.device.type == "cuda":  # (a CPU stand-in: test_transfers.py's counts)
        import torch

        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")
    elif backend.name == "torch":
        yield
    elif backend.name == "cupy":
        import cupyx

        with cupyx.allow_synchronize(False):
            yield
    else:
        import jax

        with jax.transfer_guard("disallow"):
            yield


@pytest.mark.parametrize("backend", GPU, indirect=True)
def test_gpu_gradcheck(backend):
    net = xpnet.MLP([12, 8, 8, 3], activation="tanh", backend=backend, dtype="float64")
    X, y = random_problem(12, 3, n=8)
    assert xpnet.gradcheck(net, X, y)["passed"]


@pytest.mark.parametrize("backend", GPU, indirect=True)
def test_gpu_arrays_stay_on_the_gpu(backend):
    net = xpnet.MLP("4-3", backend=backend)
    assert backend.describe().get("name") or backend.device_name == "cpu"  # the GPU's own name, for reports
    assert type(net.params[0][0]).__module__.split(".")[0] in ("cupy", "torch", "jax", "jaxlib")
    assert isinstance(net.predict(np.zeros((2, 4))), np.ndarray)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("backend", GPU, indirect=True)
def test_gpu_steps_do_not_synchronise(backend, case, monkeypatch):
    calls = []
    for cls in (train.Stepper, train.CompiledStepper):
        original = cls.run

        def guarded(self, *args, original=original):
            calls.append(args[-3:-1])
            with no_synchronisation(self.backend):
                return original(self, *args)

        monkeypatch.setattr(cls, "run", guarded)
    _fit(case, 100, backend)
    assert calls and calls[-1][1] == 100
