"""Grid searches trained as stacks: a grid is a run specification whose sweepable fields hold lists
(:func:`xpnet.spec.grid`); its runs that share everything but seed, initialisation and learning rate train
as the networks of one stack, by one set of array operations.

>>> from xpnet import spec
>>> runs = spec.expand(spec.grid(lr=[0.01, 0.1], seed=range(3), layers="784-32-10"))
>>> len(runs), len(plan(runs, n_samples=60000))
(6, 1)

:func:`plan` groups the runs that can share a stack, at most ``stack_size`` networks each (by default as
many as :data:`MEMORY_BUDGET` allows). :func:`train_stack` trains one stack and returns one record per
run; :class:`Sweep` (and :func:`sweep`) runs a whole grid -- here or on a Dask cluster, resuming from the
records of an earlier run, saving each run's weights. A record is the run's flat fields
(:meth:`xpnet.spec.Run.record`: ``lr``, ``seed``, ``layers`` ...) plus ``history`` (as ``xpnet train
--json`` gives it), ``test_accuracy``, ``test_loss``, ``diverged`` (``None``, or where), ``seconds`` (the
wall time of the stack it trained in) and ``stack_size``.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import checks, schedules, spec, train
from .runs import start
from .session import run_meta
from .errors import DataError, ValidationError
from .io import atomic_write, check_directory, check_writable
from .progress import Progress
from .stack import Stack

#: Bytes of device memory one stack may use for its networks (the shared data comes on top).
MEMORY_BUDGET = 1 << 30
#: The settings a grid varies in, in the order tables show them.
VARIED = spec.SWEPT
#: The settings every sweep record holds (records written before the optimizers had only these).
REQUIRED = ("lr", "seed", "init", "init_scale", "layers", "activation", "batch_size")
#: The update rules' and schedules' settings that a result file's name spells out where they are given.
RULE_SETTINGS = tuple(k for k in VARIED if k not in (*REQUIRED, "optimizer"))


def network_bytes(run: spec.Run, n_samples: int, own_order: bool = True) -> int:
    """Estimated device bytes one network of a stack needs while training: its parameters about five
    times over (the weights, the epoch's start and the last checkpoint, a step's gradients and
    temporaries), four arrays of activations per step, and for shuffled minibatches its own sample order
    and gathered batch (``own_order``: networks with different seeds shuffle differently)."""
    item = np.dtype(run.placement.dtype).itemsize
    sizes, batch = run.model.sizes, run.training.batch_size
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    rows = min(run.training.sample_chunk or train.SAMPLE_CHUNK, n_samples) if batch == 1 else batch
    per_step = 4 * rows * sum(sizes[1:])
    if batch == 1:
        per_step += rows * sizes[1]  # the chunk's first-layer pre-activations and their corrections
    shuffled = 1 < batch < n_samples and own_order
    gathered = rows * (sizes[0] + sizes[-1]) if shuffled else 0
    order = 4 * n_samples if shuffled else 0
    return item * (5 * params + per_step + gathered) + order


def plan(runs: Sequence[spec.Run], n_samples: int, stack_size: int | None = None,
         memory: int = MEMORY_BUDGET) -> list[list[spec.Run]]:
    """Group ``runs`` into stacks (one :meth:`~xpnet.spec.Run.stack_key` each), at most ``stack_size``
    networks each (default: as many as ``memory`` bytes allow). A stack that would not fit is refused."""
    if stack_size is not None:
        stack_size = checks.integer("stack_size", stack_size, 1)
    groups: dict[tuple, list[spec.Run]] = {}
    for run in runs:
        groups.setdefault(run.stack_key(), []).append(run)
    stacks = []
    for members in groups.values():
        layers = members[0].model.layers
        each = network_bytes(members[0], n_samples, own_order=len({r.seed for r in members}) > 1)
        fits = memory // each
        if fits < 1:
            raise ValidationError(f"one network of layers {layers} needs about {_mib(each)} to train, more than the "
                                  f"memory budget of {_mib(memory)}")
        size = stack_size or fits
        if size * each > memory:
            raise ValidationError(f"a stack of {size} networks of layers {layers} needs about {_mib(size * each)}, "
                                  f"more than the memory budget of {_mib(memory)}; use --stack-size {fits} or less")
        stacks += [members[i : i + size] for i in range(0, len(members), size)]
    return stacks


def _mib(n) -> str:
    return f"{n / 2**20:,.0f} MiB"


def check(runs: Sequence[spec.Run]) -> None:
    """Build one small stack of each stack's kind, so that an unknown backend, a missing device or a dtype
    the device lacks is refused before any training."""
    for key in dict.fromkeys(r.stack_key() for r in runs):
        Stack.from_runs([next(r for r in runs if r.stack_key() == key)])


def train_stack(runs: Sequence[spec.Run], data: spec.Arrays, on_epoch: Callable | None = None,
                keep_models: bool = False) -> list[dict]:
    """Train one stack of ``runs`` (one stack key) on ``data`` and return one record per run, in order.
    With ``keep_models`` each record also holds ``"model"``, the trained network (an
    :class:`~xpnet.mlp.MLP`, with its part of the run's state)."""
    t0 = time.perf_counter()
    session = start(runs, data, stack=True)
    histories = session.train(progress=False, on_epoch=on_epoch)
    stack, final = session.model, session.final
    seconds = time.perf_counter() - t0
    records = []
    for k, run in enumerate(runs):
        where = stack.diverged[k]
        record = {**run.record(), "history": histories[k], "test_accuracy": final["test"][k].get("accuracy"),
                  "test_loss": final["test"][k]["loss"],
                  "diverged": None if where is None else {key: where[key] for key in ("epoch", "step", "problem", "at")},
                  "seconds": seconds, "stack_size": len(runs)}
        if "val" in final:
            record["val_accuracy"], record["val_loss"] = final["val"][k].get("accuracy"), final["val"][k]["loss"]
        if keep_models:
            record["model"] = stack.model(k)
        records.append(record)
    return records


def run_stack_task(runs, source, keep_models: bool = False) -> list[dict]:
    """One stack, trained where this runs (a Dask worker, or here) on ``source``: a
    :class:`~xpnet.spec.Data` the worker loads itself (once per process), or the arrays."""
    data = spec.load_data(source, runs[0].placement.dtype, download=False) if isinstance(source, spec.Data) else source
    return train_stack(runs, data, keep_models=keep_models)


def weights_name(record) -> str:
    """A file name that says a configuration's grid settings (plain SGD's as before optimizers existed;
    any other optimizer, schedule or early stopping adds its settings) and ends with 10 hex digits of the
    SHA-256 of its whole record: unique per configuration, whatever values print alike (``%g`` rounds)."""
    act = record["activation"].replace("/", "+")
    name = (f"lr{record['lr']:g}_seed{record['seed']}_{record['init']}_scale{record['init_scale']:g}_"
            f"{record['layers']}_{act}_batch{record['batch_size']}")
    plain = record.get("optimizer", "sgd") == "sgd" and not record.get("momentum") and not record.get("weight_decay") \
        and record.get("schedule", "constant") == "constant" and record.get("early_stopping") is None
    if not plain:
        name += f"_{record['optimizer']}_{record['schedule']}" + "".join(
            f"_{k.replace('_', '')}{record[k]:g}" for k in RULE_SETTINGS if record.get(k) is not None)
    return f"{name}_{_digest(record)}.npz"


def _identity(resolved: dict) -> str:
    """A configuration's identity: its whole resolved record (:meth:`xpnet.spec.Run.record`) as JSON."""
    return json.dumps(resolved, sort_keys=True)


def _key(record: dict) -> str:
    """The identity of the configuration a sweep record (or any flat dict of settings) describes."""
    return _identity(spec.Run.from_flat(record).record())


def _digest(record: dict) -> str:
    return hashlib.sha256(_key(record).encode()).hexdigest()[:10]


class Sweep:
    """A grid, checked, its data at hand and its stacks planned -- nothing trained yet.

    Parameters
    ----------
    grid : Run
        A run specification whose sweepable fields may hold lists (:func:`xpnet.spec.grid`).
    data : tuple (X, y, X_test, y_test), optional
        Host arrays; ``grid.data.validation`` of the training rows are held out (chosen by
        ``grid.data.split_seed``). By default the data ``grid.data`` names is loaded (here, and by each
        Dask worker for itself).
    out : path, optional
        Write the records here (one JSON object per line), rewritten atomically as each stack finishes.
    resume : bool
        Train only the runs ``out`` holds no record of yet.
    save_dir : path, optional
        Write each run's weights there (loadable by ``MLP.load`` and ``xpnet evaluate``).
    stack_size : int, optional
        At most this many networks per stack (default: as many as ``memory`` allows).
    memory : int
        Bytes one stack may use for its networks.

    Every mistake (a bad grid, layers that do not fit the data, an output that cannot be written, a
    stack over ``memory``, a missing backend) is refused here, in one line, before any training.
    """

    def __init__(self, grid: spec.Run, data=None, *, out=None, resume: bool = False, save_dir=None,
                 stack_size: int | None = None, memory: int = MEMORY_BUDGET):
        if resume and not out:
            raise ValidationError("--resume needs --out FILE (the records of the configurations already trained)")
        self.out, self.save_dir = out and check_writable(out, "--out"), save_dir and check_directory(save_dir, "--save-dir")
        self.source = grid.data if data is None else None
        dtype = grid.placement.dtype
        self.data = spec.load_data(grid.data, dtype) if data is None else spec.split(spec.Arrays(*data), grid.data)
        n = len(self.data.y)
        classes = len(self.data.classes) if self.data.classes is not None else int(np.max(self.data.y)) + 1
        grid = grid.fitted(self.data.X.shape[1], classes, n)  # the layer ends and epochs left to the data
        if data is None:
            for layers in _values(grid.model.layers):
                spec.check_fits(checks.layers(layers), self.data.X.shape[1], len(self.data.classes))
        for batch in _values(grid.training.batch_size):
            if batch > n:
                raise ValidationError(f"--batch-size {batch} is more than the {n} training samples")
        # what the data says of itself (held-out test rows), then options some optimizers of the grid do not
        # use: said in one line each
        self.notes: list[str] = (self.data.note or "").splitlines()
        self.runs = spec.expand(grid, self.notes)
        check(self.runs)
        for run in self.runs:
            schedules.check([run.optimizer], run.training.epochs, n, run.placement.dtype)
        self.done = self._done(out) if resume and Path(out).exists() else []
        finished = {_key(r) for r in self.done}
        self.todo = [r for r in self.runs if _identity(r.record()) not in finished]
        if self.save_dir:
            for run in self.todo:
                _check_weights_file(Path(self.save_dir) / weights_name(run.record()), run)
        self.stacks = plan(self.todo, n, stack_size, memory) if self.todo else []

    def _done(self, out) -> list[dict]:
        """The records ``out`` holds, each of a configuration of this grid (else a one-line refusal
        naming the file, the line and what differs)."""
        ours = [r.record() for r in self.runs]
        keys = set(map(_identity, ours))
        done = []
        for line, record in _numbered_records(out):
            if _key(record) not in keys:
                theirs = spec.Run.from_flat(record).record()
                differ = [f"{k} {theirs[k]!r} there, {ours[0][k]!r} here" for k in ours[0]
                          if k not in VARIED and theirs.get(k) != ours[0][k]]
                differ = differ or [f"{k} {theirs[k]!r} is not among this sweep's values" for k in VARIED
                                    if theirs.get(k) not in [r[k] for r in ours]]
                raise ValidationError(f"{out}, line {line}: a configuration of another sweep "
                                      f"({'; '.join(differ[:3]) or 'another grid'}); resume with the options that "
                                      "wrote it, or write to another --out")
            done.append(record)
        return done

    def run(self, client=None, progress: bool | None = None, on_stack: Callable | None = None) -> list[dict]:
        """Train the planned stacks -- here, or as Dask tasks on ``client`` -- and return every record
        (those ``out`` held first), in grid order. ``on_stack(records)`` is called as each stack
        finishes, after its records are written and its weights saved."""
        records = list(self.done)

        def finished(new):
            for r in new:
                model = r.pop("model", None)
                if self.save_dir:
                    r["weights"] = str(Path(self.save_dir) / weights_name(r))
                    extra = {"diverged": r["diverged"]["at"]} if r["diverged"] else {}
                    if self.data.scaling is not None:  # how the data was scaled, as xpnet train records it
                        extra["input_scaling"] = self.data.scaling
                    model.save(r["weights"], **run_meta(spec.Run.from_flat(r)), test_accuracy=r["test_accuracy"],
                               **extra)
            records.extend(new)
            if self.out:
                text = "".join(json.dumps(r) + "\n" for r in records)
                atomic_write(self.out, lambda f: f.write(text.encode()))
            if on_stack is not None:
                on_stack(new)

        keep = bool(self.save_dir)
        if client is None:
            self._here(progress, finished, keep)
        else:
            from . import distributed

            source = self.source or distributed.share(client, self.data)
            distributed.run(client, run_stack_task, [(members, source, keep) for members in self.stacks], finished,
                            progress)
        position = {_identity(r.record()): i for i, r in enumerate(self.runs)}
        return sorted(records, key=lambda r: position.get(_key(r), len(position)))

    def _here(self, progress, finished, keep):
        """The stacks one after another in this process, the data moved to the device once."""
        data = _on_device(self.data, self.runs[0].placement)
        epochs = self.runs[0].training.epochs
        total = sum(len(s) * max(s[0].training.epochs, 1) for s in self.stacks)
        with Progress(total, "sweep", enabled=progress, unit="model-epochs") as bar:
            for members in self.stacks:
                new = train_stack(members, data, keep_models=keep, on_epoch=lambda rs: bar.update(len(rs)))
                if epochs == 0:
                    bar.update(len(members))
                finished(new)


def _check_weights_file(path: Path, run: spec.Run) -> None:
    """Refuse, before any training, to overwrite a file at ``path`` unless it holds this very
    configuration's weights (a file of another configuration, or a damaged one, is left alone)."""
    if not path.exists():
        return
    from .io import load_weights

    try:
        _, meta = load_weights(path)
        theirs = meta.get("identity") or spec.from_meta(meta).record()
    except (DataError, ValidationError) as exc:
        raise ValidationError(f"--save-dir: {path} exists and is not a weights file of this sweep ({exc}); "
                              "move it away or use another --save-dir") from None
    if _identity(theirs) != _identity(run.record()):
        raise ValidationError(f"--save-dir: {path} holds the weights of another configuration; move it away or use "
                              "another --save-dir")


def _values(field) -> list:
    """A grid field's values (a list, or one value)."""
    return field if isinstance(field, list) else [field]


def sweep(grid: spec.Run, data=None, *, client=None, progress: bool | None = None, on_stack: Callable | None = None,
          **options) -> list[dict]:
    """Train every run of ``grid`` in stacks and return their records, in grid order: :class:`Sweep`
    ``(grid, data, **options).run(client, progress, on_stack)``.

    >>> from xpnet import spec                                                 # doctest: +SKIP
    >>> records = sweep(spec.grid(lr=[0.01, 0.1], seed=range(2), layers="784-16-10", epochs=1))
    """
    return Sweep(grid, data, **options).run(client, progress, on_stack)


def _on_device(data: spec.Arrays, placement: spec.Placement) -> spec.Arrays:
    """Inputs on the sweep's device, once, in its dtype; labels stay on the host."""
    from .backends import get_backend

    backend = get_backend(placement.backend, placement.device)

    def move(X):
        return backend.asarray(np.asarray(X), placement.dtype)

    validation = None if data.validation is None else (move(data.validation[0]), np.asarray(data.validation[1]))
    return spec.Arrays(move(data.X), np.asarray(data.y), move(data.X_test), np.asarray(data.y_test), validation)


# -- reading the results -------------------------------------------------------------------------
def load_records(path) -> list[dict]:
    """The records a sweep wrote (one JSON object per line), each checked, with a one-line
    :class:`~xpnet.errors.DataError` naming the file (and the line) for a missing or damaged one."""
    return [record for _, record in _numbered_records(path)]


def _numbered_records(path) -> list[tuple[int, dict]]:
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
        missing = [k for k in (*REQUIRED, "history", "test_accuracy", "test_loss", "diverged")
                   if not isinstance(record, dict) or k not in record]
        if missing:
            raise DataError(f"{path}, line {number}: not an xpnet sweep record (no {', '.join(missing)})")
        problem = _damage(record)
        if problem:
            raise DataError(f"{path}, line {number}: a damaged sweep record ({problem})")
        records.append((number, record))
    if not records:
        raise DataError(f"{path}: holds no sweep records")
    return records


def _damage(record: dict) -> str | None:
    """What is wrong with a record that has every key (``None``: nothing): a setting no run takes, or a
    result of the wrong type."""
    try:
        spec.Run.from_flat(record)
    except ValidationError as exc:
        return str(exc)

    def number(v, low=-math.inf, high=math.inf, none=False, infinite=False):
        return (v is None and none) or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                        and (math.isfinite(v) or infinite and v == math.inf) and low <= v <= high)

    checks_ = [("test_accuracy", number(record["test_accuracy"], 0, 1, none=True)),
               ("test_loss", number(record["test_loss"], 0, infinite=True)),
               ("seconds", number(record.get("seconds", 0.0), 0)),
               ("val_accuracy", number(record.get("val_accuracy"), 0, 1, none=True)),
               ("val_loss", number(record.get("val_loss"), 0, none=True, infinite=True)),
               ("stack_size", record.get("stack_size", 1) is None or number(record.get("stack_size", 1), 1)),
               ("diverged", record["diverged"] is None or (isinstance(record["diverged"], dict) and all(
                   number(record["diverged"].get(k), 0) for k in ("epoch", "step"))
                   and isinstance(record["diverged"].get("at"), str))),
               ("history", isinstance(record["history"], list) and all(
                   isinstance(h, dict) and number(h.get("epoch"), 1) and number(h.get("train_loss"), 0, infinite=True)
                   and number(h.get("test_accuracy"), 0, 1, none=True) and number(h.get("lr"), 0, none=True)
                   for h in record["history"]))]
    bad = [name for name, ok in checks_ if not ok]
    return None if not bad else f"{', '.join(bad)}: " + "; ".join(f"{k} {record.get(k)!r:.60}" for k in bad)


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
        groups.setdefault(tuple(r.get(k) for k in names), []).append(r)
    rows = []
    for key, members in groups.items():
        accs = [r[metric] for r in members if r.get(metric) is not None and not r.get("diverged")]
        rows.append({**dict(zip(names, key)), "seeds": len(members), "metric": metric,
                     "diverged": sum(1 for r in members if r.get("diverged")),
                     "mean": statistics.fmean(accs) if accs else None,
                     "std": (statistics.stdev(accs) if len(accs) > 1 else 0.0) if accs else None})
    return sorted(rows, key=lambda r: -1 if r["mean"] is None else -r["mean"])


def _varying(records, names):
    """The settings that take more than one value (a setting some runs lack, None, does not count)."""
    return [k for k in names if len({str(r.get(k)) for r in records if r.get(k) is not None}) > 1] or list(names[:1])


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
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in columns) + (f" | {_percent(r['val_accuracy'])}" if val else "")
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
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in columns) + f" | {r['seeds']} | {shown} | {r['diverged']} |")
    return "\n".join(lines)


__all__ = ["Sweep", "sweep", "check", "plan", "train_stack", "run_stack_task", "weights_name", "best_first",
           "selection_metric", "summary_over_seeds", "load_records", "table", "summary_table", "network_bytes",
           "MEMORY_BUDGET", "VARIED"]
