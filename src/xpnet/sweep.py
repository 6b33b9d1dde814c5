"""Grid searches trained as stacks: every configuration of a grid, grouped into stacks of networks that
share their layers, activations and batch size, each stack trained by one set of array operations.

>>> configs = grid(lr=[0.01, 0.1], seed=range(3), layers=["784-32-10"])
>>> len(configs), len(plan(configs, n_samples=60000))
(6, 1)

A configuration varies in learning rate, seed (initial weights and shuffling order), initialisation
scheme, initial scale, layer sizes, hidden activation and batch size; everything else (loss, output,
epochs, backend, dtype, the data) is shared by the sweep (:class:`Fixed`). :func:`plan` groups the
configurations that can share a stack, at most ``stack_size`` networks each (by default as many as
:data:`MEMORY_BUDGET` allows). :func:`train_stack` trains one stack and returns one record per
configuration; :func:`sweep` runs a whole grid. A record holds the settings, ``history`` (as ``xpnet
train --json`` gives it), ``test_accuracy``, ``test_loss``, ``diverged`` (``None``, or where) and
``seconds`` (the wall time of the stack it trained in).
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from .errors import ValidationError
from .functions import get_activation
from .init import INITIALISERS
from .mlp import parse_layers
from .progress import Progress
from .stack import Stack
from .train import SAMPLE_CHUNK, check_number

#: Bytes of device memory one stack may use for its networks (the shared data comes on top).
MEMORY_BUDGET = 1 << 30
#: The settings a configuration varies in, in the order tables show them.
VARIED = ("lr", "seed", "init", "init_scale", "layers", "activation", "batch_size")


@dataclass(frozen=True)
class Config:
    """One configuration of a sweep."""

    lr: float
    seed: int
    init: str = "normal-max"
    init_scale: float = 1.0
    layers: tuple[int, ...] = (784, 32, 32, 10)
    activation: tuple[str, ...] = ("sigmoid",)  # one name for every hidden layer, or one per hidden layer
    batch_size: int = 1

    def stack_key(self) -> tuple:
        """Configurations with the same key can train in one stack."""
        return self.layers, self.activation, self.batch_size

    def settings(self) -> dict:
        """JSON-ready settings: layers as ``"784-32-10"``, activations joined by ``/``."""
        return {"lr": self.lr, "seed": self.seed, "init": self.init, "init_scale": self.init_scale,
                "layers": "-".join(map(str, self.layers)), "activation": "/".join(self.activation),
                "batch_size": self.batch_size}

    def activations(self) -> list[str]:
        hidden = len(self.layers) - 2
        return list(self.activation) * hidden if len(self.activation) == 1 else list(self.activation)


@dataclass(frozen=True)
class Fixed:
    """What every configuration of a sweep shares."""

    epochs: int = 1
    loss: str = "cross-entropy"
    output: str | None = None
    shuffle: bool | None = None
    backend: str = "numpy"
    device: str | None = None
    dtype: str = "float32"
    compile: bool | None = None
    extra: dict = field(default_factory=dict)  # data settings and the like, copied into every record


def _values(name, value, parse) -> list:
    values = list(value) if isinstance(value, (list, tuple, range, np.ndarray)) else [value]
    if not values:
        raise ValidationError(f"{name} is an empty list; give at least one value")
    parsed = [parse(v) for v in values]
    for i, v in enumerate(parsed):
        if v in parsed[:i]:
            raise ValidationError(f"{name} lists {values[i]!r} twice")
    return parsed


def _positive(name):
    def parse(v):
        check_number(name, v)
        if v <= 0:
            raise ValidationError(f"{name} must be > 0; got {v!r}")
        return float(v)
    return parse


def _seed(v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValidationError(f"seed must be a non-negative integer; got {v!r}")
    return int(v)


def _init(v):
    if v not in INITIALISERS:
        raise ValidationError(f"init must be one of {', '.join(INITIALISERS)}; got {v!r}")
    return v


def _activation(v):
    names = tuple(v.split("/")) if isinstance(v, str) else tuple(v)
    return tuple(get_activation(n).name for n in names)


def _batch(v):
    check_number("batch_size", v, low=1, integer=True)
    return int(v)


def grid(lr=(0.01,), seed=(0,), init=("normal-max",), init_scale=(1.0,), layers=("784-32-32-10",),
         activation=("sigmoid",), batch_size=(1,)) -> list[Config]:
    """Every combination of the given values (each a value or a list), with one-line errors for an empty
    list, a value given twice, or a bad value. An activation is one name for every hidden layer, or one
    per hidden layer joined by ``/`` (``"relu/tanh"``)."""
    lrs = _values("lr", lr, _positive("lr"))
    seeds = _values("seed", seed, _seed)
    inits = _values("init", init, _init)
    scales = _values("init_scale", init_scale, _positive("init_scale"))
    sizes = _values("layers", [layers] if isinstance(layers, str) else layers, lambda v: tuple(parse_layers(v)))
    acts = _values("activation", [activation] if isinstance(activation, str) else activation, _activation)
    batches = _values("batch_size", batch_size, _batch)
    configs = [Config(*values) for values in itertools.product(lrs, seeds, inits, scales, sizes, acts, batches)]
    for c in configs:
        hidden = len(c.layers) - 2
        if len(c.activation) not in (1, hidden):
            raise ValidationError(f"activation {'/'.join(c.activation)!r} names {len(c.activation)} layers; "
                                  f"layers {'-'.join(map(str, c.layers))} have {hidden} hidden")
    return configs


def network_bytes(config: Config, n_samples: int, dtype: str = "float32", own_order: bool = True) -> int:
    """Estimated device bytes one network of a stack needs while training: its parameters about five
    times over (the weights, the epoch's start and the last checkpoint, a step's gradients and
    temporaries), four arrays of activations per step, and for shuffled minibatches its own sample order
    and gathered batch (``own_order``: networks with different seeds shuffle differently)."""
    item = np.dtype(dtype).itemsize
    sizes = config.layers
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    rows = min(SAMPLE_CHUNK, n_samples) if config.batch_size == 1 else config.batch_size
    per_step = 4 * rows * sum(sizes[1:])
    if config.batch_size == 1:
        per_step += rows * sizes[1]  # the chunk's first-layer pre-activations and their corrections
    shuffled = config.batch_size > 1 and config.batch_size < n_samples and own_order
    gathered = rows * (sizes[0] + sizes[-1]) if shuffled else 0
    order = 4 * n_samples if shuffled else 0
    return item * (5 * params + per_step + gathered) + order


def plan(configs: Sequence[Config], n_samples: int, stack_size: int | None = None, dtype: str = "float32",
         memory: int = MEMORY_BUDGET) -> list[list[Config]]:
    """Group ``configs`` into stacks: same layers, activations and batch size, at most ``stack_size``
    networks each (default: as many as ``memory`` bytes allow). A stack that would not fit is refused."""
    if stack_size is not None:
        check_number("stack_size", stack_size, low=1, integer=True)
    groups: dict[tuple, list[Config]] = {}
    for c in configs:
        groups.setdefault(c.stack_key(), []).append(c)
    stacks = []
    for members in groups.values():
        seeds = {c.seed for c in members}
        each = network_bytes(members[0], n_samples, dtype, own_order=len(seeds) > 1)
        fits = memory // each
        if fits < 1:
            raise ValidationError(f"one network of layers {members[0].settings()['layers']} needs about "
                                  f"{_mib(each)} to train, more than the memory budget of {_mib(memory)}")
        size = stack_size or fits
        if size * each > memory:
            raise ValidationError(f"a stack of {size} networks of layers {members[0].settings()['layers']} needs "
                                  f"about {_mib(size * each)}, more than the memory budget of {_mib(memory)}; "
                                  f"use --stack-size {fits} or less")
        stacks += [members[i : i + size] for i in range(0, len(members), size)]
    return stacks


def _mib(n) -> str:
    return f"{n / 2**20:,.0f} MiB"


def check(configs: Sequence[Config], fixed: Fixed) -> None:
    """Build one small network of each stack's architecture, so that an impossible loss/output pair, an
    unknown backend or a dtype the device lacks is refused before any training."""
    for key in dict.fromkeys(c.stack_key() for c in configs):
        c = next(c for c in configs if c.stack_key() == key)
        Stack(c.layers, c.activations(), loss=fixed.loss, output=fixed.output, seeds=[0], backend=fixed.backend,
              device=fixed.device, dtype=fixed.dtype)


def train_stack(configs: Sequence[Config], fixed: Fixed, data, validation=None, on_epoch: Callable | None = None,
                keep_models: bool = False) -> list[dict]:
    """Train one stack of ``configs`` (which share layers, activations and batch size) on ``data``
    ``(X, y, X_test, y_test)`` (and ``validation``, ``(X_val, y_val)``) and return one record per
    configuration, in order. With ``keep_models`` each record also holds ``"model"``, the trained
    network (an :class:`~xpnet.mlp.MLP`)."""
    first = configs[0]
    if any(c.stack_key() != first.stack_key() for c in configs):
        raise ValidationError("a stack's configurations must share layers, activation and batch size")
    X, y, X_test, y_test = data
    stack = Stack(first.layers, first.activations(), loss=fixed.loss, output=fixed.output,
                  seeds=[c.seed for c in configs], init=[c.init for c in configs],
                  init_scale=[c.init_scale for c in configs], backend=fixed.backend, device=fixed.device,
                  dtype=fixed.dtype)
    t0 = time.perf_counter()
    histories = stack.fit(X, y, epochs=fixed.epochs, lr=[c.lr for c in configs], batch_size=first.batch_size,
                          shuffle=fixed.shuffle, X_test=X_test, y_test=y_test, validation=validation,
                          compile=fixed.compile, progress=False, on_epoch=on_epoch)
    final = stack.evaluate(X_test, y_test)
    final_val = stack.evaluate(*validation) if validation is not None else None
    seconds = time.perf_counter() - t0
    records = []
    for k, c in enumerate(configs):
        where = stack.diverged[k]
        record = {**c.settings(), **_fixed_settings(fixed), "history": histories[k],
                  "test_accuracy": final[k].get("accuracy"), "test_loss": final[k]["loss"],
                  "diverged": None if where is None else {key: where[key] for key in ("epoch", "step", "problem", "at")},
                  "seconds": seconds, "stack_size": len(configs)}
        if final_val is not None:
            record["val_accuracy"], record["val_loss"] = final_val[k].get("accuracy"), final_val[k]["loss"]
        if keep_models:
            record["model"] = stack.model(k)
        records.append(record)
    return records


@dataclass(frozen=True)
class Data:
    """Where a sweep's data comes from: small enough to send to a Dask worker, which loads the data
    itself (:func:`load_data`) instead of receiving the arrays with every task."""

    dataset: str = "mnist"
    data_dir: str | None = None
    scaling: str = "255"
    digits: str | None = None
    validation: float | None = None
    dtype: str = "float32"


@functools.lru_cache(maxsize=4)
def load_data(spec: Data):
    """``((X, y, X_test, y_test), validation)`` for ``spec`` (validation ``(X_val, y_val)`` or ``None``),
    host arrays; cached, so a worker process loads each data set once."""
    from . import datasets

    data = datasets.load(spec.dataset, spec.data_dir, allow_download=False, progress=False)
    X, y, X_test, y_test = datasets.prepare(data, spec.scaling, spec.digits, dtype=spec.dtype)
    validation = None
    if spec.validation:
        X, y, X_val, y_val = datasets.validation_split(X, y, spec.validation, 0)
        validation = (X_val, y_val)
    return (X, y, X_test, y_test), validation


def run_stack_task(configs, fixed: Fixed, spec: Data, keep_models: bool = False) -> list[dict]:
    """One stack, trained where this runs (a Dask worker, or here) on the data ``spec`` describes."""
    data, validation = load_data(spec)
    return train_stack(configs, fixed, data, validation, keep_models=keep_models)


def _fixed_settings(fixed: Fixed) -> dict:
    out = asdict(fixed)
    extra = out.pop("extra")
    out.pop("compile")
    return {**out, **extra}


def run(stacks: Sequence[Sequence[Config]], fixed: Fixed, data, validation=None, progress: bool | None = None,
        on_stack: Callable | None = None, keep_models: bool = False) -> list[dict]:
    """Train the ``stacks`` that :func:`plan` made, one after another, on ``data`` ``(X, y, X_test,
    y_test)`` (moved to the device once) and return their records, stack by stack. ``on_stack(records)``
    is called as each stack finishes; a progress bar counts model-epochs."""
    X, y, X_test, y_test = data
    device_data = (*_on_device(X, y, fixed), *_on_device(X_test, y_test, fixed))
    if validation is not None:
        validation = _on_device(*validation, fixed=fixed)
    results = []
    total = sum(map(len, stacks)) * max(fixed.epochs, 1)
    with Progress(total, "sweep", enabled=progress, unit="model-epochs") as bar:
        for members in stacks:
            records = train_stack(members, fixed, device_data, validation, keep_models=keep_models,
                                  on_epoch=lambda rs: bar.update(len(rs)))
            if fixed.epochs == 0:
                bar.update(len(members))
            results += records
            if on_stack is not None:
                on_stack(records)
    return results


def sweep(X, y, X_test, y_test, *, lr=(0.01,), seed=(0,), init=("normal-max",), init_scale=(1.0,),
          layers=("784-32-32-10",), activation=("sigmoid",), batch_size=(1,), fixed: Fixed | None = None,
          validation=None, stack_size: int | None = None, memory: int = MEMORY_BUDGET,
          progress: bool | None = None, on_stack: Callable | None = None, keep_models: bool = False) -> list[dict]:
    """Train every configuration of the grid (see :func:`grid`) in stacks and return their records, in
    grid order.

    Parameters
    ----------
    X, y, X_test, y_test : arrays
        Training and test data (host arrays; moved to the device once).
    lr, seed, init, init_scale, layers, activation, batch_size
        A value or a list of values each; the grid is their product.
    fixed : Fixed
        What every configuration shares (epochs, loss, backend, dtype, ...).
    validation : tuple (X_val, y_val), optional
        Scored after every epoch and at the end (``val_accuracy``, ``val_loss``).
    stack_size : int, optional
        At most this many networks per stack (default: as many as ``memory`` allows).
    memory : int
        Bytes one stack may use for its networks.
    progress : bool, optional
        A progress bar over the sweep's model-epochs (default: when stderr is a terminal).
    on_stack : callable, optional
        Called with the records of each stack as it finishes (to save or print them).
    keep_models : bool
        Keep each trained network in its record under ``"model"``.

    Returns
    -------
    list of dict
        One record per configuration: its settings, ``history``, ``test_accuracy``, ``test_loss``,
        ``diverged`` and ``seconds`` (see the module's description).
    """
    fixed = fixed or Fixed()
    configs = grid(lr, seed, init, init_scale, layers, activation, batch_size)
    check(configs, fixed)
    stacks = plan(configs, len(y), stack_size, fixed.dtype, memory)
    records = run(stacks, fixed, (X, y, X_test, y_test), validation, progress, on_stack, keep_models)
    by_config = dict(zip((c for members in stacks for c in members), records))
    return [by_config[c] for c in configs]


def _on_device(X, y, fixed: Fixed):
    """Inputs on the sweep's device, once, in its dtype; labels stay on the host."""
    from .backends import get_backend

    backend = get_backend(fixed.backend, fixed.device)
    return backend.asarray(np.asarray(X), fixed.dtype), np.asarray(y)


# -- reading the results -------------------------------------------------------------------------
def load_records(path) -> list[dict]:
    """The records ``xpnet sweep --out`` wrote (one JSON object per line), with a one-line
    :class:`~xpnet.errors.DataError` for a missing or damaged file."""
    import json
    from pathlib import Path

    from .errors import DataError

    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read sweep records ({exc.strerror if isinstance(exc, OSError) else exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {number}: not a JSON record ({exc.msg})") from None
        missing = [k for k in (*VARIED, "history", "test_accuracy", "test_loss", "diverged") if not isinstance(record, dict) or k not in record]
        if missing:
            raise DataError(f"{path}, line {number}: not an xpnet sweep record (no {', '.join(missing)})")
        records.append(record)
    if not records:
        raise DataError(f"{path}: holds no sweep records")
    return records


def selection_metric(records: Sequence[dict]) -> str:
    """What ranks configurations: the validation accuracy when the sweep held a validation set out, the
    test accuracy otherwise."""
    return "val_accuracy" if records and all("val_accuracy" in r for r in records) else "test_accuracy"


def best_first(records: Sequence[dict]) -> list[dict]:
    """Records sorted by :func:`selection_metric` (then test loss), the diverged ones last."""
    metric = selection_metric(records)

    def key(r):
        acc = r.get(metric)
        acc = -1.0 if acc is None or r.get("diverged") or not math.isfinite(acc) else acc
        loss = r.get("test_loss")
        return (-acc, loss if loss is not None and math.isfinite(loss) else math.inf)

    return sorted(records, key=key)


def summary_over_seeds(records: Sequence[dict]) -> list[dict]:
    """One row per setting (every varied setting but the seed): the number of seeds, how many diverged,
    and the mean and standard deviation over the others of :func:`selection_metric`; best mean first."""
    metric = selection_metric(records)
    names = [k for k in VARIED if k != "seed"]
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in names), []).append(r)
    rows = []
    for key, members in groups.items():
        accs = [r[metric] for r in members if r.get(metric) is not None and not r.get("diverged")]
        rows.append({**dict(zip(names, key)), "seeds": len(members), "metric": metric,
                     "diverged": sum(1 for r in members if r.get("diverged")),
                     "mean": statistics.fmean(accs) if accs else None,
                     "std": (statistics.stdev(accs) if len(accs) > 1 else 0.0) if accs else None})
    return sorted(rows, key=lambda r: -1 if r["mean"] is None else -r["mean"])


def _varying(records, names):
    return [k for k in names if len({str(r[k]) for r in records}) > 1] or list(names[:1])


def _cell(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def table(records: Sequence[dict]) -> str:
    """A markdown table of the records, best first: the settings that vary, validation accuracy (when
    held out), test accuracy and loss, diverged or not, and the seconds of the stack each trained in."""
    columns = _varying(records, VARIED)
    val = selection_metric(records) == "val_accuracy"
    lines = ["| " + " | ".join(columns) + (" | val accuracy" if val else "") +
             " | test accuracy | test loss | diverged | seconds (its stack) |",
             "|---" * (len(columns) + 4 + val) + "|"]
    for r in best_first(records):
        where = f"epoch {r['diverged']['epoch']}, step {r['diverged']['step']}" if r.get("diverged") else "no"
        lines.append("| " + " | ".join(_cell(r[c]) for c in columns) + (f" | {_percent(r['val_accuracy'])}" if val else "")
                     + f" | {_percent(r['test_accuracy'])} | {r['test_loss']:.4f} | {where} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def summary_table(records: Sequence[dict]) -> str:
    """A markdown table of :func:`summary_over_seeds`."""
    rows = summary_over_seeds(records)
    columns = _varying(records, [k for k in VARIED if k != "seed"])
    what = "val accuracy" if selection_metric(records) == "val_accuracy" else "test accuracy"
    lines = ["| " + " | ".join(columns) + f" | seeds | {what} (mean ± std) | diverged |",
             "|---" * (len(columns) + 3) + "|"]
    for r in rows:
        shown = "—" if r["mean"] is None else f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}%"
        lines.append("| " + " | ".join(_cell(r[c]) for c in columns) + f" | {r['seeds']} | {shown} | {r['diverged']} |")
    return "\n".join(lines)


__all__ = ["Config", "Fixed", "grid", "check", "plan", "train_stack", "run", "sweep", "best_first",
           "selection_metric", "summary_over_seeds",
           "table", "summary_table", "network_bytes", "MEMORY_BUDGET"]
