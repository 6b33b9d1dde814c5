"""Array libraries and devices: the only module in xpnet that names one.

A :class:`Backend` couples an Array API namespace (``xp``) with a device. There is one small subclass per
library (:class:`NumpyBackend`, :class:`CupyBackend`, :class:`TorchBackend`, :class:`JaxBackend`,
:class:`StrictBackend`, :class:`DaskBackend`, and :class:`NdonnxBackend`, whose arrays record an ONNX
graph); each states its capabilities as class attributes (``supports_inplace``,
``can_compile``) and overrides only what its library does differently (moving data to the host,
synchronising, compiling an epoch, enabling float64). Adding a library means adding a class and listing it
in :data:`BACKENDS`.

Everything else in xpnet is written once against ``xp``. Where NumPy has a faster spelling of something
the kernels do at every step, a named helper at the end of this module (:func:`column_sum`,
:func:`row_max`, :func:`row_sum`, :func:`model_sum`, :func:`transpose`, :func:`weight_gradient`) takes
the fast path when ``xp`` is NumPy and the standard spelling otherwise; :func:`positive_part` keeps a
Python number from becoming a device array on every call (PyTorch).

>>> be = get_backend("numpy")
>>> x = be.asarray([[1.0, 2.0]], dtype="float32")
>>> be.to_host(x).dtype
dtype('float32')
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from . import checks
from .errors import BackendError

DTYPES = ("float32", "float64")


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing, or a module without a spec
        return False


@dataclass(frozen=True)
class Backend:
    """An array namespace ``xp`` on one ``device``, plus the few operations that differ by library.

    Attributes
    ----------
    name : str
        The name :func:`get_backend` knows it by (``"numpy"``, ``"torch"``, ...).
    library : str
        The module that must be importable for it.
    supports_inplace : bool
        Whether arrays can be updated in place (``W -= step``); JAX arrays are immutable.
    can_compile : bool
        Whether :meth:`compile_epoch` compiles a training epoch into one call.
    can_train : bool
        Whether its arrays hold values that training can read back (not so for a tracing library).
    xp : module
        The Array API namespace.
    device : object
        The library's device object.
    """

    name: ClassVar[str] = ""
    library: ClassVar[str] = ""
    supports_inplace: ClassVar[bool] = True
    can_compile: ClassVar[bool] = False
    can_train: ClassVar[bool] = True
    #: The smallest batch size training makes sense with (a graph-building library: hundreds or more).
    min_batch_size: ClassVar[int] = 1
    #: Whether a training step runs chunk by chunk (:meth:`map_chunks`), with the weights on the host.
    trains_by_chunks: ClassVar[bool] = False

    xp: Any = field(repr=False)
    device: Any

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def resolve(cls, module, device) -> "Backend":
        """The backend on ``device`` (a string, or ``None`` for the library's default)."""
        raise NotImplementedError

    @classmethod
    def holds(cls, x) -> bool:
        """Whether ``x`` is an array of this backend's library."""
        return False

    @classmethod
    def device_of(cls, x):
        """The device of ``x`` (one of this library's arrays), as :meth:`resolve` takes it."""
        return None

    # -- dtypes -------------------------------------------------------------------------------------
    def dtype(self, name: str):
        """The namespace's dtype object for ``"float32"`` or ``"float64"``, checked against the device."""
        dtype = getattr(self.xp, checks.choice("dtype", name, DTYPES))
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
        """Copy a backend array back into a NumPy array."""
        return np.from_dlpack(x)

    def copy(self, x):
        """A copy of ``x`` that later in-place updates of ``x`` leave alone (``x`` itself when arrays are
        immutable)."""
        return self.xp.asarray(x, copy=True) if self.supports_inplace else x

    def synchronize(self, *arrays) -> None:
        """Wait until the device has finished the work queued so far (for honest timing)."""

    def context(self):
        """The context all of xpnet's work on this backend runs in (training epochs, evaluation,
        prediction, copies to the device): overflow to inf/NaN raises no warning where the library warns
        (xpnet checks for it itself), the device is the current one where the library has a current
        device (CuPy), the matmul precision is full float32 (JAX)."""
        return contextlib.nullcontext()

    def threads(self, count: int | None):
        """The math library's thread count set to ``count`` for the work inside (``None``: left as it is),
        and restored after, so that nothing leaks into the rest of the process. Only where the library has
        a setting that can change at run time (NumPy's BLAS, PyTorch on the CPU); elsewhere nothing."""
        return contextlib.nullcontext()

    def thread_count(self) -> int | None:
        """The math library's thread count now (``None`` where it has no setting xpnet can change)."""
        return None

    @property
    def device_name(self) -> str:
        """The device as xpnet names it in reports, benchmark names and errors (``cpu``, ``cuda:0``)."""
        return str(self.device)

    # -- compiling ----------------------------------------------------------------------------------
    def traced_rows(self, A, start, size: int, axis: int = 0):
        """``size`` consecutive entries of ``A`` along ``axis`` from ``start``, where ``start`` may be a
        value traced by the compiler (the standard spelling gathers them with ``take``)."""
        return self.xp.take(A, start + self.xp.arange(size), axis=axis)

    def compile_epoch(self, body, steps: int, unroll: int = 1):
        """Compile ``steps`` calls of ``carry = body(carry, data, k)`` (k = 0 .. steps - 1) into one call
        ``run(carry, data) -> carry``; only for backends whose ``can_compile`` is true."""
        raise BackendError(f"backend {self.name!r} has no compiler")

    def map_chunks(self, fn, *arrays) -> list:
        """``fn`` applied to every row chunk of ``arrays`` (host arrays), in parallel where the library
        can; only for backends whose ``trains_by_chunks`` is true."""
        raise BackendError(f"backend {self.name!r} does not split data into chunks")

    def describe(self) -> dict:
        """What a report should say about this backend's device (name, driver and CUDA versions on a GPU)."""
        return {"backend": self.name, "device": self.device_name}

    def __str__(self) -> str:
        return f"{self.name}:{self.device_name}"


class NumpyBackend(Backend):
    """NumPy on the CPU. NumPy >= 2.1 implements the standard itself and is used as ``xp`` directly
    (the array-api-compat wrappers add a call per operation, which batch size 1 feels); older NumPy goes
    through ``array_api_compat.numpy``."""

    name, library = "numpy", "numpy"

    @classmethod
    def resolve(cls, module, device):
        if device not in (None, "cpu"):
            raise BackendError(f"backend 'numpy' runs on device 'cpu' only; got {device!r}{_cuda_hint(device)}")
        if tuple(int(p) for p in module.__version__.split(".")[:2]) >= (2, 1):
            return cls(module, "cpu")
        import array_api_compat.numpy as xp

        return cls(xp, "cpu")

    @classmethod
    def holds(cls, x):
        return isinstance(x, (np.ndarray, np.generic))

    def to_host(self, x):
        return np.asarray(x)

    def context(self):
        return np.errstate(over="ignore", invalid="ignore")

    def threads(self, count):
        return _blas_threads(count)

    def thread_count(self):
        return _blas_thread_count()


class CupyBackend(Backend):
    """CuPy on a CUDA GPU, through ``array_api_compat.cupy``."""

    name, library = "cupy", "cupy"

    @classmethod
    def resolve(cls, cupy, device):
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

        return cls(xp, cupy.cuda.Device(index))

    @classmethod
    def holds(cls, x):
        return array_api_compat.is_cupy_array(x)

    @classmethod
    def device_of(cls, x):
        return f"cuda:{x.device.id}"

    @property
    def device_name(self):
        return f"cuda:{self.device.id}"  # a cupy Device prints as <CUDA Device 0>

    def context(self):
        # CuPy works on the current device, and array-api-compat's CuPy creation functions ignore
        # device= (array-api-compat issue 337): on cuda:N, N > 0, everything runs with N made current.
        return self.device

    def asarray(self, host, dtype=None):
        with self.device:
            return super().asarray(host, dtype)

    def to_host(self, x):
        return x.get()

    def synchronize(self, *arrays):
        self.device.synchronize()

    def describe(self):
        import cupy

        runtime = cupy.cuda.runtime
        props = runtime.getDeviceProperties(self.device.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        return {"backend": self.name, "device": self.device_name, "name": name,
                "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                "cuda_runtime": _cuda_version(runtime.runtimeGetVersion()),
                "cuda_driver": _cuda_version(runtime.driverGetVersion())}


#: The backends that compute on a CUDA GPU, and how each names it.
CUDA_BACKENDS = "--backend cupy (--device cuda), torch (--device cuda) or jax (--device cuda, JAX with CUDA)"


def _cuda_hint(device) -> str:
    """What to say where a backend that has no CUDA device was asked for one."""
    return f"; CUDA runs on {CUDA_BACKENDS}" if str(device).startswith(("cuda", "gpu")) else ""


def _cuda_version(number: int) -> str:
    """CUDA's encoded version (major * 1000 + minor * 10) as ``"major.minor"``."""
    return f"{number // 1000}.{number % 1000 // 10}"


class TorchBackend(Backend):
    """PyTorch on the CPU or a CUDA GPU, through ``array_api_compat.torch``."""

    name, library = "torch", "torch"

    @classmethod
    def resolve(cls, torch, device):
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
        return cls(xp, dev)

    @classmethod
    def holds(cls, x):
        return array_api_compat.is_torch_array(x)

    @classmethod
    def device_of(cls, x):
        return str(x.device)

    def asarray(self, host, dtype=None):
        host = np.asarray(host)
        if not host.flags.writeable:  # torch would share its memory and warn that it may not write to it
            host = host.copy()
        return super().asarray(host, dtype)

    def to_host(self, x):
        return x.detach().cpu().numpy()

    @contextlib.contextmanager
    def threads(self, count):
        import torch

        if count is None or self.device.type != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def thread_count(self):
        import torch

        return torch.get_num_threads() if self.device.type == "cpu" else None

    def synchronize(self, *arrays):
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def describe(self):
        import torch

        out = {"backend": self.name, "device": str(self.device)}
        if self.device.type == "cuda":
            props = torch.cuda.get_device_properties(self.device)
            out.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1), cuda_runtime=torch.version.cuda)
        return out


class JaxBackend(Backend):
    """JAX on its CPU or GPU devices. Arrays are immutable; a training epoch compiles into one call
    (``jax.jit`` of a ``jax.lax.scan``); float64 needs ``jax_enable_x64``, switched on when asked for."""

    name, library = "jax", "jax"
    supports_inplace = False
    can_compile = True

    @classmethod
    def resolve(cls, jax, device):
        import jax.numpy as xp

        platform, _, index = (device or "cpu").partition(":")
        platform = {"cuda": "gpu"}.get(platform, platform)
        try:
            devices = jax.devices(platform)
        except RuntimeError:
            devices = []
        index = int(index) if index.isdigit() else 0
        if index >= len(devices):
            hint = "; this JAX has no CUDA support (pip install 'jax[cuda13]')" if platform == "gpu" else ""
            raise BackendError(f"backend 'jax' has no device {device!r}; available: {jax.devices()}{hint}")
        return cls(xp, devices[index])

    @classmethod
    def holds(cls, x):
        return array_api_compat.is_jax_array(x)

    @classmethod
    def device_of(cls, x):
        return _jax_device_name(next(iter(x.devices())))

    @property
    def device_name(self):
        return _jax_device_name(self.device)

    def context(self):
        return _jax_precision()

    def dtype(self, name):
        if name == "float64":
            _enable_jax_x64()
        return super().dtype(name)

    def asarray(self, host, dtype=None):
        import jax  # an explicit transfer, which jax.transfer_guard("disallow") lets through

        host = np.asarray(host) if dtype is None else np.asarray(host, dtype=np.dtype(self.dtype(dtype)))
        return jax.device_put(host, self.device)

    def to_host(self, x):
        import jax

        return np.asarray(jax.device_get(x))

    def synchronize(self, *arrays):
        for a in arrays:
            a.block_until_ready()

    def describe(self):
        return {"backend": self.name, "device": self.device_name, "name": getattr(self.device, "device_kind", ""),
                "matmul_precision": JAX_MATMUL_PRECISION}

    def traced_rows(self, A, start, size, axis=0):
        import jax

        return jax.lax.dynamic_slice_in_dim(A, start, size, axis=axis)  # no copy of the data, unlike take

    def compile_epoch(self, body, steps, unroll=1):
        import jax

        def epoch(carry, data):
            def scan_body(c, k):
                return body(c, data, k), None

            carry, _ = jax.lax.scan(scan_body, carry, self.xp.arange(steps), unroll=unroll)
            return carry

        compiled = jax.jit(epoch)

        def run(carry, data):  # traced and run at the precision of all of xpnet's JAX work
            with _jax_precision():
                return compiled(carry, data)

        run.lower = lambda carry, data: _lowered(compiled, carry, data)
        return run


#: The precision of JAX's float32 matrix products in xpnet (``jax.default_matmul_precision``): full
#: float32 (``"highest"``) unless the environment variable ``XPNET_JAX_MATMUL_PRECISION`` says otherwise.
#: JAX's own default on NVIDIA GPUs is TF32 (about 10 mantissa bits): ``XPNET_JAX_MATMUL_PRECISION=default``
#: chooses it, and benchmark records say which was used (:meth:`JaxBackend.describe`).
JAX_MATMUL_PRECISION = os.environ.get("XPNET_JAX_MATMUL_PRECISION", "highest")


def _jax_precision():
    if JAX_MATMUL_PRECISION == "default":
        return contextlib.nullcontext()
    import jax

    return jax.default_matmul_precision(JAX_MATMUL_PRECISION)


def _lowered(compiled, carry, data):
    """The program ``compiled`` runs for these arguments, as xpnet traces it (for tests and reports)."""
    with _jax_precision():
        return compiled.lower(carry, data)


def _jax_device_name(device) -> str:
    """``cuda:N`` for JAX's NVIDIA GPUs (platform ``gpu``), ``PLATFORM:N`` otherwise."""
    return f"{'cuda' if device.platform == 'gpu' else device.platform}:{device.id}"


@functools.lru_cache(maxsize=None)
def _enable_jax_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


class StrictBackend(Backend):
    """``array_api_strict``: the standard and nothing else. Its ``device1`` device turns a forgotten
    ``device=`` into an error and ``no_float64`` catches float64 leaking into float32 work."""

    name, library = "array_api_strict", "array_api_strict"

    @classmethod
    def resolve(cls, strict, device):
        names = list(strict.__array_namespace_info__().devices())
        if device is None:
            return cls(strict, names[0])
        if isinstance(device, strict.Device) and device in names:
            return cls(strict, device)
        try:
            wanted = strict.Device(str(device))
        except ValueError:
            wanted = None
        if wanted in names:
            return cls(strict, wanted)
        available = ", ".join(map(_strict_name, names))
        raise BackendError(f"backend 'array_api_strict' has no device {device!r}; available: {available}"
                           f"{_cuda_hint(device)}")

    @classmethod
    def holds(cls, x):
        return type(x).__module__.split(".")[0] == "array_api_strict"

    @classmethod
    def device_of(cls, x):
        return x.device

    @property
    def device_name(self):
        return _strict_name(self.device)

    def context(self):
        return np.errstate(over="ignore", invalid="ignore")

    def threads(self, count):  # its arrays compute with NumPy's BLAS
        return _blas_threads(count)

    def thread_count(self):
        return _blas_thread_count()


def _strict_name(device) -> str:
    return repr(device).split("'")[1]  # repr: array_api_strict.Device('NAME')


class NdonnxBackend(Backend):
    """ndonnx: arrays that record an ONNX graph instead of computing. The forward kernels run on them
    unchanged, which is how a network is exported (:mod:`xpnet.export`); nothing can be read back, so
    they cannot train."""

    name, library = "ndonnx", "ndonnx"
    supports_inplace = False
    can_train = False

    @classmethod
    def resolve(cls, ndonnx, device):
        if device not in (None, "cpu"):
            raise BackendError(f"backend 'ndonnx' records a graph and has no devices; got {device!r}")
        return cls(ndonnx, ndonnx.__array_namespace_info__().devices()[0])

    def asarray(self, host, dtype=None):
        host = np.asarray(host)
        return self.xp.asarray(host) if dtype is None else self.xp.asarray(host, dtype=self.dtype(dtype))

    def to_host(self, x):
        raise BackendError("backend 'ndonnx' records an ONNX graph and holds no values to read back; "
                           "run the exported model in onnxruntime")

    def trace_input(self, shape, dtype: str):
        """A symbolic input of ``shape`` (a string is a free dimension, e.g. ``("N", 784)``)."""
        return self.xp.argument(shape=shape, dtype=self.dtype(dtype))

    def build(self, inputs: dict, outputs: dict):
        """The ONNX ``ModelProto`` computing ``outputs`` from the symbolic ``inputs``."""
        return self.xp.build(inputs, outputs)


class DaskBackend(Backend):
    """dask.array through ``array_api_compat.dask.array``: data split into chunks of :attr:`chunk_rows`
    rows, each operation run chunk by chunk in parallel -- by the threaded scheduler, or by a Dask cluster
    when a ``distributed.Client`` is active. Arrays of at most :attr:`chunk_rows` rows (the weights, a
    small data set) stay NumPy arrays, so the forward kernels on a chunked input build one graph over the
    chunks (evaluate and predict). Training runs by chunks: each step sends the weights to every chunk,
    runs the same kernels there on NumPy (:meth:`map_chunks`) and adds the chunks' gradients up, which
    measured cheaper than one graph of the whole step (docs/backends.md). Per-sample training is refused
    (:attr:`min_batch_size`): a round trip per sample would cost milliseconds each."""

    name, library = "dask", "dask"
    min_batch_size = 256
    trains_by_chunks = True
    chunk_rows = 10_000

    @classmethod
    def resolve(cls, dask, device):
        if device not in (None, "cpu"):
            raise BackendError(f"backend 'dask' runs its chunks on NumPy, device 'cpu'; got {device!r}"
                               f"{_cuda_hint(device)}")
        import array_api_compat.dask.array as xp

        return cls(xp, "cpu")

    @classmethod
    def holds(cls, x):
        return array_api_compat.is_dask_array(x)

    @classmethod
    def device_of(cls, x):
        return "cpu"

    def dtype(self, name):
        return getattr(self.xp, checks.choice("dtype", name, DTYPES))

    def asarray(self, host, dtype=None):
        import dask.array

        host = np.asarray(host) if dtype is None else np.asarray(host, dtype=dtype)
        if host.ndim == 2 and host.shape[0] > self.chunk_rows:
            return dask.array.from_array(host, chunks=(self.chunk_rows, host.shape[1]))
        return host

    def copy(self, x):
        return np.array(x, copy=True)

    def to_host(self, x):
        return np.asarray(x.compute() if array_api_compat.is_dask_array(x) else x)

    def map_chunks(self, fn, *arrays):
        import dask

        def blocks(a):
            return a.to_delayed().ravel().tolist() if array_api_compat.is_dask_array(a) else [a]

        return list(dask.compute(*[dask.delayed(fn)(*parts) for parts in zip(*map(blocks, arrays))]))

    def context(self):
        return np.errstate(over="ignore", invalid="ignore")


#: Backend name -> its class.
BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (NumpyBackend, CupyBackend, TorchBackend, JaxBackend, StrictBackend, DaskBackend,
                          NdonnxBackend)
}
#: Backend name -> the module that must be importable for it.
LIBRARIES = {name: cls.library for name, cls in BACKENDS.items()}


def installed_backends() -> list[str]:
    """Backend names whose library can be imported here (CuPy is listed even without a GPU)."""
    return [name for name, module in LIBRARIES.items() if _installed(module)]


def backend_of(x) -> Backend:
    """The backend whose library ``x`` is an array of, on ``x``'s device (a one-line
    :class:`BackendError` for anything else)."""
    for cls in BACKENDS.values():
        if cls.holds(x):
            return get_backend(cls.name, cls.device_of(x))
    raise BackendError(f"{type(x).__module__}.{type(x).__name__} is not an array of a backend xpnet knows "
                       f"({', '.join(BACKENDS)})")


def host_copy(x) -> np.ndarray:
    """A NumPy copy of ``x`` whatever library and device it lives on (NumPy arrays and lists as they are)."""
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return np.asarray(x)
    return backend_of(x).to_host(x)


#: The backends that can run on a CUDA GPU, and the device each is asked for.
GPU_DEVICES = {"cupy": "cuda", "torch": "cuda", "jax": "gpu"}


def gpu_backends(devices=None) -> tuple[list[Backend], dict[str, str]]:
    """The backends that have a CUDA GPU here, and for the others the one-line reason they have none
    (``devices``: backend name -> device to ask for, :data:`GPU_DEVICES` by default)."""
    found, reasons = [], {}
    for name, device in (GPU_DEVICES if devices is None else devices).items():
        try:
            found.append(get_backend(name, device))
        except BackendError as exc:
            reasons[name] = str(exc)
    return found, reasons


def _cuda_index(device) -> int:
    if device in (None, "cuda", "gpu"):
        return 0
    text = str(device)
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    raise BackendError(f"backend 'cupy' takes device 'cuda' or 'cuda:N'; got {device!r}")


def get_backend(name: str | Backend = "numpy", device: str | None = None) -> Backend:
    """Resolve a backend name (and optional device string) to a :class:`Backend`.

    Parameters
    ----------
    name : str or Backend
        ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"`` or ``"array_api_strict"``; a :class:`Backend` is
        returned as it is.
    device : str, optional
        ``"cpu"`` for numpy, torch and jax; ``"cuda"`` or ``"cuda:N"`` for cupy and torch (``"gpu:N"``
        for jax); one of array_api_strict's device names (``"CPU_DEVICE"``, ``"device1"``,
        ``"no_float64"``) for array_api_strict. ``None`` picks the library's default.

    Returns
    -------
    Backend

    Raises
    ------
    BackendError
        The name is unknown, the library is not installed, or the device does not exist -- in one line
        that says what can be used instead.
    """
    if isinstance(name, Backend):
        if device is not None and str(device) != str(name.device):
            raise BackendError(f"backend {name} is already bound to device {name.device}, not {device!r}")
        return name
    if name not in BACKENDS:
        raise BackendError(
            f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)} "
            f"(installed: {', '.join(installed_backends())})"
        )
    cls = BACKENDS[name]
    try:
        module = importlib.import_module(cls.library)
    except ImportError as exc:
        raise BackendError(
            f"backend {name!r} needs the {cls.library!r} package, which is not installed "
            f"({exc.msg}); installed backends: {', '.join(installed_backends())}"
        ) from None
    return cls.resolve(module, device)


def library_versions() -> dict[str, str]:
    """Versions of the array libraries that are installed (for benchmark records)."""
    out = {}
    for name in ("numpy", "array_api_compat", "cupy", "torch", "jax", "array_api_strict", "dask", "ndonnx", "sklearn"):
        if not _installed(name):
            continue
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception as exc:  # a broken install should not stop a benchmark record
            out[name] = f"unavailable ({type(exc).__name__})"
    return out


@functools.lru_cache(maxsize=1)
def _blas_pools():
    """threadpoolctl's view of the BLAS libraries loaded (NumPy's among them), found once: looking for them
    walks every loaded library, too slow to repeat at every ``fit``."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def _blas_threads(count):
    """NumPy's BLAS (OpenBLAS, MKL, BLIS) limited to ``count`` threads inside, through threadpoolctl."""
    return contextlib.nullcontext() if count is None else _blas_pools().limit(limits=count)


def _blas_thread_count():
    counts = [pool.num_threads for pool in _blas_pools().lib_controllers]
    return max(counts) if counts else None


def thread_pools() -> dict:
    """The BLAS libraries in use and their thread counts (threadpoolctl, when installed), and PyTorch's
    thread count when PyTorch is imported: what a benchmark record needs to be read correctly."""
    out = {}
    try:
        from threadpoolctl import threadpool_info

        out["blas"] = [{k: pool.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                       for pool in threadpool_info()]
    except ImportError:
        out["blas"] = "threadpoolctl not installed"
    if sys.modules.get("torch") is not None:
        out["torch_threads"] = sys.modules["torch"].get_num_threads()
    return out


# -- fast paths ----------------------------------------------------------------------------------
# Each helper is what the kernels call for one operation. With NumPy as ``xp`` it calls the ufunc's own
# ``reduce`` (NumPy's ``sum``/``max`` wrappers add Python work to every call, which batch size 1 feels)
# and, for tall matrices, avoids NumPy's one-axis reductions, which run row by row: from FAST_ROWS rows
# on, a column sum is a product with a vector of ones and a row maximum over a few columns is taken down
# a transposed copy (docs/benchmarks.md has the measurements). Every other namespace gets the standard
# spelling. Arrays are (..., rows, columns): one network, or a stack with a leading model axis.

#: Rows from which NumPy's column sums and short row maxima take the BLAS / transposed-copy path.
FAST_ROWS = 256


def column_sum(xp, x):
    """Sum over the rows (axis -2), keeping that axis: (..., n, m) -> (..., 1, m)."""
    if xp is not np:
        return xp.sum(x, axis=-2, keepdims=True)
    if x.shape[-2] >= FAST_ROWS and x.dtype.kind == "f":
        return np.ones((1, x.shape[-2]), dtype=x.dtype) @ x
    return np.add.reduce(x, axis=-2, keepdims=True)


def row_sum(xp, x):
    """Sum over the columns (axis -1), keeping that axis: (..., n, m) -> (..., n, 1)."""
    if xp is not np:
        return xp.sum(x, axis=-1, keepdims=True)
    return np.add.reduce(x, axis=-1, keepdims=True)


def row_max(xp, x):
    """Maximum over the columns (axis -1), keeping that axis: (..., n, m) -> (..., n, 1)."""
    if xp is not np:
        return xp.max(x, axis=-1, keepdims=True)
    if x.ndim == 2 and x.shape[0] >= FAST_ROWS and x.shape[1] <= 32:
        return np.maximum.reduce(np.ascontiguousarray(x.T), axis=0)[:, None]
    return np.maximum.reduce(x, axis=-1, keepdims=True)


def model_sum(xp, x):
    """Sum over the last two axes: one number per network, (..., n, m) -> (...)."""
    if xp is not np:
        return xp.sum(x, axis=(-2, -1))
    return np.add.reduce(x, axis=(-2, -1))


def positive_part(xp, x):
    """``max(x, 0)`` elementwise. PyTorch gets ``clip``: array-api-compat's ``maximum(x, 0.0)`` makes a
    tensor of the 0 on every call (a host-to-device copy on a GPU), its ``clamp`` takes the number as it is.
    Every other library gets ``maximum`` (array-api-compat's generic ``clip`` indexes by masks, which on
    CuPy synchronises)."""
    if xp is not np and array_api_compat.is_torch_namespace(xp):
        return xp.clip(x, min=0.0)
    return xp.maximum(x, 0.0)


def transpose(xp, x):
    """Swap the last two axes (a view where the library has views)."""
    return x.mT if xp is np else xp.matrix_transpose(x)


def is_sparse(x) -> bool:
    """``x`` is a SciPy sparse matrix or array (rows on the host; NumPy multiplies by them natively)."""
    return type(x).__module__.startswith("scipy.sparse")


def weight_gradient(xp, a, delta):
    """``a^T @ delta`` over the rows: (..., n, i) and (..., n, o) -> (..., i, o). For one row it is an
    outer product, which BLAS does badly as a k = 1 matrix product, so it is computed as one. A SciPy
    sparse ``a`` (NumPy's first layer) takes the sparse product."""
    if xp is np and not isinstance(a, np.ndarray):  # SciPy sparse rows; cheaper to ask than is_sparse, per step
        return np.asarray(a.T @ delta)
    if a.shape[-2] == 1:
        return transpose(xp, a) * delta
    return transpose(xp, a) @ delta
