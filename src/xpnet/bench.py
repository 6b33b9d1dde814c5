"""The one measurement core behind ``xpnet bench`` and the pytest-benchmark suite in ``benchmarks/``.

A *runner* trains one network (or a stack of networks) with one implementation at one batch size:
``setup(n)`` prepares the first ``n`` training samples (outside the clock) and ``run()`` trains one pass
over them with plain SGD, returning only when the device has finished. Implementations:

- ``xpnet-<backend>[@device]``: xpnet's own training loop (:class:`xpnet.train.Trainer`) on each
  backend, compiled where the backend can (JAX); ``xpnet-jax-eager`` is JAX without the compiled epoch.
  These are part of the package and run from any installation.
- the peers -- ``torch-eager`` (the usual PyTorch loop), ``sklearn`` (``MLPClassifier`` through
  ``partial_fit``), ``seeds-loop`` (the seed notebooks' per-sample NumPy loop) and ``hand-tuned-numpy``
  -- live in ``benchmarks/peers.py`` of a source checkout, which is not installed with xpnet.
  :func:`load_peers` finds it (``./benchmarks/peers.py``, or a path given); without it the peers are
  reported as skipped, with the reason.

Every implementation trains on the same MNIST samples in the same order (no shuffling) with the same
learning rate. :func:`calibrate` picks how many samples a timed round uses so that it lasts about
``target`` seconds (at least one batch, at most the whole training set; full batch is always one step).
"""

from __future__ import annotations

import importlib.util
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


from .backends import BACKENDS, GPU_DEVICES, installed_backends, library_versions, thread_pools
from .errors import BackendError, ValidationError

NETS = {
    "small": {"layers": [784, 32, 32, 10], "activation": "sigmoid", "init": "normal-max"},
    "large": {"layers": [784, 256, 128, 64, 10], "activation": "relu", "init": "he"},
}
BATCH_SIZES = (1, 16, 64, 256, 1024, "full")
LR = 0.01
#: The peers' names, known even when their runners are not at hand.
PEERS = ("torch-eager", "sklearn", "seeds-loop", "hand-tuned-numpy")


class Unavailable(Exception):
    """An implementation cannot run here (library missing, no GPU, unsupported case); says why."""


# -- runners -------------------------------------------------------------------------------------
def _xpnet_setup(backend, device, net, dtype, seeds, X, y, stacked=False):
    """One of xpnet's networks (a stack of ``len(seeds)`` when ``stacked``) and the training data on its
    device; :class:`Unavailable` with the reason when the backend cannot run here."""
    from .mlp import MLP
    from .stack import Stack

    try:
        if stacked:
            model = Stack(**NETS[net], seeds=seeds, backend=backend, device=device, dtype=dtype)
        else:
            model = MLP(**NETS[net], seed=seeds[0], backend=backend, device=device, dtype=dtype)
    except BackendError as exc:
        raise Unavailable(str(exc)) from None
    return model, model.inputs(X), model.backend.asarray(model.targets(y), dtype)


class XpnetRunner:
    """xpnet's training loop on one backend; ``models=K`` trains a stack of K networks (seeds 0..K-1)."""

    def __init__(self, backend, device, net, dtype, batch_size, X, y, compile=True, models=None):
        seeds = list(range(models or 1))
        self.model, self.X, self.T = _xpnet_setup(backend, device, net, dtype, seeds, X, y, stacked=models is not None)
        self.backend, self.batch_size, self.compile = self.model.backend, batch_size, compile
        self.device = str(self.backend.device)

    def setup(self, n):
        from .train import Trainer

        Xn, Tn = self.X[:n, :], self.T[:n, :]
        self.trainer = Trainer(self.model, Xn, Tn, lr=[LR] * len(self.model.seeds), batch_size=self.batch_size,
                               compile=self.compile)
        self.backend.synchronize(Xn, Tn)

    def run(self):
        self.trainer.epoch(1)


def load_peers(path=None):
    """The peer runners (``benchmarks/peers.py`` of a source checkout), or ``None`` if it is not here.

    ``path`` names the file; by default ``benchmarks/peers.py`` under the current directory is used when
    it exists. Its ``RUNNERS`` maps each peer's name to a class built as
    ``Runner(device, net, dtype, batch_size, X, y)``.
    """
    if path is None:
        path = Path.cwd() / "benchmarks" / "peers.py"
        if not path.is_file():
            return None
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"--peers {path}: no such file (it is benchmarks/peers.py of a source checkout)")
    spec = importlib.util.spec_from_file_location("xpnet_benchmark_peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def implementations(devices=("cpu",)) -> list[str]:
    """Names of every implementation, for the given devices (the peers' names whether or not their
    runners are at hand)."""
    names = []
    for device in devices:
        for backend, cls in BACKENDS.items():
            if not cls.can_train or device == "cpu" and backend == "cupy" or device != "cpu" and backend not in GPU_DEVICES:
                continue
            names.append(f"xpnet-{backend}" + ("" if device == "cpu" else f"@{device}"))
            if backend == "jax" and device == "cpu":
                names.append("xpnet-jax-eager")
        names.append("torch-eager" + ("" if device == "cpu" else f"@{device}"))
    return names + [p for p in PEERS if p != "torch-eager"]


def _unknown(implementation) -> str:
    known = ", ".join(implementations(("cpu", "cuda")))
    return f"unknown implementation {implementation!r}; known: {known}"


def make_runner(implementation, net, dtype, batch_size, X, y, peers=None, models=None):
    """A runner for ``implementation`` (e.g. ``"xpnet-numpy"``, ``"torch-eager@cuda"``); raises
    :class:`Unavailable` with the reason when it cannot run here. ``peers`` is the module
    :func:`load_peers` returns; ``models`` trains a stack of that many networks (xpnet only)."""
    name, _, device = implementation.partition("@")
    device = device or None
    if name.startswith("xpnet-"):
        backend, _, eager = name[len("xpnet-"):].partition("-")
        if backend not in BACKENDS or eager not in ("", "eager"):
            raise ValidationError(_unknown(implementation))
        if backend not in installed_backends():
            raise Unavailable(f"{BACKENDS[backend].library} is not installed")
        return XpnetRunner(backend, device, net, dtype, batch_size, X, y, compile=eager != "eager", models=models)
    if name not in PEERS:
        raise ValidationError(_unknown(implementation))
    if models is not None:
        raise Unavailable("stacks of models are xpnet's own")
    if peers is None:
        raise Unavailable("the peers' runners live in benchmarks/peers.py of a source checkout: run from its "
                          "root or pass --peers PATH")
    return peers.RUNNERS[name](device, net, dtype, batch_size, X, y)


# -- measuring -----------------------------------------------------------------------------------
def resolve_batch(batch_size, n_total: int) -> int:
    return n_total if batch_size == "full" else int(batch_size)


def calibrate(runner, batch: int, n_total: int, target: float = 0.25, min_samples: int = 1024) -> int:
    """Warm the runner up and return the sample count (a multiple of ``batch``) for ~``target`` s rounds.

    Passes start at ``min_samples`` samples (or one batch, or the whole training set) and grow fourfold
    until one lasts a tenth of the target or would cover the whole training set; a round is never shorter
    than that start, so that what a pass costs besides its steps (an epoch's first copy of the
    parameters, its checks -- large for a large stack) weighs little. Each size runs once untimed first
    -- a first pass pays for allocations and, where the implementation compiles (JAX), for compiling
    that size -- and so does the size returned: the runner is ready to time.
    """
    steps_total = max(1, n_total // batch)
    first = steps = min(steps_total, max(1, -(-min_samples // batch)))
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
    n = max(first, min(steps_total, round(rate * target / batch))) * batch
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
    return {"versions": library_versions(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(),
            "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}, **thread_pools()}


def load_training_set():
    """MNIST training images scaled to [0, 1] and their labels (host float64, int64)."""
    from . import datasets

    data = datasets.load_mnist()
    return datasets.scale(data.X_train), data.y_train


def run_suite(implementations_, nets, dtypes, batch_sizes, rounds=5, target=0.25, on_result=None, peers=None,
              models=(None,)) -> list[dict]:
    """Measure every case; each result is a record (see :func:`record`); skipped cases carry a reason."""
    X, y = load_training_set()
    results = []
    for net in nets:
        for dtype in dtypes:
            for implementation in implementations_:
                for batch_size in batch_sizes:
                    for k in models:
                        result = measure_case(implementation, net, dtype, batch_size, X, y, rounds, target, peers, k)
                        results.append(result)
                        if on_result is not None:
                            on_result(result)
    return results


def measure_case(implementation, net, dtype, batch_size, X, y, rounds=5, target=0.25, peers=None, models=None) -> dict:
    base = {"implementation": implementation, "net": net, "dtype": dtype, "batch_size": batch_size}
    if models is not None:
        base["models"] = models
    batch = resolve_batch(batch_size, len(y))
    try:
        runner = make_runner(implementation, net, dtype, batch, X, y, peers, models)
    except Unavailable as exc:
        return {**base, "skipped": str(exc)}
    n = calibrate(runner, batch, len(y), target)
    return record(base, runner, n, summary(time_rounds(runner, n, rounds)))


def record(base: dict, runner, n: int, stats: dict) -> dict:
    return {**base, **stats, "samples_per_round": n, "device": str(getattr(runner, "device", "cpu"))}


# -- time to accuracy ----------------------------------------------------------------------------
#: Samples between two test-accuracy readings (a multiple of every batch size measured, so that the
#: batches are exactly those of one uninterrupted ``fit``).
CHECK_EVERY = 4096
#: The learning rates the time-to-accuracy runs choose from (a log grid, half a decade apart).
LR_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


class XpnetLearner:
    """xpnet trained segment by segment with the training loop ``fit`` runs, for time-to-accuracy runs:
    ``start_epoch(e)`` orders the data (outside the clock), ``train(start, stop)`` trains those
    samples of the epoch and returns when the device is done, ``accuracy()`` scores the test set."""

    def __init__(self, backend, device, net, dtype, batch_size, lr, seed, data, compile=True):
        X, y, X_test, y_test = data
        self.model, self.X, self.T = _xpnet_setup(backend, device, net, dtype, [seed], X, y)
        self.backend, self.batch_size, self.lr, self.seed, self.compile = self.model.backend, batch_size, lr, seed, compile
        self.X_test, self.y_test = self.model.inputs(X_test), np.asarray(y_test)
        self.T_test = self.backend.asarray(self.model.targets(y_test), dtype)
        self.n = len(y)
        if compile and self.backend.can_compile:  # compile the two segment shapes before any clock runs
            warm, _, _ = _xpnet_setup(self.backend, None, net, dtype, [seed], X[:1], y[:1])
            for size in {min(CHECK_EVERY, self.n), self.n % CHECK_EVERY or CHECK_EVERY}:
                self._trainer(warm, self.X[:size, :], self.T[:size, :]).epoch(1)

    def _trainer(self, model, X, T):
        from .train import Trainer

        return Trainer(model, X, T, lr=[self.lr], batch_size=min(self.batch_size, X.shape[0]), compile=self.compile)

    def start_epoch(self, epoch):
        if self.batch_size == 1:  # per-sample SGD runs in order, as fit does at batch size 1
            self.Xe, self.Te = self.X, self.T
            return
        order = self.backend.asarray(np.random.default_rng([self.seed, epoch]).permutation(self.n).astype(np.int32))
        xp = self.backend.xp
        self.Xe, self.Te = xp.take(self.X, order, axis=0), xp.take(self.T, order, axis=0)
        self.backend.synchronize(self.Xe, self.Te)

    def train(self, start, stop):
        self._trainer(self.model, self.Xe[start:stop, :], self.Te[start:stop, :]).epoch(1)

    def accuracy(self):
        from .train import evaluate_device

        return evaluate_device(self.model, self.X_test, self.T_test, self.y_test)["accuracy"]


def time_to_accuracy(learner, targets, n, max_seconds=30.0, max_epochs=50, check_every=CHECK_EVERY) -> dict:
    """Train ``learner`` until its test accuracy first reaches each of ``targets``, or the budget
    (``max_seconds`` of training, ``max_epochs``) runs out. Only the training calls are timed; accuracy is
    read every ``check_every`` samples, off the clock. Returns, per target, ``seconds``, ``samples``,
    ``epochs`` (or ``None``: not reached), the ``curve`` of (seconds, samples, accuracy) readings, the
    best accuracy, the samples/s of the training calls, and ``diverged`` when training diverged."""
    from .errors import DivergenceError

    targets = sorted(targets)
    reached = {t: None for t in targets}
    before = learner.accuracy()  # None where a learner has no weights before its first step
    curve, seconds, samples, epoch, diverged = ([(0.0, 0, before)] if before is not None else []), 0.0, 0, 0, None
    while reached[targets[-1]] is None and seconds < max_seconds and epoch < max_epochs and diverged is None:
        epoch += 1
        learner.start_epoch(epoch)
        for start in range(0, n, check_every):
            stop = min(n, start + check_every)
            t0 = time.perf_counter()
            try:
                learner.train(start, stop)
            except DivergenceError as exc:
                diverged = str(exc)
                break
            seconds += time.perf_counter() - t0
            samples += stop - start
            accuracy = learner.accuracy()
            curve.append((seconds, samples, accuracy))
            for t in targets:
                if reached[t] is None and accuracy >= t:
                    reached[t] = {"seconds": seconds, "samples": samples, "epochs": samples / n}
            if reached[targets[-1]] is not None or seconds >= max_seconds:
                break
    return {"reached": {str(t): r for t, r in reached.items()}, "curve": curve,
            "best_accuracy": max((a for _, _, a in curve), default=None), "samples_per_second": samples / seconds if seconds else None,
            "trained_seconds": seconds, "trained_samples": samples, "diverged": diverged}


def make_learner(implementation, net, dtype, batch_size, lr, seed, data, peers=None):
    """A learner for :func:`time_to_accuracy`: xpnet on a backend (``xpnet-numpy``, ``xpnet-torch@cuda``,
    ...) or a peer (``torch-eager``, ``sklearn``) from ``benchmarks/peers.py``; raises
    :class:`Unavailable` with the reason when it cannot run here."""
    name, _, device = implementation.partition("@")
    device = device or None
    if name.startswith("xpnet-"):
        backend, _, eager = name[len("xpnet-"):].partition("-")
        if backend not in BACKENDS or eager not in ("", "eager") or not BACKENDS[backend].can_train:
            raise ValidationError(_unknown(implementation))
        if backend not in installed_backends():
            raise Unavailable(f"{BACKENDS[backend].library} is not installed")
        return XpnetLearner(backend, device, net, dtype, batch_size, lr, seed, data, compile=eager != "eager")
    if peers is None or name not in getattr(peers, "LEARNERS", {}):
        if name in PEERS:
            raise Unavailable(f"time to accuracy for {name} needs benchmarks/peers.py of a source checkout"
                              if peers is None else f"no time-to-accuracy learner for {name}")
        raise ValidationError(_unknown(implementation))
    return peers.LEARNERS[name](device, net, dtype, batch_size, lr, seed, data)


def to_accuracy_table(results, targets) -> str:
    """Rows: implementation and batch size; per target: the median over seeds of the training seconds
    to reach it (samples seen, epochs) or "not reached"; then samples/s and the learning rate."""
    lines = ["| implementation | batch | lr | " + " | ".join(f"to {100 * t:g} %: seconds (samples, epochs)" for t in targets)
             + " | samples/s | seeds |", "|---" * (len(targets) + 5) + "|"]
    keys = list(dict.fromkeys((r["implementation"], r["batch_size"]) for r in results if "skipped" not in r))
    for name, batch in keys:
        runs = [r for r in results if r["implementation"] == name and r["batch_size"] == batch and "skipped" not in r]
        cells = []
        for t in targets:
            hit = [r["reached"][str(t)] for r in runs if r["reached"].get(str(t))]
            if len(hit) * 2 <= len(runs):  # the median run did not reach it
                best = max((r["best_accuracy"] or 0) for r in runs)
                cells.append(f"not reached ({len(hit)}/{len(runs)}; best {100 * best:.2f} %)")
                continue
            median = sorted(hit + [None] * (len(runs) - len(hit)), key=lambda h: math.inf if h is None else h["seconds"])[
                (len(runs) - 1) // 2]
            cells.append(f"{median['seconds']:.2f} ({median['samples']:,}, {median['epochs']:.2f})")
        rate = statistics.median(r["samples_per_second"] for r in runs if r["samples_per_second"])
        lines.append(f"| {name} | {batch} | {runs[0]['lr']:g} | " + " | ".join(cells) + f" | {_si(rate)} | {len(runs)} |")
    return "\n".join(lines)


def choose_lr(net, batch_size, data, grid=LR_GRID, epochs=2, seed=0, dtype="float32") -> tuple[float, dict]:
    """The learning rate of ``grid`` with the best validation accuracy after ``epochs`` epochs at
    ``batch_size`` (the last 10 % of the training set held out), all of them trained as one stack."""
    from .sweep import Config, Fixed, train_stack

    X, y, _, _ = data
    cut = len(y) - len(y) // 10
    spec = NETS[net]
    configs = [Config(lr=lr, seed=seed, init=spec["init"], layers=tuple(spec["layers"]), activation=(spec["activation"],),
                      batch_size=batch_size) for lr in grid]
    records = train_stack(configs, Fixed(epochs=epochs, dtype=dtype), (X[:cut], y[:cut], X[cut:], y[cut:]))
    scores = {r["lr"]: (r["test_accuracy"] if not r["diverged"] else 0.0) for r in records}
    return max(scores, key=scores.get), scores


# -- reporting -----------------------------------------------------------------------------------
def _si(x: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def markdown_table(results, net: str, dtype: str) -> str:
    """Rows: implementations; columns: batch sizes; cells: median samples/s and the ratio to batch 1."""
    rows = [r for r in results if r["net"] == net and r["dtype"] == dtype and "skipped" not in r and not r.get("models")]
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


def models_table(results, net: str, dtype: str) -> str:
    """Rows: implementation and network count K; columns: batch sizes; cells: median model-samples/s
    (K x samples/s) and the ratio to the same implementation with one network."""
    rows = [r for r in results if r["net"] == net and r["dtype"] == dtype and "skipped" not in r and r.get("models")]
    if not rows:
        return f"(no stacked measurements for the {net} net in {dtype})"
    batches = [b for b in BATCH_SIZES if any(r["batch_size"] == b for r in rows)]
    keys = list(dict.fromkeys((r["implementation"], r["models"]) for r in rows))
    lines = ["| implementation | networks | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "|---" * (len(batches) + 2) + "|"]
    rate = {(r["implementation"], r["models"], r["batch_size"]): r["models"] * r["samples_per_second"] for r in rows}
    for name, k in keys:
        cells = []
        for b in batches:
            value, one = rate.get((name, k, b)), rate.get((name, 1, b))
            if value is None:
                cells.append("—")
            elif one and k != 1:
                cells.append(f"{_si(value)} (×{value / one:.1f})")
            else:
                cells.append(_si(value))
        lines.append(f"| {name} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

