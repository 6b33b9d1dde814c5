"""The one measurement core behind ``xpnet bench`` and the pytest-benchmark suite in ``benchmarks/``.

Every implementation is a *learner* with one protocol: ``start_epoch(epoch)`` orders the epoch's rows
(outside the clock), ``train(start, stop)`` trains on rows ``start .. stop`` of that order and returns
only when the device has finished, ``accuracy()`` scores the test set (``None`` before a learner has
weights). Throughput is :func:`measure_case`: rounds of ``train(0, n)`` over the first ``n`` training
samples in their own order; time to accuracy is :func:`time_to_accuracy`: training and scoring.

A case is a run specification (:func:`case`): the network (:data:`NETS`, by name), the dtype, the batch
size, the learning rate and the seed. Implementations, named by :func:`parse`:

- ``xpnet-<backend>[@device]``: xpnet's own training loop (:mod:`xpnet.train`) on each backend,
  compiled where the backend can (JAX); ``xpnet-jax-eager`` is JAX without the compiled epoch;
- the peers (:mod:`xpnet.peers`, their libraries imported only when they run): ``torch-eager`` (the usual
  PyTorch loop), ``sklearn`` (``MLPClassifier`` through ``partial_fit``), ``seeds-loop`` (the seed
  notebooks' per-sample NumPy loop), ``hand-tuned-numpy``, and for stacks of models ``torch-func``
  (``torch.func`` ensembling) and ``jax-vmap``.

:func:`calibrate` picks how many samples a timed round uses so that it lasts about ``target`` seconds (at
least one batch, at most the whole training set; full batch is always one step).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import optim, spec, train
from .backends import BACKENDS, GPU_DEVICES, installed_backends, library_versions, thread_pools
from .errors import BackendError, DivergenceError, Unavailable, ValidationError, XpnetError

NETS = {
    "small": spec.Model(layers="784-32-32-10", activation="sigmoid", init="normal-max"),
    "large": spec.Model(layers="784-256-128-64-10", activation="relu", init="he"),
}
BATCH_SIZES = (1, 16, 64, 256, 1024, "full")
LR = 0.01
#: The peers' names (their learners: :data:`xpnet.peers.LEARNERS`).
PEERS = ("torch-eager", "torch-fused", "sklearn", "seeds-loop", "hand-tuned-numpy", "torch-func", "jax-vmap")
#: The peers that train stacks of models (``--models K``).
STACKING_PEERS = ("torch-func", "jax-vmap")


def case(net: str, dtype: str = "float32", batch_size: int = 1, lr: float = LR, seed: int = 0,
         shuffle: bool | None = False) -> spec.Run:
    """The run specification of a benchmark case: network ``net`` of :data:`NETS`, trained in the data's
    own order unless ``shuffle`` (``None``: as ``fit`` does, shuffled above batch size 1)."""
    if net not in NETS:
        raise ValidationError(f"--net takes {', '.join(NETS)}; got {net!r}")
    return spec.Run(model=NETS[net], training=spec.Training(epochs=1, batch_size=batch_size, shuffle=shuffle),
                    optimizer=spec.Optimizer(lr=lr), placement=spec.Placement(dtype=dtype), seed=seed)


def with_optimizer(run: spec.Run, optimizer: spec.Optimizer | None) -> spec.Run:
    """``run`` trained with ``optimizer`` at ``run``'s learning rate (``None``: as it is)."""
    if optimizer is None:
        return run
    return dataclasses.replace(run, optimizer=dataclasses.replace(optimizer, lr=run.optimizer.lr))


def described(optimizer: spec.Optimizer) -> dict:
    """The settings of ``optimizer`` that a record names (those it uses, switched on)."""
    return {k: v for k, v in optimizer.resolved().items() if v not in (None, False)}


@dataclass(frozen=True)
class Implementation:
    """A parsed implementation name: ``kind`` is ``"xpnet"`` or a peer's name; xpnet's have a
    ``backend`` and ``compile`` (``False`` for ``-eager``, ``None``: where the backend can);
    ``device`` is what follows ``@`` (``None``: the default)."""

    name: str
    kind: str
    backend: str | None = None
    compile: bool | None = None
    device: str | None = None


def parse(name: str) -> Implementation:
    """The implementation ``name`` means (``xpnet-jax-eager@cuda:0``, ``torch-eager``, ...), or a
    one-line :class:`ValidationError` listing the known names."""
    base, _, device = str(name).partition("@")
    if base.startswith("xpnet-"):
        backend, _, eager = base[len("xpnet-"):].partition("-")
        if backend in BACKENDS and BACKENDS[backend].can_train and eager in ("", "eager"):
            return Implementation(name, "xpnet", backend, False if eager else None, device or None)
    elif base in PEERS:
        return Implementation(name, base, device=device or None)
    raise ValidationError(f"unknown implementation {name!r}; known: {', '.join(implementations(('cpu', 'cuda')))}")


def implementations(devices=("cpu",)) -> list[str]:
    """Names of every implementation, for the given devices."""
    names = []
    for device in devices:
        suffix = "" if device == "cpu" else f"@{device}"
        for backend, cls in BACKENDS.items():
            if not cls.can_train or device == "cpu" and backend == "cupy" or device != "cpu" and backend not in GPU_DEVICES:
                continue
            names.append(f"xpnet-{backend}{suffix}")
            if backend == "jax" and device == "cpu":
                names.append("xpnet-jax-eager")
        names += [f"{p}{suffix}" for p in ("torch-eager", *STACKING_PEERS)]
    return names + [p for p in PEERS if p not in ("torch-eager", *STACKING_PEERS)]


# -- learners ------------------------------------------------------------------------------------
class XpnetLearner:
    """xpnet trained through its one epoch loop: the session :func:`xpnet.runs.start` builds (as for
    ``xpnet train``, ``xpnet sweep`` and ``fit``), each ``train(start, stop)`` one pass of the loop
    (:meth:`xpnet.train.Trainer.run` with ``rows``) over those positions of the epoch's order, the hooks
    of :func:`xpnet.hooks.hooked` called as in training; ``models=K`` trains a stack of K networks (seeds
    ``run.seed .. run.seed + K - 1``) on the same rows."""

    def __init__(self, impl: Implementation, run: spec.Run, data: spec.Arrays, models=None):
        from .runs import start

        if impl.backend not in installed_backends():
            raise Unavailable(f"{BACKENDS[impl.backend].library} is not installed")
        run = run.replace(backend=impl.backend, device=impl.device, compile=impl.compile)
        self.runs = [run] if models is None else [run.replace(seed=run.seed + k) for k in range(models)]
        try:
            self.session = start(self.runs, spec.Arrays(data.X, data.y, None, None), stack=models is not None)
        except (BackendError, ValidationError) as exc:  # what xpnet train refuses for this case
            raise Unavailable(str(exc)) from None
        self.model, self.run, self.data = self.session.model, run, data
        self.backend = self.model.backend
        self.test = train.check_data(self.model, data.X_test, data.y_test, "test")
        self.device = self.backend.device_name
        self.thread_choice = train.thread_choice(run.training)
        self.epoch = 1

    def threads(self):
        """The math-library threads xpnet's training runs with (:func:`xpnet.train.thread_choice`), set
        for as long as the measurement lasts."""
        return self.backend.threads(self.thread_choice)

    def thread_count(self):
        return self.backend.thread_count()

    @property
    def compiles(self) -> bool:
        """Whether each pass size compiles anew (JAX)."""
        return train.compiles(self.backend, self.run.training.compile)

    def warm_up(self, sizes):
        """Compile (where the backend compiles) the pass sizes time to accuracy trains, on a copy of the
        network (same backend: the compiled epochs are shared), before any clock runs."""
        from .runs import start

        if not self.compiles:
            return
        copy = type(self.model).from_config(self.model.config(), backend=self.backend)
        warm = start(self.runs, spec.Arrays(self.data.X, self.data.y, None, None), model=copy)
        for size in sizes:
            warm.trainer.run(range(1, 2), rows=(0, size))

    def start_epoch(self, epoch):
        self.epoch = epoch

    def train(self, start, stop):
        self.session.trainer.run(range(self.epoch, self.epoch + 1), rows=(start, stop))

    def accuracy(self):
        return train.scores(self.model, *self.test)[0]["accuracy"]


def make_learner(implementation: str, run: spec.Run, data: spec.Arrays, models=None):
    """The learner of ``implementation`` for the case ``run`` on ``data``, ``models`` networks at once
    where that is asked; :class:`Unavailable` with the reason when it cannot run here."""
    impl = parse(implementation)
    if impl.kind == "xpnet":
        return XpnetLearner(impl, run, data, models)
    if models is not None and impl.kind not in STACKING_PEERS:
        raise Unavailable(f"stacks of models are trained by xpnet's implementations and {', '.join(STACKING_PEERS)}")
    from . import peers

    return peers.LEARNERS[impl.kind](impl, run, data, models)


# -- throughput ----------------------------------------------------------------------------------
def resolve_batch(batch_size, n_total: int) -> int:
    return n_total if batch_size == "full" else int(batch_size)


#: :func:`calibrate`'s shortest pass (samples), unless a caller asks for another.
MIN_SAMPLES = 1024


def calibrate(learner, batch: int, n_total: int, target: float = 0.25, min_samples: int = MIN_SAMPLES) -> int:
    """Warm the learner up and return the sample count (a multiple of ``batch``) for ~``target`` s rounds.

    Passes start at ``min_samples`` samples (or one batch, or the whole training set) and grow fourfold
    until one lasts a tenth of the target or would cover the whole training set; a round is never shorter
    than that start, so that what a pass costs besides its steps (an epoch's first copy of the
    parameters, its checks -- large for a large stack) weighs little. Each size runs once untimed first
    -- a first pass pays for allocations and, where the implementation compiles (JAX), for compiling
    that size -- and so does the size returned: the learner is ready to time. A learner that compiles
    every size anew (``compiles``) is sized from its first pass alone: two compilations, not four.
    """
    steps_total = max(1, n_total // batch)
    first = steps = min(steps_total, max(1, -(-min_samples // batch)))
    learner.start_epoch(1)
    while True:
        learner.train(0, steps * batch)
        if steps == steps_total:
            return steps * batch
        t0 = time.perf_counter()
        learner.train(0, steps * batch)
        elapsed = time.perf_counter() - t0
        if elapsed >= target / 10 or getattr(learner, "compiles", False):
            break  # where every size compiles anew (seconds each), the first one sizes the rounds
        steps = min(steps_total, steps * 4)
    rate = steps * batch / max(elapsed, 1e-9)
    n = max(first, min(steps_total, round(rate * target / batch))) * batch
    if n != steps * batch:
        learner.train(0, n)
    return n


def time_rounds(learner, n: int, rounds: int, deadline: float | None = None) -> list[float]:
    """Samples per second of ``rounds`` timed passes over ``n`` samples (after :func:`calibrate`); past
    ``deadline`` (a :func:`time.monotonic` instant) no further round starts, so fewer may come back."""
    rates = []
    for _ in range(rounds):
        if rates and deadline is not None and time.monotonic() >= deadline:
            break
        t0 = time.perf_counter()
        learner.train(0, n)
        rates.append(n / (time.perf_counter() - t0))
    return rates


#: A cell whose rounds spread more than this (slowest over fastest) is measured again, and marked unstable
#: (with its spread) if it still does: never shown as a plain median.
UNSTABLE_SPREAD = 1.5
#: A cell that differs from the same case measured alone by more than this factor (either way) is marked.
ALONE_FACTOR = 2.0


def summary(rates) -> dict:
    """Median samples/s of the rounds, their min, max, interquartile range and spread (max / min)."""
    rates = list(rates)
    q1, _, q3 = statistics.quantiles(rates, n=4, method="inclusive") if len(rates) > 1 else (rates[0],) * 3
    return {"samples_per_second": statistics.median(rates), "min": min(rates), "max": max(rates), "iqr": q3 - q1,
            "spread": max(rates) / min(rates), "rounds": rates}


def environment() -> dict:
    """Library versions, BLAS in use and thread counts, for every record."""
    return {"versions": library_versions(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(),
            "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}, **thread_pools()}


def load_training_set(dtype: str = "float64") -> spec.Arrays:
    """MNIST scaled to [0, 1] (host arrays of ``dtype``): training images and labels, and the test set."""
    from . import datasets

    return spec.Arrays(*datasets.prepare(datasets.load_mnist(), dtype=dtype))


def case_run(c, n_total: int) -> spec.Run:
    """The run specification a benchmark cell (:class:`xpnet.workers.Case`) trains on ``n_total`` rows."""
    run = case(c.net, c.dtype, resolve_batch(c.batch_size, n_total)).replace(threads=c.threads)
    return run if c.optimizer is None else dataclasses.replace(run, optimizer=spec.Optimizer(**c.optimizer))


@contextlib.contextmanager
def learner_threads(learner):
    """The learner's math-library threads set for the measurement inside (xpnet's choice; a peer keeps its
    library's own); yields the thread count it runs with (``None`` for a peer, or a library xpnet cannot
    set)."""
    with learner.threads() if hasattr(learner, "threads") else contextlib.nullcontext():
        yield learner.thread_count() if hasattr(learner, "thread_count") else None


@contextlib.contextmanager
def busy_cores(count: int):
    """``count`` processes that keep a core busy each (a Python busy loop), for the measurements inside:
    a shared CPU, as a laptop running a browser is. Stopped when the block ends, whatever happens."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Case:
    """One cell of the benchmark: an implementation's case (network, dtype, batch size, stack size), what
    it trains with (``optimizer``: :class:`xpnet.spec.Optimizer`'s fields, ``None`` plain SGD;
    ``threads``: xpnet's thread choice) and how its rounds are sized (``target`` seconds, at least
    ``min_samples`` samples; ``n``: exactly this many samples, uncalibrated)."""

    implementation: str
    net: str
    dtype: str
    batch_size: int | str
    models: int | None = None
    optimizer: dict | None = None
    threads: int | None = None
    target: float = 0.25
    min_samples: int = 1024
    n: int | None = None

    def with_n(self, n: int) -> "Case":
        return dataclasses.replace(self, n=n)


# -- time to accuracy ----------------------------------------------------------------------------
#: Samples between two test-accuracy readings (a multiple of every batch size measured, so that the
#: batches are exactly those of one uninterrupted ``fit``).
CHECK_EVERY = 4096
#: The learning rates the time-to-accuracy runs choose from (a log grid, half a decade apart).
LR_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: The adaptive rules' (Adam, AdamW, RMSprop, Adagrad: their rates are about a hundredth of SGD's).
ADAPTIVE_LR_GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03)


def time_to_accuracy(learner, targets, n, max_seconds=30.0, max_epochs=50, check_every=CHECK_EVERY) -> dict:
    """Train ``learner`` until its test accuracy first reaches each of ``targets``, or the budget
    (``max_seconds`` of training, ``max_epochs``) runs out. Only the training calls are timed; accuracy is
    read every ``check_every`` samples, off the clock. Returns, per target, ``seconds``, ``samples``,
    ``epochs`` (or ``None``: not reached), the ``curve`` of (seconds, samples, accuracy) readings, the
    best accuracy, the samples/s of the training calls, ``diverged`` when training diverged, and the
    ``threads`` it trained with."""
    with learner_threads(learner) as count:
        return {**_to_accuracy(learner, targets, n, max_seconds, max_epochs, check_every), "threads": count}


def _to_accuracy(learner, targets, n, max_seconds, max_epochs, check_every) -> dict:
    targets = sorted(targets)
    reached = {t: None for t in targets}
    if hasattr(learner, "warm_up"):
        learner.warm_up({min(check_every, n), n % check_every or check_every} - {0})
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


def choose_lr(net, batch_size, data: spec.Arrays, grid=None, epochs=2, seed=0, dtype="float32",
              optimizer=None) -> tuple[float, dict]:
    """The learning rate of ``grid`` (default :data:`LR_GRID`, :data:`ADAPTIVE_LR_GRID` for Adam and AdamW)
    with the best validation accuracy after ``epochs`` epochs at ``batch_size`` (the last 10 % of the
    training set held out), all of them trained as one stack with ``optimizer`` (plain SGD by default)."""
    from .sweep import train_stack

    optimizer = optimizer or spec.Optimizer()
    grid = grid or (ADAPTIVE_LR_GRID if optim.get(optimizer.optimizer).adaptive else LR_GRID)
    cut = len(data.y) - len(data.y) // 10
    runs = [with_optimizer(case(net, dtype, batch_size, lr, seed, shuffle=None), optimizer).replace(epochs=epochs)
            for lr in grid]
    records = train_stack(runs, spec.Arrays(data.X[:cut], data.y[:cut], data.X[cut:], data.y[cut:]))
    scores = {r["lr"]: (r["test_accuracy"] if not r["diverged"] else 0.0) for r in records}
    return max(scores, key=scores.get), scores


# -- reporting -----------------------------------------------------------------------------------
def _si(x: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _grid_table(rows, keys, header, cell) -> str:
    """Rows ``keys`` (tuples) by batch sizes; ``cell(key, batch)`` gives each entry or ``None``."""
    batches = [b for b in BATCH_SIZES if any(r["batch_size"] == b for r in rows)]
    lines = ["| " + " | ".join(header) + " | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "|---" * (len(batches) + len(header)) + "|"]
    for key in keys:
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cell(key, b) or "—" for b in batches) + " |")
    return "\n".join(lines)


def _measured(results, net, dtype, stacked: bool) -> list[dict]:
    return [r for r in results if r["net"] == net and r["dtype"] == dtype and "samples_per_second" in r
            and bool(r.get("models")) == stacked]


def flags(record) -> str:
    """What a cell's value carries besides its number: ``?`` unstable (with its spread), ``!`` off from
    the same case measured alone (with that median); empty for a cell to be taken as it is."""
    out = []
    if record.get("unstable") and record["spread"] > UNSTABLE_SPREAD:
        out.append(f"? spread {record['spread']:.1f}×")
    if record.get("differs"):
        out.append(f"! alone {_si(record['alone']['samples_per_second'] * (record.get('models') or 1))}")
    return f" [{'; '.join(out)}]" if out else ""


#: What the marks in a table mean (printed under tables that have any).
LEGEND = (f"[? spread S×]: the cell's rounds spread more than {UNSTABLE_SPREAD:g}× (slowest to fastest) even when "
          f"measured a second time: its median is not to be trusted; [! alone V]: the same case measured alone "
          f"(--check-alone), twice, gave V, more than {ALONE_FACTOR:g}× away: not to be trusted either")


def markdown_table(results, net: str, dtype: str) -> str:
    """Rows: implementations; columns: batch sizes; cells: median samples/s and the ratio to batch 1, and
    the cell's :func:`flags`."""
    rows = _measured(results, net, dtype, stacked=False)
    if not rows:
        return f"(no measurements for the {net} net in {dtype})"
    found = {(_label(r), r["batch_size"]): r for r in rows}

    def cell(key, b):
        record, one = found.get((key[0], b)), found.get((key[0], 1))
        if record is None:
            return None
        value = record["samples_per_second"]
        text = f"{_si(value)} (×{value / one['samples_per_second']:.1f})" if one and b != 1 else _si(value)
        return text + flags(record)

    return _grid_table(rows, [(n,) for n in dict.fromkeys(map(_label, rows))], ["implementation"], cell)


def _label(record) -> str:
    """An implementation as a table names it: with the dtype it ran in where that is not the case's."""
    ran = record.get("ran_in_dtype")
    return record["implementation"] + (f" (in {ran})" if ran else "")


def models_table(results, net: str, dtype: str) -> str:
    """Rows: implementation and network count K; columns: batch sizes; cells: median model-samples/s
    (K x samples/s) and the ratio to the same implementation with one network, and the cell's
    :func:`flags`."""
    rows = _measured(results, net, dtype, stacked=True)
    if not rows:
        return f"(no stacked measurements for the {net} net in {dtype})"
    found = {(r["implementation"], r["models"], r["batch_size"]): r for r in rows}

    def cell(key, b):
        record, one = found.get((*key, b)), found.get((key[0], 1, b))
        if record is None:
            return None
        value = record["models"] * record["samples_per_second"]
        text = f"{_si(value)} (×{value / one['samples_per_second']:.1f})" if one and key[1] != 1 else _si(value)
        return text + flags(record)

    keys = list(dict.fromkeys((r["implementation"], r["models"]) for r in rows))
    return _grid_table(rows, keys, ["implementation", "networks"], cell)
