"""Nothing crosses the host boundary inside a training step, on any backend: no array made from a Python
number or host data, no value read back, except at the few fixed points of an epoch (its start, the
guard's checks, its end). On a GPU each would be a copy that waits for the device.

Proved here on CPU stand-ins: a torch dispatch-mode count of the ops that make tensors from host data
(``lift_fresh``) or read one back (``_local_scalar_dense``), and a count of each backend's host reads,
neither growing with the number of steps; compiled JAX epochs (their tails included) run under
``jax.transfer_guard("disallow")``. test_gpu.py adds the GPU libraries' own synchronisation guards.
Also: data already on the device (array_api_strict ``device1``, torch tensors) trains and scores as host
data does, JAX's matrix products are full float32, and devices are named ``cuda:N``."""

import collections
import types

import numpy as np
import pytest

import xpnet
from xpnet import backends, train

#: (activation, loss, batch size, optimizer options, stack size): every activation and loss, per-sample
#: and minibatch, every optimizer and schedule, early stopping, one network and stacks.
CASES = [
    ("relu", "cross-entropy", 1, {}, None),
    ("sigmoid", "logistic", 1, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, None),
    ("tanh", "squared", 8, {"optimizer": "adam"}, None),
    ("identity", "cross-entropy", 8, {"optimizer": "adamw", "schedule": "cosine"}, None),
    ("relu", "logistic", 1, {"optimizer": "adam", "schedule": "step", "step_size": 1}, 3),
    ("tanh", "cross-entropy", 8, {"momentum": 0.5, "schedule": "plateau", "patience": 1}, 3),
    ("sigmoid", "cross-entropy", 1, {"schedule": "exponential", "gamma": 0.9, "early_stopping": 2}, 3),
    ("relu", "squared", 8, {"weight_decay": 0.001, "schedule": "invscaling"}, None),
]
IDS = [f"{a}-{l}-b{b}-{o.get('optimizer', 'sgd')}{'-K' + str(k) if k else ''}" for a, l, b, o, k in CASES]


def _fit(case, n, backend, epochs=2, X=None, y=None):
    activation, loss, batch, options, K = case
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 20)) if X is None else X
    y = rng.integers(0, 3, size=n) if y is None else y
    layers = [20, 8, 8, 1 if loss == "logistic" else 3]
    if loss == "logistic":
        y = (y > 0).astype(int)
    kinds = dict(activation=activation, loss=loss, backend=backend, dtype="float64")
    net = xpnet.Stack(layers, seeds=range(K), **kinds) if K else xpnet.MLP(layers, **kinds)
    lr = [0.02 * (k + 1) for k in range(K)] if K else 0.05  # a stack: one rate per network
    chunk = 8 if batch == 1 else None  # the same operations as the default 32 rows, a quarter of JAX's compiling
    net.fit(X, y, epochs=epochs, batch_size=batch, lr=lr, progress=False, sample_chunk=chunk, **options)
    return net


@pytest.fixture
def host_reads(monkeypatch):
    """Counts of every backend's host reads (:meth:`Backend.to_host`)."""
    counts = collections.Counter()
    for cls in backends.BACKENDS.values():
        original = cls.to_host

        def counted(self, x, original=original):
            counts[self.name] += 1
            return original(self, x)

        monkeypatch.setattr(cls, "to_host", counted)
    return counts


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch_steps_make_no_tensor_from_host_data_and_read_nothing_back(case, host_reads):
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.split(".")[0] in ("lift_fresh", "lift_fresh_copy", "_local_scalar_dense", "scalar_tensor"):
                self.ops[func.__name__.split(".")[0]] += 1
            return func(*args, **(kwargs or {}))

    counts = []
    for n in (64, 256):  # 4x the steps
        host_reads.clear()
        with Count() as mode:
            _fit(case, n, xpnet.get_backend("torch"))
        counts.append((dict(mode.ops), dict(host_reads)))
    assert counts[0] == counts[1], f"grows with the steps: {counts[0]} for 64 samples, {counts[1]} for 256"
    # the counters do see the fixed points: the data, each epoch's hyperparameters, the guard's reads
    assert counts[0][0].get("lift_fresh", 0) > 0 and counts[0][1].get("torch", 0) > 0


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("case", CASES[::3], ids=IDS[::3])
def test_host_reads_do_not_grow_with_the_steps(case, name, host_reads):
    backend = xpnet.get_backend(*{"numpy": ("numpy", None), "array_api_strict": ("array_api_strict", "device1")}[name])
    counts = []
    for n in (64, 256):
        host_reads.clear()
        _fit(case, n, backend)
        counts.append(host_reads[name])
    assert counts[0] == counts[1] > 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_jax_epochs_cross_no_host_boundary(case, monkeypatch):
    """Every compiled call of an epoch, its tail included, runs with device arrays under
    ``jax.transfer_guard("disallow")``: a Python number or a NumPy array inside would be refused."""
    jax = pytest.importorskip("jax")
    calls = []
    original = train.CompiledStepper.run

    def guarded(self, params, state, running, rows, start, stop, hyper):
        calls.append((start, stop))
        with jax.transfer_guard("disallow"):
            return original(self, params, state, running, rows, start, stop, hyper)

    monkeypatch.setattr(train.CompiledStepper, "run", guarded)
    _fit(case, 100, xpnet.get_backend("jax"))
    assert calls and calls[-1][1] == 100
    assert any((stop - start) % 8 for start, stop in calls)  # a tail (of a batch or a chunk of 8 rows) ran guarded


def test_jax_steps_ask_for_full_float32_matrix_products(monkeypatch):
    """JAX's default on NVIDIA GPUs is TF32; xpnet's compiled steps ask for HIGHEST, which the lowered
    program shows on a CPU too."""
    pytest.importorskip("jax")
    seen = []
    original = train._compiled_epoch.__wrapped__

    def recording(*args):
        epoch = original(*args)

        def run(carry, data):
            seen.append(epoch.lower(carry, data).as_text())
            return epoch(carry, data)

        return run

    monkeypatch.setattr(train, "_compiled_epoch", recording)
    rng = np.random.default_rng(0)
    net = xpnet.MLP([20, 8, 3], backend="jax", dtype="float32")
    net.fit(rng.normal(size=(40, 20)), rng.integers(0, 3, 40), epochs=1, batch_size=8, progress=False)
    dots = [line for text in seen for line in text.splitlines() if "dot_general" in line]
    assert dots and all("precision = [HIGHEST, HIGHEST]" in line for line in dots), dots[:2]
    assert backends.get_backend("jax").describe()["matmul_precision"] == "highest"


@pytest.mark.parametrize("where", [("array_api_strict", "device1"), ("torch", "cpu")])
def test_data_on_the_device_trains_and_scores_as_host_data_does(where):
    """X and labels already on the device (the stand-ins for CuPy arrays and CUDA tensors): fit,
    evaluate, predict and a stack take them, with the weights of host data bit for bit."""
    backend = xpnet.get_backend(*where)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 20)), rng.integers(0, 3, size=60)
    Xd, yd = backend.asarray(X, "float64"), backend.xp.asarray(y, device=backend.device)
    for K in (None, 2):
        for case in (("relu", "cross-entropy", 1, {}, K), ("tanh", "cross-entropy", 8, {"optimizer": "adam"}, K)):
            host, device = _fit(case, 60, backend, X=X, y=y), _fit(case, 60, backend, X=Xd, y=yd)
            for (W, b), (Wd, bd) in zip(host.get_weights(), device.get_weights()):
                np.testing.assert_array_equal(W, Wd)
                np.testing.assert_array_equal(b, bd)
            for got, expected in zip(np.atleast_1d(device.evaluate(Xd, yd)), np.atleast_1d(host.evaluate(X, y))):
                assert (got["loss"], got["accuracy"]) == (expected["loss"], expected["accuracy"])
                np.testing.assert_array_equal(got["confusion"], expected["confusion"])
            np.testing.assert_array_equal(device.predict(Xd), host.predict(X))
    net = xpnet.MLP([20, 3], backend=backend)
    with pytest.raises(xpnet.ValidationError, match="X and y must have the same number of samples; got 60 and 59"):
        net.fit(Xd, yd[:59])
    with pytest.raises(xpnet.ValidationError, match="labels must lie in 0..2"):
        net.fit(Xd, backend.xp.asarray(y + 1, device=backend.device))


def test_devices_are_named_cuda_n():
    """A CuPy device prints as ``<CUDA Device 0>``, a JAX GPU as ``CudaDevice(id=0)``: xpnet names both
    ``cuda:0`` in reports, benchmark names and errors."""
    cupy = backends.CupyBackend(xp=None, device=types.SimpleNamespace(id=1))
    assert cupy.device_name == "cuda:1" and str(cupy) == "cupy:cuda:1"
    assert backends._jax_device_name(types.SimpleNamespace(platform="gpu", id=2)) == "cuda:2"
    assert str(xpnet.get_backend("torch")) == "torch:cpu"
    assert str(xpnet.get_backend("array_api_strict", "device1")) == "array_api_strict:device1"
    if backends._installed("jax"):
        assert str(xpnet.get_backend("jax")) == "jax:cpu:0"
        assert xpnet.get_backend("jax", "cpu:0").device_name == "cpu:0"
