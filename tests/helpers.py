"""Helpers the tests share: which backends exist here, and small random problems."""

import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]

#: What the ``backend`` fixture (conftest.py) is parametrised by: an id -> (library, device). The CPU
#: ones run on any machine where the library is installed (array_api_strict on ``device1``, which refuses
#: a forgotten ``device=``); the GPU ones where a CUDA GPU is.
BACKENDS = {"numpy": ("numpy", None), "array_api_strict": ("array_api_strict", "device1"), "torch": ("torch", "cpu"),
            "jax": ("jax", "cpu"), "cupy@cuda": ("cupy", "cuda"), "torch@cuda": ("torch", "cuda"), "jax@gpu": ("jax", "gpu")}
if os.environ.get("XPNET_GPU_STAND_IN"):  # benchmarks/gpu_check.py --stand-in: the GPU cases on the CPU
    BACKENDS.update({"torch@cuda": ("torch", "cpu"), "jax@gpu": ("jax", "cpu")})
CPU = ["numpy", "array_api_strict", "torch", "jax"]
GPU = ["cupy@cuda", "torch@cuda", "jax@gpu"]
#: Relative tolerance of "the same weights" across backends and between a stack and lone networks.
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def sample_chunk(backend):
    """The per-sample chunk a test trains with: 8 rows where epochs compile (JAX, whose default chunk of 32
    compiles for about 4 s even for a tiny net: the same operations, a quarter of the compiling), the
    default elsewhere."""
    return 8 if backend.can_compile else None


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


#: History fields that measure the clock, not the run: a resumed run's differ from an uninterrupted one's.
TIMINGS = ("seconds", "samples_per_second")


def checkpoint_contents(path):
    """Every array of a weights file or checkpoint and its ``meta`` (JSON), the timings taken out of the
    history (``(arrays, meta)``)."""
    import json

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"]))
    histories = meta.get("history") or []
    for history in histories if meta.get("models") else [histories]:
        for record in history:
            for key in TIMINGS:
                record.pop(key, None)
    return arrays, meta


def assert_same_checkpoint(got, expected):
    """Two checkpoint files hold the same run bit for bit: every array (weights, the optimizer's state,
    early stopping's best weights) of the same dtype and values, and the same meta (the schedules' and
    early stopping's counters, the frozen networks, the epochs done, the history), timings aside."""
    arrays, meta = checkpoint_contents(got)
    want_arrays, want_meta = checkpoint_contents(expected)
    assert sorted(arrays) == sorted(want_arrays)
    for name, value in want_arrays.items():
        assert arrays[name].dtype == value.dtype, name
        np.testing.assert_array_equal(arrays[name], value, err_msg=name)
    assert meta == want_meta
