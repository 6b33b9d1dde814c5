"""Array libraries and devices: the only module in xpnet that names one.

A :class:`Backend` couples an Array API namespace (``xp``) with a device. Everything else in xpnet is
written once against ``xp`` and never imports numpy, cupy, torch or jax for computation.

>>> be = get_backend("numpy")
>>> x = be.asarray([[1.0, 2.0]], dtype="float32")
>>> be.to_host(x).dtype
dtype('float32')
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import BackendError, ValidationError

#: Backend name -> the module that must be importable for it.
LIBRARIES = {
    "numpy": "numpy",
    "cupy": "cupy",
    "torch": "torch",
    "jax": "jax",
    "array_api_strict": "array_api_strict",
}
DTYPES = ("float32", "float64")


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def installed_backends() -> list[str]:
    """Backend names whose library can be imported here (CuPy is listed even without a GPU)."""
    return [name for name, module in LIBRARIES.items() if _installed(module)]


@dataclass(frozen=True)
class Backend:
    """An array namespace ``xp`` on one ``device``, plus the few library-specific operations."""

    name: str
    xp: Any = field(repr=False)
    device: Any

    @property
    def inplace(self) -> bool:
        """Whether arrays can be updated in place (``W -= step``); JAX arrays are immutable."""
        return self.name != "jax"

    def copy(self, x):
        """A copy of ``x`` that later in-place updates of ``x`` leave alone (``x`` itself on JAX)."""
        return self.xp.asarray(x, copy=True) if self.inplace else x

    # -- dtypes -------------------------------------------------------------------------------------
    def dtype(self, name: str):
        """The namespace's dtype object for ``"float32"`` or ``"float64"``, checked against the device."""
        if name not in DTYPES:
            raise ValidationError(f"dtype must be one of {', '.join(DTYPES)}; got {name!r}")
        if name == "float64" and self.name == "jax":
            _enable_jax_x64()
        dtype = getattr(self.xp, name)
        info = getattr(self.xp, "__array_namespace_info__", None)
        if info is not None:
            supported = info().dtypes(device=self.device, kind="real floating")
            if name not in supported:
                raise BackendError(
                    f"{name} is not supported by backend {self.name!r} on device {self.device}; "
                    f"it supports {', '.join(sorted(supported)) or 'no floating dtype'}"
                )
        return dtype

    # -- moving data --------------------------------------------------------------------------------
    def asarray(self, host, dtype: str | None = None):
        """Copy a host (NumPy or Python) array onto this backend's device."""
        host = np.asarray(host)
        if dtype is None:
            return self.xp.asarray(host, device=self.device)
        return self.xp.asarray(host, dtype=self.dtype(dtype), device=self.device)

    def to_host(self, x) -> np.ndarray:
        """Copy a backend array back into a NumPy array (a no-op view for NumPy)."""
        if self.name == "numpy":
            return np.asarray(x)
        if self.name == "cupy":
            return x.get()
        if self.name == "torch":
            return x.detach().cpu().numpy()
        if self.name == "jax":
            return np.asarray(x)
        return np.from_dlpack(x)  # array_api_strict, on any of its devices

    def synchronize(self, *arrays) -> None:
        """Wait until the device has finished all work queued so far (for honest timing)."""
        if self.name == "cupy":
            self.device.synchronize()
        elif self.name == "torch" and self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        elif self.name == "jax":
            for a in arrays:
                a.block_until_ready()

    @property
    def can_compile(self) -> bool:
        """Whether :meth:`compile_epoch` can compile a training epoch (JAX's tracing compiler)."""
        return self.name == "jax"

    def compile_epoch(self, step, batch_size: int, lr: float, shuffled: bool):
        """Compile the whole batches of an epoch into one call, or return ``None`` without a compiler.

        ``step(params, X, t, lr) -> (params, loss)`` must be pure. The result is called as
        ``run(params, X, T, order) -> (params, summed loss)``; it runs ``X.shape[0] // batch_size`` steps
        over consecutive rows of ``X``, or over the rows ``order`` lists when ``shuffled``. With JAX the
        loop is ``lax.scan`` inside ``jax.jit``: one dispatch per epoch instead of dozens per step.
        """
        if not self.can_compile:
            return None
        import jax

        xp = self.xp

        def rows(A, start):
            return jax.lax.dynamic_slice_in_dim(A, start, batch_size, axis=0)

        def epoch(params, X, T, order):
            def body(carry, k):
                params, total = carry
                if shuffled:
                    idx = rows(order, k * batch_size)
                    xb, tb = xp.take(X, idx, axis=0), xp.take(T, idx, axis=0)
                else:
                    xb, tb = rows(X, k * batch_size), rows(T, k * batch_size)
                params, loss = step(params, xb, tb, lr)
                return (params, total + loss), None

            steps = X.shape[0] // batch_size
            start = (params, xp.zeros((), dtype=X.dtype))
            # Four per-sample steps per loop iteration: +10-17 % at batch size 1 in three runs here;
            # larger batches measured no gain, or a loss (docs/benchmarks.md).
            unroll = 4 if batch_size == 1 else 1
            (params, total), _ = jax.lax.scan(body, start, xp.arange(steps), unroll=unroll)
            return params, total

        return jax.jit(epoch)

    def quiet_overflow(self):
        """A context in which overflow to inf/NaN raises no warning (xpnet checks for it itself)."""
        if self.name in ("numpy", "array_api_strict"):
            return np.errstate(over="ignore", invalid="ignore")
        return contextlib.nullcontext()

    def __str__(self) -> str:
        return f"{self.name}:{self.device}"


_JAX_X64 = False


def _enable_jax_x64() -> None:
    global _JAX_X64
    if not _JAX_X64:
        import jax

        jax.config.update("jax_enable_x64", True)
        _JAX_X64 = True


def _import(name: str):
    try:
        return importlib.import_module(LIBRARIES[name])
    except ImportError as exc:
        available = ", ".join(installed_backends())
        raise BackendError(
            f"backend {name!r} needs the {LIBRARIES[name]!r} package, which is not installed "
            f"({exc.msg}); installed backends: {available}"
        ) from None


def get_backend(name: str | Backend = "numpy", device: str | None = None) -> Backend:
    """Resolve a backend name (and optional device string) to a :class:`Backend`.

    ``device`` is ``"cpu"`` for numpy, torch and jax; ``"cuda"`` or ``"cuda:N"`` for cupy and torch
    (and jax with CUDA); one of array_api_strict's device names (``"CPU_DEVICE"``, ``"device1"``,
    ``"no_float64"``, ...) for array_api_strict. ``None`` picks the library's default.
    """
    if isinstance(name, Backend):
        if device is not None and str(device) != str(name.device):
            raise BackendError(f"backend {name} is already bound to device {name.device}, not {device!r}")
        return name
    if name not in LIBRARIES:
        raise BackendError(
            f"unknown backend {name!r}; known backends: {', '.join(LIBRARIES)} "
            f"(installed: {', '.join(installed_backends())})"
        )
    module = _import(name)
    resolve = _RESOLVERS[name]
    return resolve(module, device)


def _fast_numpy():
    """NumPy's own namespace (which implements the Array API standard from 2.1 on), with the functions a
    training step calls most replaced by equivalents that skip NumPy's Python-level wrappers (at batch
    size 1, ``np.sum`` costs ~5 us against ~2 us for ``np.add.reduce``) and that avoid NumPy's slow
    reductions along one axis of a tall matrix: NumPy runs those row by row, at ~40 ns a row, so from 256
    rows on a column sum is a product with a vector of ones (one BLAS call; 10 us instead of 29 us for
    (1024, 32)) and a row maximum over at most 32 columns is taken down a transposed copy (9 us instead
    of 107 us for (1024, 10); ``python benchmarks/profile_step.py parts``). Below 256 rows whole training
    epochs measured no gain (docs/benchmarks.md)."""
    import types

    ns = types.ModuleType("xpnet._numpy", "numpy with faster reductions (see xpnet.backends)")
    for name in dir(np):
        if not name.startswith("_"):
            try:
                setattr(ns, name, getattr(np, name))
            except AttributeError:  # names NumPy keeps only to explain their removal
                pass
    ns.__array_namespace_info__ = np.__array_namespace_info__
    ns.__array_api_version__ = np.__array_api_version__

    def sum(x, /, *, axis=None, dtype=None, keepdims=False):
        if x.ndim == 2 and x.shape[0] >= 256 and axis is not None and dtype is None and x.dtype.kind == "f":
            ones = np.ones(x.shape[axis], dtype=x.dtype)
            if axis in (0, -2):
                total = ones @ x
                return total[None, :] if keepdims else total
            total = x @ ones
            return total[:, None] if keepdims else total
        return np.add.reduce(x, axis=axis, dtype=dtype, keepdims=keepdims)

    def max(x, /, *, axis=None, keepdims=False):
        if x.ndim == 2 and x.shape[0] >= 256 and x.shape[1] <= 32 and axis in (1, -1):
            top = np.maximum.reduce(np.ascontiguousarray(x.T), axis=0)
            return top[:, None] if keepdims else top
        return np.maximum.reduce(x, axis=axis, keepdims=keepdims)

    def matrix_transpose(x, /):
        return x.mT

    ns.sum, ns.max, ns.matrix_transpose = sum, max, matrix_transpose
    return ns


def _numpy(np_module, device):
    if device not in (None, "cpu"):
        raise BackendError(f"backend 'numpy' runs on device 'cpu' only; got {device!r}")
    # NumPy >= 2.1 implements the Array API standard itself; calling it directly skips the
    # array-api-compat wrappers, which cost microseconds per call at batch size 1.
    if tuple(int(p) for p in np_module.__version__.split(".")[:2]) >= (2, 1):
        global _NUMPY
        if _NUMPY is None:
            _NUMPY = _fast_numpy()
        xp = _NUMPY
    else:
        import array_api_compat.numpy as xp
    return Backend("numpy", xp, "cpu")


_NUMPY = None


def _cuda_index(device) -> int:
    if device in (None, "cuda", "gpu"):
        return 0
    text = str(device)
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    raise BackendError(f"backend 'cupy' takes device 'cuda' or 'cuda:N'; got {device!r}")


def _cupy(cupy, device):
    index = _cuda_index(device)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver, ImportError of libcudart, ...
        count, reason = 0, f"{type(exc).__name__}: {exc}".splitlines()[0]
    else:
        reason = "the CUDA runtime reports no device"
    if index >= count:
        others = [b for b in installed_backends() if b != "cupy"]
        where = f"device cuda:{index} does not exist ({count} found)" if count else f"no CUDA device ({reason})"
        raise BackendError(f"backend 'cupy' is installed but {where}; use one of: {', '.join(others)}")
    import array_api_compat.cupy as xp

    return Backend("cupy", xp, cupy.cuda.Device(index))


def _torch(torch, device):
    import array_api_compat.torch as xp

    try:
        dev = torch.device(device or "cpu")
    except RuntimeError as exc:
        raise BackendError(f"backend 'torch': invalid device {device!r} ({exc})") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = dev.index or 0
        if index >= count:
            raise BackendError(
                f"backend 'torch' has no CUDA device {index} ({count} found; this torch build "
                f"{'has' if torch.version.cuda else 'lacks'} CUDA support); use device 'cpu'"
            )
        dev = torch.device("cuda", index)
    elif dev.type != "cpu":
        raise BackendError(f"backend 'torch' supports devices 'cpu' and 'cuda:N' in xpnet; got {device!r}")
    return Backend("torch", xp, dev)


def _jax(jax, device):
    import jax.numpy as xp

    platform, _, index = (device or "cpu").partition(":")
    platform = {"cuda": "gpu"}.get(platform, platform)
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    index = int(index) if index.isdigit() else 0
    if index >= len(devices):
        raise BackendError(f"backend 'jax' has no device {device!r}; available: {jax.devices()}")
    return Backend("jax", xp, devices[index])


def _array_api_strict(strict, device):
    names = [d for d in strict.__array_namespace_info__().devices()]
    if device is None:
        return Backend("array_api_strict", strict, names[0])
    for d in names:
        if str(device) in (str(d), repr(d), getattr(d, "_device", None)):
            return Backend("array_api_strict", strict, d)
    raise BackendError(
        f"backend 'array_api_strict' has no device {device!r}; "
        f"available: {', '.join(str(getattr(d, '_device', d)) for d in names)}"
    )


_RESOLVERS = {
    "numpy": _numpy,
    "cupy": _cupy,
    "torch": _torch,
    "jax": _jax,
    "array_api_strict": _array_api_strict,
}


def library_versions() -> dict[str, str]:
    """Versions of the array libraries that are installed (for benchmark records)."""
    out = {}
    for name in ("numpy", "array_api_compat", "cupy", "torch", "jax", "array_api_strict", "sklearn"):
        if not _installed(name):
            continue
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception as exc:  # a broken install should not stop a benchmark record
            out[name] = f"unavailable ({type(exc).__name__})"
    return out
