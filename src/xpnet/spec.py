"""The run specification: one frozen, serialisable description of a training run, in groups.

A :class:`Run` holds a :class:`Data`, :class:`Model`, :class:`Training`, :class:`Optimizer` and
:class:`Placement` group and the ``seed``. It is what ``xpnet train`` builds from its options, what a
checkpoint and a weights file record (``meta["run"]``), what a sweep record holds (flattened: one key per
field, ``lr``, ``seed``, ``layers`` ...) and how ``xpnet bench`` names a network. Every field is declared
once, with its check and its command-line option (:class:`Option`); :func:`add_arguments` builds the
argparse options of ``xpnet train`` and ``xpnet sweep`` from those declarations, and :func:`from_args`
builds the run back.

A *grid* is a run whose sweepable fields (:data:`SWEPT`) may hold lists; :func:`expand` gives its runs,
in the order of :data:`SWEPT` (the first varies slowest).

>>> run = Run(optimizer=Optimizer(lr=0.1), seed=3)
>>> run.flat()["lr"], Run.from_flat(run.flat()) == run
(0.1, True)
>>> [r.seed for r in expand(grid(lr=[0.1, 0.01], seed=range(2)))]
[0, 1, 0, 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
from dataclasses import dataclass, field, fields
from typing import Any, Callable, NamedTuple

from . import checks, datasets
from .backends import DTYPES
from .datasets import DATASETS, SCALINGS, parse_digits
from .errors import ValidationError
from .functions import DEFAULT_OUTPUT, LOSSES, OUTPUTS, get_activation, head_for, hidden_activations
from .init import INITIALISERS

#: The fields a sweep may give lists for, in grid order.
SWEPT = ("lr", "seed", "init", "init_scale", "layers", "activation", "batch_size")


@dataclass(frozen=True)
class Option:
    """How one field is written on the command line and checked.

    ``parse`` turns the option's text into a value (``ValueError`` on bad syntax, which argparse reports);
    ``check(name, value)`` accepts a value from any source (normalising it) or raises a one-line
    :class:`~xpnet.errors.ValidationError`. ``sweep``: ``xpnet sweep`` takes a list; ``network``: the
    networks of one stack may differ in it.
    """

    flag: str | None = None
    parse: Callable = str
    check: Callable | None = None
    help: str = ""
    choices: tuple | None = None
    sweep: bool = False
    network: bool = False
    boolean: bool = False
    metavar: str | None = None


def _option(default, flag=None, **kwargs):
    return field(default=default, metadata={"option": Option(flag, **kwargs)})


def _maybe(check):
    """``check`` for a field whose ``None`` means "the default"."""
    return lambda name, v: None if v is None else check(name, v)


def _layers(name, value) -> str:
    return "-".join(map(str, checks.layers(value)))


def _activation(name, value) -> str:
    """One name, or one per hidden layer joined by '/'; the same name for every layer is written once."""
    names = value.split("/") if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValidationError(f"{name} must be a name or names joined by '/'; got {value!r}")
    names = [get_activation(n).name for n in names]
    return names[0] if len(set(names)) == 1 else "/".join(names)


def _digits(name, value) -> str:
    return ",".join(map(str, parse_digits(value)))


def _text(name, value) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string; got {value!r}")
    return value


def _choice(table):
    return lambda name, v: checks.choice(name, v, table)


class _Group:
    """Checks and normalises every field; a list in a sweepable field is a grid axis (one value: that
    value)."""

    def __post_init__(self):
        for f in fields(self):
            opt = f.metadata.get("option")
            if opt is None or opt.check is None:
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                if not opt.sweep:
                    raise ValidationError(f"{f.name} takes one value, not a list; only {', '.join(SWEPT)} take lists")
                value = checks.distinct(f.name, [opt.check(f.name, v) for v in value], value)
                value = value if len(value) > 1 else value[0]
            else:
                value = opt.check(f.name, value)
            object.__setattr__(self, f.name, value)


@dataclass(frozen=True)
class Data(_Group):
    """Which data: the data set, its scaling, a digit pair, the validation fraction and the seed that
    chooses the held-out rows (``split_seed``, independent of the run's ``seed``)."""

    dataset: str = _option("mnist", "--dataset", check=_choice(DATASETS), choices=DATASETS, help="data set")
    scaling: str = _option("255", "--scale", check=_choice(SCALINGS), choices=SCALINGS,
                           help="pixel scaling: /255, per-image max, standardize, or none (raw 0-255)")
    digits: str | None = _option(None, "--digits", check=_maybe(_digits), metavar="A,B",
                                 help="use two classes only, labelled 0 and 1 (e.g. 3,9)")
    validation: float | None = _option(None, "--validation", parse=float, metavar="FRACTION",
                                       check=_maybe(lambda n, v: checks.fraction("validation fraction", v)),
                                       help="hold out this fraction of the training set")
    split_seed: int = _option(0, "--split-seed", parse=int, check=checks.seed, metavar="S",
                              help="seed of the rows --validation holds out (the same in train and sweep)")
    data_dir: str | None = field(default=None, compare=False, metadata={"option": Option(
        "--data-dir", check=_maybe(_text), metavar="DIR", help="directory holding the IDX files ($XPNET_DATA, the package, the cache)")})


@dataclass(frozen=True)
class Model(_Group):
    """The network: layer sizes, hidden activation(s), output/loss pair and initialisation."""

    layers: str = _option("784-32-32-10", "--layers", check=_layers, sweep=True, help="layer sizes joined by '-'")
    activation: str = _option("sigmoid", "--activation", check=_activation, sweep=True,
                              help="hidden activation (sigmoid, tanh, relu, identity), or one per hidden layer joined by '/'")
    loss: str = _option("cross-entropy", "--loss", check=_choice(LOSSES), choices=LOSSES)
    output: str | None = _option(None, "--output", check=_maybe(_choice(OUTPUTS)), choices=OUTPUTS,
                                 help="output activation (default: the loss's own)")
    init: str = _option("normal-max", "--init", check=_choice(INITIALISERS), sweep=True, network=True,
                        help=f"weight initialisation: {', '.join(INITIALISERS)}")
    init_scale: float = _option(1.0, "--init-scale", parse=float, check=checks.positive, sweep=True, network=True,
                                metavar="C",
                                help="multiply the initial weights by this")

    @property
    def sizes(self) -> list[int]:
        return checks.layers(self.layers)

    @property
    def activations(self) -> list[str]:
        """One activation name per hidden layer."""
        return [a.name for a in hidden_activations(self.activation, self.sizes)]


@dataclass(frozen=True)
class Training(_Group):
    """How the data is stepped through: epochs, batch size, shuffling, and how steps run (compiled
    epochs; samples per call of the per-sample kernel; JAX's scan unroll)."""

    epochs: int = _option(3, "--epochs", parse=int, check=lambda n, v: checks.integer(n, v, 0), metavar="N",
                          help="epochs; 0 evaluates the untrained net")
    batch_size: int = _option(1, "--batch-size", parse=int, check=lambda n, v: checks.integer(n, v, 1), sweep=True,
                              metavar="B",
                              help="samples per step; 1 is the textbook per-sample algorithm")
    shuffle: bool | None = _option(None, "--shuffle", check=_maybe(checks.flag), boolean=True,
                                   help="reshuffle every epoch (default: on for batch size > 1, off for 1)")
    compile: bool | None = _option(None, "--compile", check=_maybe(checks.flag), boolean=True,
                                   help="run each epoch as one compiled call (default: where the backend has a "
                                        "compiler: jax)")
    sample_chunk: int = _option(32, check=lambda n, v: checks.integer(n, v, 1))
    unroll: int = _option(1, check=lambda n, v: checks.integer(n, v, 1))


@dataclass(frozen=True)
class Optimizer(_Group):
    """How the weights are updated from their gradients (plain SGD: the learning rate)."""

    lr: float = _option(0.003, "--lr", parse=float, check=checks.positive, sweep=True, network=True,
                        help="learning rate")


@dataclass(frozen=True)
class Placement(_Group):
    """Where the run computes: the array library, its device and the floating-point type."""

    backend: str = _option("numpy", "--backend", check=_text, help="array library: numpy, cupy, torch, jax, "
                           "array_api_strict, dask")
    device: str | None = _option(None, "--device", check=_maybe(_text),
                                 help="device, e.g. cpu, cuda:0, device1 (default: the backend's)")
    dtype: str = _option("float32", "--dtype", check=_choice(DTYPES), choices=DTYPES, help="floating-point type")


GROUPS = {"data": Data, "model": Model, "training": Training, "optimizer": Optimizer, "placement": Placement}


@dataclass(frozen=True)
class Run(_Group):
    """A whole run: the five groups and the seed (initial weights and shuffling order)."""

    data: Data = field(default_factory=Data)
    model: Model = field(default_factory=Model)
    training: Training = field(default_factory=Training)
    optimizer: Optimizer = field(default_factory=Optimizer)
    placement: Placement = field(default_factory=Placement)
    seed: int = _option(0, "--seed", parse=int, check=checks.seed, sweep=True, network=True,
                        help="random seed: initial weights and shuffling")

    def __post_init__(self):
        super().__post_init__()
        if not self.is_grid():
            model = self.model
            head_for(model.loss, model.output, model.sizes[-1])
            hidden_activations(model.activation, model.sizes)

    # -- flat names ---------------------------------------------------------------------------------
    def flat(self) -> dict:
        """Every field by its own name (``lr``, ``seed``, ``layers`` ...), JSON-ready."""
        out = {}
        for group in GROUPS:
            out.update(dataclasses.asdict(getattr(self, group)))
        out["seed"] = self.seed
        return out

    def record(self) -> dict:
        """:meth:`flat` without what does not describe the run (where the data files are)."""
        return {k: v for k, v in self.flat().items() if k not in UNCOMPARED}

    @classmethod
    def from_flat(cls, values: dict, base: "Run | None" = None) -> "Run":
        """The run with these flat fields (others: ``base``'s, or the defaults); unknown keys are ignored,
        so a sweep record or a weights file's ``meta`` gives its run."""
        return (base or cls()).replace(**{k: v for k, v in values.items() if k in FIELDS})

    def replace(self, **values) -> "Run":
        """A copy with the flat fields ``values`` changed (each checked)."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ValidationError(f"unknown run setting(s): {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        changes = {}
        for name, value in values.items():
            group = FIELDS[name]
            if group is None:
                changes[name] = value
            else:
                changes.setdefault(group, {})[name] = value
        return dataclasses.replace(self, **{g: dataclasses.replace(getattr(self, g), **v) if g in GROUPS else v
                                            for g, v in changes.items()})

    def to_dict(self) -> dict:
        """The groups as nested dicts (what a weights file records)."""
        return {**{g: dataclasses.asdict(getattr(self, g)) for g in GROUPS}, "seed": self.seed}

    @classmethod
    def from_dict(cls, values: dict) -> "Run":
        try:
            groups = {g: GROUPS[g](**values.get(g, {})) for g in GROUPS}
            return cls(**groups, seed=values.get("seed", 0))
        except TypeError as exc:
            raise ValidationError(f"not a run specification ({exc})") from None

    # -- grids --------------------------------------------------------------------------------------
    def is_grid(self) -> bool:
        return any(isinstance(v, list) for v in self.flat().values())

    def stack_key(self) -> tuple:
        """Runs with the same key can train as networks of one stack: they differ only in fields the
        networks of a stack may differ in (seed, initialisation, learning rate)."""
        return tuple((k, v) for k, v in self.flat().items() if not OPTIONS[k].network and k not in UNCOMPARED)

    def differences(self, other: "Run", ignore=()) -> list[tuple[str, Any, Any]]:
        """``(name, this value, other's value)`` for each flat field that differs."""
        a, b = self.flat(), other.flat()
        return [(k, a[k], b[k]) for k in a if a[k] != b[k] and k not in ignore and k not in UNCOMPARED]


#: Flat field name -> its group (``None`` for the seed).
FIELDS: dict[str, str | None] = {f.name: g for g, cls in GROUPS.items() for f in fields(cls)} | {"seed": None}
#: Flat field name -> its :class:`Option`.
OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for cls in (*GROUPS.values(), Run) for f in fields(cls)
                              if "option" in f.metadata}
#: Fields that say where, not what: never compared, never in records.
UNCOMPARED = ("data_dir",)
#: What a resumed run may change: how many epochs, and how and where its steps run.
RESUMABLE = ("epochs", "compile", "sample_chunk", "unroll", "backend", "device")


def grid(**values) -> Run:
    """A grid from flat fields: a list, tuple, range or array gives the values of a sweepable field
    (a single ``layers`` or ``activation`` is a string)."""
    return Run.from_flat({k: list(v) if isinstance(v, checks.SEQUENCES) else v for k, v in values.items()})


def expand(run: Run) -> list[Run]:
    """Every run of a grid, the fields of :data:`SWEPT` varying in that order (the first slowest)."""
    flat = run.flat()
    axes = [(k, flat[k]) for k in SWEPT if isinstance(flat[k], list)]
    if not axes:
        return [run]
    names = [k for k, _ in axes]
    return [run.replace(**dict(zip(names, combo))) for combo in itertools.product(*(v for _, v in axes))]


def check_fits(sizes, n_features: int, n_classes: int) -> None:
    """Layer ``sizes`` start with the data's feature count and end with its class count (or 1 for two
    classes): one-line errors otherwise."""
    if sizes[0] != n_features:
        raise ValidationError(f"--layers must start with the input size {n_features}; got {sizes[0]}")
    wanted = {n_classes} | ({1} if n_classes == 2 else set())
    if sizes[-1] not in wanted:
        raise ValidationError(f"--layers must end with the class count "
                              f"{' or '.join(map(str, sorted(wanted, reverse=True)))}; got {sizes[-1]}")


class Arrays(NamedTuple):
    """A run's data as host arrays: training, test, and the held-out ``validation`` pair (or ``None``)."""

    X: Any
    y: Any
    X_test: Any
    y_test: Any
    validation: tuple | None = None


def split(arrays: Arrays, data: Data) -> Arrays:
    """``arrays`` with ``data.validation`` of the training rows held out, chosen by ``data.split_seed``."""
    if not data.validation:
        return arrays
    X, y, X_val, y_val = datasets.validation_split(arrays.X, arrays.y, data.validation, data.split_seed)
    return Arrays(X, y, arrays.X_test, arrays.y_test, (X_val, y_val))


def load_data(data: Data, dtype="float64", download: bool = True, progress: bool | None = None) -> Arrays:
    """The data ``data`` describes: loaded, scaled, a digit pair, the validation rows held out (host
    arrays of ``dtype``). Cached, so a Dask worker loads each data set once."""
    return _load(data, data.data_dir, dtype, download, progress)


@functools.lru_cache(maxsize=4)
def _load(data, data_dir, dtype, download, progress):
    loaded = datasets.load(data.dataset, data_dir, allow_download=download, progress=progress)
    X, y, X_test, y_test = datasets.prepare(loaded, data.scaling, data.digits, dtype=dtype)
    return split(Arrays(X, y, X_test, y_test), data)


def n_classes(data: Data) -> int:
    return 2 if data.digits else len(datasets.CLASSES[data.dataset])


#: The flat keys weights files held before they recorded the run (``meta["run"]``).
_OLD_KEYS = ("dataset", "scaling", "digits", "validation", "init", "init_scale", "loss", "output", "batch_size",
             "shuffle", "lr", "backend", "dtype", "seed")


def from_meta(meta: dict) -> Run:
    """The run a weights file (or checkpoint) records. Files from before the run specification carry flat
    keys instead: their run is rebuilt from those, with the split rule they were made under (``xpnet
    train --validation`` held out rows chosen with ``--seed``: ``split_seed`` = ``seed``)."""
    if "run" in meta:
        return Run.from_dict(meta["run"])
    flat = {k: meta[k] for k in _OLD_KEYS if meta.get(k) is not None}
    if "sizes" in meta:
        flat["layers"] = "-".join(map(str, meta["sizes"]))
    if meta.get("activations"):
        flat["activation"] = "/".join(meta["activations"])
    if flat.get("validation"):
        flat["split_seed"] = flat.get("seed", 0)
    if flat.get("output") == DEFAULT_OUTPUT.get(flat.get("loss", "cross-entropy")):
        flat["output"] = None  # the loss's own output: written out by the network's configuration
    return Run.from_flat(flat)


# -- the command line ----------------------------------------------------------------------------
#: The options of ``xpnet train`` and ``xpnet sweep`` (data_dir and the seed included).
COMMAND_FIELDS = tuple(k for k, o in OPTIONS.items() if o.flag)


def add_arguments(parser, names=COMMAND_FIELDS, lists: bool = False, defaults: dict | None = None) -> None:
    """Add the options of the fields ``names`` to ``parser``, one argument group per run group.

    ``lists``: the command is ``xpnet sweep`` -- sweepable options take comma-separated lists (parsed by
    :func:`from_args`), the others one value. Otherwise every option takes one value. ``defaults`` overrides
    a field's default (``None`` for "as saved" and the like); the help shows it."""
    defaults = defaults or {}
    by_group: dict[str, Any] = {}
    for name in names:
        opt, group = OPTIONS[name], FIELDS[name] or "run"
        target = by_group.get(group) or by_group.setdefault(group, parser.add_argument_group(f"{group} options"))
        default = defaults.get(name, _default(name))
        listed = lists and opt.sweep
        text = opt.help + ("; a list joined by ','" + (" or ranges like 0-4" if name == "seed" else "") if listed else "")
        if name in defaults and default is None:
            text += " (default: as saved)"
        elif default is not None:
            text += f" (default {default})"
        if opt.boolean:
            target.add_argument(opt.flag, dest=name, action=argparse.BooleanOptionalAction, default=default, help=text)
            continue
        kind = str if listed else one_value(opt.parse, SWEPT_FLAGS if lists else None, commas=name == "digits")
        target.add_argument(opt.flag, dest=name, type=kind, default=default, help=text,
                            choices=None if listed or opt.choices is None else opt.choices,
                            metavar=_metavar(opt) if opt.choices is None or listed else None)


def from_args(args, lists: bool = False, base: Run | None = None) -> Run:
    """The run (a grid with ``lists``) the parsed options describe; options the parser lacks keep
    ``base``'s values. A sweepable option's list is parsed here, with one-line errors."""
    values = {}
    for name, opt in OPTIONS.items():
        if opt.flag and hasattr(args, name):
            value = getattr(args, name)
            values[name] = _split(opt, value) if lists and opt.sweep and isinstance(value, str) else value
    return Run.from_flat(values, base)


def _default(name):
    group = FIELDS[name]
    cls = Run if group is None else GROUPS[group]
    f = next(f for f in fields(cls) if f.name == name)
    return f.default


def _metavar(opt: Option) -> str:
    return opt.metavar or opt.flag.lstrip("-").upper().replace("-", "_")


def one_value(parse, swept: str | None = None, commas: bool = False):
    """An argparse type taking one value, not a comma-separated list: ``swept`` (the sweep's list
    options) says the command is a sweep; ``commas`` lets a value hold commas (``--digits 3,9``)."""

    def one(text):
        if "," in text and not commas:
            if swept is None:
                raise argparse.ArgumentTypeError(f"takes one value, not a list ({text!r}); lists are for xpnet sweep")
            raise argparse.ArgumentTypeError(f"takes one value in a sweep, not a list ({text!r}); only {swept} "
                                             "take lists")
        return parse(text)

    one.__name__ = getattr(parse, "__name__", "value")  # argparse names it in "invalid int value"
    return one


#: The options of ``xpnet sweep`` that take lists, as its messages name them.
SWEPT_FLAGS = ", ".join(OPTIONS[k].flag for k in SWEPT)


def _split(opt: Option, text: str) -> list:
    """A comma-separated list of the option's values (seeds also as ranges such as ``0-4``)."""
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise ValidationError(f"{opt.flag} has an empty item: {text!r}")
    values = []
    for item in items:
        if opt.flag == "--seed" and not item.startswith("-"):  # a range; a negative seed is refused below
            first, dash, last = item.partition("-")
            try:
                low, high = int(first), int(last if dash else first)
            except ValueError:
                raise ValidationError(f"--seed takes integers and ranges like 0-7; got {item!r}") from None
            if high < low:
                raise ValidationError(f"--seed range {item!r} is empty")
            values += range(low, high + 1)
            continue
        try:
            values.append(opt.parse(item))
        except ValueError as exc:
            raise ValidationError(f"{opt.flag}: {exc}") from None
    return values


__all__ = ["Run", "Data", "Model", "Training", "Optimizer", "Placement", "Option", "SWEPT", "FIELDS", "OPTIONS",
           "grid", "expand", "add_arguments", "from_args", "one_value"]
