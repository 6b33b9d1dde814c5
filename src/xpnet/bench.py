"""The one measurement core behind ``xpnet bench`` and the pytest-benchmark suite in ``benchmarks/``.

A *runner* trains one network with one implementation at one batch size: ``setup(n)`` prepares the first
``n`` training samples (outside the clock) and ``run()`` trains one pass over them with plain SGD,
returning only when the device has finished. Implementations:

- ``xpnet-<backend>``: xpnet's own training loop (:func:`xpnet.train.train_epoch`) on each backend,
  compiled where the backend can (JAX); ``xpnet-jax-eager`` is JAX without the compiled epoch;
- ``torch-eager``: ``nn.Sequential`` + ``torch.optim.SGD``, the usual PyTorch loop;
- ``sklearn``: ``MLPClassifier(solver="sgd", momentum=0, alpha=0)`` through ``partial_fit``;
- ``seeds-loop``: the seed notebooks' per-sample NumPy loop (``benchmarks/seeds_loop.py``, batch 1 and
  float64 only; available from a source checkout).

Every implementation trains on the same MNIST samples in the same order (no shuffling) with the same
learning rate. :func:`calibrate` picks how many samples a timed round uses so that it lasts about
``target`` seconds (at least one batch, at most the whole training set; full batch is always one step).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from .backends import LIBRARIES, installed_backends, library_versions
from .errors import BackendError, ValidationError

NETS = {
    "small": {"layers": [784, 32, 32, 10], "activation": "sigmoid", "init": "normal-max"},
    "large": {"layers": [784, 256, 128, 64, 10], "activation": "relu", "init": "he"},
}
BATCH_SIZES = (1, 16, 64, 256, 1024, "full")
LR = 0.01


class Unavailable(Exception):
    """An implementation cannot run here (library missing, no GPU, unsupported case); says why."""


# -- runners -------------------------------------------------------------------------------------
class XpnetRunner:
    def __init__(self, backend, device, net, dtype, batch_size, X, y, compile=True):
        from .mlp import MLP

        try:
            self.model = MLP(**NETS[net], seed=0, backend=backend, device=device, dtype=dtype)
        except BackendError as exc:
            raise Unavailable(str(exc)) from None
        self.backend, self.batch_size, self.compile = self.model.backend, batch_size, compile
        self.X = self.model.inputs(X)
        self.T = self.backend.asarray(self.model.targets(y), dtype)
        self.device = str(self.backend.device)

    def setup(self, n):
        self.Xn, self.Tn = self.X[:n, :], self.T[:n, :]
        self.backend.synchronize(self.Xn, self.Tn)

    def run(self):
        from .train import train_epoch

        train_epoch(self.model, self.Xn, self.Tn, lr=LR, batch_size=self.batch_size, compile=self.compile)


class TorchRunner:
    def __init__(self, device, net, dtype, batch_size, X, y):
        try:
            import torch
        except ImportError:
            raise Unavailable("torch is not installed") from None
        if device and device.startswith("cuda") and not torch.cuda.is_available():
            raise Unavailable("torch has no CUDA device here")
        self.torch, self.device, self.batch_size = torch, torch.device(device or "cpu"), batch_size
        sizes, act = NETS[net]["layers"], {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[NETS[net]["activation"]]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [torch.nn.Linear(a, b)] + ([act()] if i < len(sizes) - 2 else [])
        torch.manual_seed(0)
        dt = getattr(torch, dtype)
        self.model = torch.nn.Sequential(*layers).to(self.device, dt)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X = torch.as_tensor(X, dtype=dt, device=self.device)
        self.y = torch.as_tensor(y, device=self.device)

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def setup(self, n):
        self.n = n

    def run(self):
        B = self.batch_size
        for i in range(0, self.n, B):
            self.opt.zero_grad()
            self.loss(self.model(self.X[i : i + B]), self.y[i : i + B]).backward()
            self.opt.step()
        self._sync()


class SklearnRunner:
    def __init__(self, net, dtype, batch_size, X, y):
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError:
            raise Unavailable("scikit-learn is not installed") from None
        spec = NETS[net]
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(spec["layers"][1:-1]), activation={"sigmoid": "logistic"}.get(spec["activation"], "relu"),
            solver="sgd", momentum=0.0, nesterovs_momentum=False, alpha=0.0, learning_rate_init=LR,
            batch_size=batch_size, shuffle=False, random_state=0,
        )
        self.X, self.y = np.asarray(X, dtype=dtype), np.asarray(y)
        self.device = "cpu"

    def setup(self, n):
        self.Xn, self.yn = self.X[:n], self.y[:n]

    def run(self):
        self.model.partial_fit(self.Xn, self.yn, classes=np.arange(10))


def benchmarks_module(name):
    """``benchmarks/NAME.py`` of the source checkout this xpnet runs from, if any."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"xpnet_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SeedsRunner:
    def __init__(self, net, dtype, batch_size, X, y):
        module = benchmarks_module("seeds_loop")
        if module is None:
            raise Unavailable("the seeds' loop lives in benchmarks/seeds_loop.py of a source checkout")
        if net != "small" or dtype != "float64" or batch_size != 1:
            raise Unavailable("the seeds' loop is per-sample, float64, on the seeds' sigmoid net only")
        self.net = module.Network(NETS[net]["layers"], seed=0)
        self.X, self.Y = np.asarray(X, dtype=np.float64), np.eye(10)[y]
        self.device = "cpu"

    def setup(self, n):
        self.n = n

    def run(self):
        self.net.train_epoch(self.X[: self.n], self.Y[: self.n], LR)


def implementations(devices=("cpu",)) -> list[str]:
    """Names of every implementation this module knows, for the given devices."""
    names = []
    for device in devices:
        for backend in LIBRARIES:
            if device == "cpu" and backend == "cupy" or device != "cpu" and backend not in ("cupy", "torch"):
                continue
            names.append(f"xpnet-{backend}" + ("" if device == "cpu" else f"@{device}"))
            if backend == "jax" and device == "cpu":
                names.append("xpnet-jax-eager")
        names.append("torch-eager" + ("" if device == "cpu" else f"@{device}"))
    return names + ["sklearn", "seeds-loop"]


def _unknown(implementation) -> str:
    known = ", ".join(implementations(("cpu", "cuda")))
    return f"unknown implementation {implementation!r}; known: {known}"


def make_runner(implementation, net, dtype, batch_size, X, y):
    """A runner for ``implementation`` (e.g. ``"xpnet-numpy"``, ``"torch-eager@cuda"``); raises
    :class:`Unavailable` with the reason when it cannot run here."""
    name, _, device = implementation.partition("@")
    device = device or None
    if name.startswith("xpnet-"):
        backend, _, eager = name[len("xpnet-"):].partition("-")
        if backend not in LIBRARIES or eager not in ("", "eager"):
            raise ValidationError(_unknown(implementation))
        if backend not in installed_backends():
            raise Unavailable(f"{LIBRARIES.get(backend, backend)} is not installed")
        return XpnetRunner(backend, device, net, dtype, batch_size, X, y, compile=eager != "eager")
    if name == "torch-eager":
        return TorchRunner(device, net, dtype, batch_size, X, y)
    if name == "sklearn":
        return SklearnRunner(net, dtype, batch_size, X, y)
    if name == "seeds-loop":
        return SeedsRunner(net, dtype, batch_size, X, y)
    raise ValidationError(_unknown(implementation))


# -- measuring -----------------------------------------------------------------------------------
def resolve_batch(batch_size, n_total: int) -> int:
    return n_total if batch_size == "full" else int(batch_size)


def calibrate(runner, batch: int, n_total: int, target: float = 0.25) -> int:
    """Warm the runner up and return the sample count (a multiple of ``batch``) for ~``target`` s rounds.

    Passes grow fourfold until one lasts a tenth of the target or would cover the whole training set.
    Each size runs once untimed first -- a first pass pays for allocations and, where the implementation
    compiles (JAX), for compiling that size -- and so does the size returned: the runner is ready to time.
    """
    steps_total = max(1, n_total // batch)
    steps = 1
    while True:
        runner.setup(steps * batch)
        runner.run()
        if steps == steps_total:
            return steps * batch
        t0 = time.perf_counter()
        runner.run()
        elapsed = time.perf_counter() - t0
        if elapsed >= target / 10:
            break
        steps = min(steps_total, steps * 4)
    rate = steps * batch / max(elapsed, 1e-9)
    n = max(1, min(steps_total, round(rate * target / batch))) * batch
    if n != steps * batch:
        runner.setup(n)
        runner.run()
    return n


def time_rounds(runner, n: int, rounds: int) -> list[float]:
    """Samples per second of ``rounds`` timed passes over ``n`` samples (after :func:`calibrate`)."""
    runner.setup(n)
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        runner.run()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def summary(rates) -> dict:
    return {"samples_per_second": statistics.median(rates), "min": min(rates), "max": max(rates), "rounds": list(rates)}


def environment() -> dict:
    """Library versions, BLAS in use and thread counts, for every record."""
    env = {"versions": library_versions(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "python": platform.python_version(),
           "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}}
    try:
        from threadpoolctl import threadpool_info

        env["blas"] = [{k: pool.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                       for pool in threadpool_info()]
    except ImportError:
        env["blas"] = "threadpoolctl not installed"
    if importlib.util.find_spec("torch") is not None:
        import torch

        env["torch_threads"] = torch.get_num_threads()
    return env


def load_training_set():
    """MNIST training images scaled to [0, 1] and their labels (host float64, int64)."""
    from . import datasets

    data = datasets.load_mnist()
    return datasets.scale(data.X_train), data.y_train


def run_suite(implementations_, nets, dtypes, batch_sizes, rounds=5, target=0.25, on_result=None) -> list[dict]:
    """Measure every case; each result is a record (see :func:`record`); skipped cases carry a reason."""
    X, y = load_training_set()
    results = []
    for net in nets:
        for dtype in dtypes:
            for implementation in implementations_:
                for batch_size in batch_sizes:
                    result = measure_case(implementation, net, dtype, batch_size, X, y, rounds, target)
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
    return results


def measure_case(implementation, net, dtype, batch_size, X, y, rounds=5, target=0.25) -> dict:
    base = {"implementation": implementation, "net": net, "dtype": dtype, "batch_size": batch_size}
    batch = resolve_batch(batch_size, len(y))
    try:
        runner = make_runner(implementation, net, dtype, batch, X, y)
    except Unavailable as exc:
        return {**base, "skipped": str(exc)}
    n = calibrate(runner, batch, len(y), target)
    return record(base, runner, n, summary(time_rounds(runner, n, rounds)))


def record(base: dict, runner, n: int, stats: dict) -> dict:
    return {**base, **stats, "samples_per_round": n, "device": str(getattr(runner, "device", "cpu"))}


# -- reporting -----------------------------------------------------------------------------------
def _si(x: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def markdown_table(results, net: str, dtype: str) -> str:
    """Rows: implementations; columns: batch sizes; cells: median samples/s and the ratio to batch 1."""
    rows = [r for r in results if r["net"] == net and r["dtype"] == dtype and "skipped" not in r]
    if not rows:
        return f"(no measurements for the {net} net in {dtype})"
    batches = [b for b in BATCH_SIZES if any(r["batch_size"] == b for r in rows)]
    names = list(dict.fromkeys(r["implementation"] for r in rows))
    lines = ["| implementation | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "|---" * (len(batches) + 1) + "|"]
    for name in names:
        cells = {r["batch_size"]: r["samples_per_second"] for r in rows if r["implementation"] == name}
        one = cells.get(1)
        out = []
        for b in batches:
            if b not in cells:
                out.append("—")
            elif one and b != 1:
                out.append(f"{_si(cells[b])} (×{cells[b] / one:.1f})")
            else:
                out.append(_si(cells[b]))
        lines.append(f"| {name} | " + " | ".join(out) + " |")
    return "\n".join(lines)
