"""The run specification: one frozen, serialisable description of a training run, in groups.

A :class:`Run` holds a :class:`Data`, :class:`Model`, :class:`Training`, :class:`Optimizer` and
:class:`Placement` group and the ``seed``. It is what ``xpnet train`` builds from its options, what a
checkpoint and a weights file record (``meta["run"]``), what a sweep record holds (flattened: one key per
field, ``lr``, ``seed``, ``layers`` ...) and how ``xpnet bench`` names a network. Every field is declared
once, with its check and its command-line option (:class:`Option`); :mod:`xpnet.cli.options` builds the
argparse options of ``xpnet train`` and ``xpnet sweep`` from those declarations, and the run back.

A *grid* is a run whose sweepable fields (:data:`SWEPT`) may hold lists; :func:`expand` gives its runs,
in the order of :data:`SWEPT` (the first varies slowest).

>>> run = Run(optimizer=Optimizer(lr=0.1), seed=3)
>>> run.flat()["lr"], Run.from_flat(run.flat()) == run
(0.1, True)
>>> [r.seed for r in expand(grid(lr=[0.1, 0.01], seed=range(2)))]
[0, 1, 0, 1]
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
from dataclasses import dataclass, field, fields
from typing import Any, Callable, NamedTuple

from . import checks, datasets, optim, schedules
from .backends import DTYPES
from .datasets import DATASETS, SCALINGS, own, parse_digits
from .errors import ValidationError
from .functions import DEFAULT_OUTPUT, LOSSES, OUTPUTS, get_activation, head_for, hidden_activations
from .init import INITIALISERS

#: The fields a sweep may give lists for, in grid order (the first varies slowest).
SWEPT = ("lr", "seed", "init", "init_scale", "layers", "activation", "batch_size", "optimizer",
         *(name for name, users in optim.options().items() if users[0][1].network),
         "step_size", "gamma", "power_t", "patience", "min_delta", "early_stopping")


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
    #: A flag that only switches: ``store_true`` (``--nesterov``) or ``store_false`` (``--no-restore-best``).
    action: str | None = None
    #: The optimizers that use this option (empty: every one).
    optimizers: tuple = ()
    #: The schedules that use this option (empty: it is not a schedule's option).
    schedules: tuple = ()


def _option(default, flag=None, **kwargs):
    return field(default=default, metadata={"option": Option(flag, **kwargs)})


def _maybe(check):
    """``check`` for a field whose ``None`` means "the default"."""
    return lambda name, v: None if v is None else check(name, v)


#: Layers whose ends come from the data: ``in-32-32-out`` is the input size, two hidden layers of 32, the
#: class count (:func:`fit_layers`).
DATA_ENDS = ("in", "out")


def _layers(name, value) -> str:
    if isinstance(value, str) and (value.split("-")[0] == "in" or value.split("-")[-1] == "out"):
        parts = value.split("-")
        if parts[0] != "in" or parts[-1] != "out":
            raise ValidationError(f"layers leave both ends to the data ('in-32-32-out') or give both sizes "
                                  f"('784-32-32-10'); got {value!r}")
        if len(parts) > 2:
            checks.layers("-".join(["1", *parts[1:-1], "1"]))
        return value
    return "-".join(map(str, checks.layers(value)))


#: The training samples an own data set's default epochs add up to (MNIST's 3 epochs), and their bounds.
AUTO_SAMPLES, AUTO_EPOCHS = 180_000, (3, 200)


def auto_epochs(data: "Data", n_rows: int, epochs: int | None = None) -> int:
    """``epochs``, or where it is not given the default: 3 on the built-in data sets; on one's own data
    enough epochs for about :data:`AUTO_SAMPLES` samples, within :data:`AUTO_EPOCHS` (150 rows: 200)."""
    if epochs is not None:
        return epochs
    if data.sha256 is None or data.dataset == ARRAYS:
        return AUTO_EPOCHS[0]
    return int(min(max(-(-AUTO_SAMPLES // max(n_rows, 1)), AUTO_EPOCHS[0]), AUTO_EPOCHS[1]))


def fit_layers(layers: str, n_features: int, n_classes: int, loss: str = "cross-entropy") -> str:
    """``layers`` with the ends it leaves to the data (``in-32-32-out``) given: the data's feature count
    and class count (one output for two classes under the logistic loss); other layers as they are."""
    parts = str(layers).split("-")
    if parts[0] != DATA_ENDS[0]:
        return layers
    outputs = 1 if n_classes == 2 and loss == "logistic" else n_classes
    return "-".join([str(n_features), *parts[1:-1], str(outputs)])


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


#: The data set of a run whose data was given as arrays (``fit``): its ``sha256`` says which, when a
#: checkpoint needs to know.
ARRAYS = "arrays"


@dataclass(frozen=True)
class Data(_Group):
    """Which data: the data set, its scaling, a digit pair, the validation fraction and the seed that
    chooses the held-out rows (``split_seed``, independent of the run's ``seed``)."""

    dataset: str = _option("mnist", "--dataset", choices=DATASETS, help="data set")
    scaling: str = _option("auto", "--scale", check=_choice(SCALINGS), choices=SCALINGS,
                           help="feature scaling: auto (pixels 0..255 divided by 255, other features standardized "
                                "each with the training rows' mean and deviation), /255, per-image max, "
                                "standardize (one mean and deviation), or none")
    digits: str | None = _option(None, "--digits", check=_maybe(_digits), metavar="A,B",
                                 help="use two classes only, labelled 0 and 1 (e.g. 3,9)")
    validation: float | None = _option(None, "--validation", parse=float, metavar="FRACTION",
                                       check=_maybe(lambda n, v: checks.fraction("validation fraction", v)),
                                       help="hold out this fraction of the training set")
    split_seed: int = _option(0, "--split-seed", parse=int, check=checks.seed, metavar="S",
                              help="seed of the rows --validation holds out (the same in train and sweep)")
    data_dir: str | None = field(default=None, compare=False, metadata={"option": Option(
        "--data-dir", check=_maybe(_text), metavar="DIR", help="directory holding the IDX files ($XPNET_DATA, the package, the cache)")})
    file: str | None = field(default=None, compare=False, metadata={"option": Option(
        "--data", check=_maybe(_text), metavar="FILE",
        help="your own data instead of --dataset: a .npz (X, y, optionally X_test, y_test, classes), a CSV file "
             "(a label column and numeric features) or a folder of IDX files; its name and SHA-256 are recorded")})
    #: The SHA-256 of your own data (``file``), taken when the run is made: what the run was trained on.
    sha256: str | None = _option(None, check=_maybe(_text))

    def __post_init__(self):
        if self.file is not None and self.sha256 is None:
            if self.dataset != "mnist":
                raise ValidationError(f"give --data FILE (your own data) or --dataset {self.dataset}, not both")
            name, digest = own.identify(self.file)
            object.__setattr__(self, "dataset", name)
            object.__setattr__(self, "sha256", digest)
        elif self.sha256 is None and self.dataset != ARRAYS:
            checks.choice("dataset", self.dataset, DATASETS)
        if self.scaling == "auto" and self.sha256 is None:  # MNIST's pixels; fit's arrays, which it never scales
            object.__setattr__(self, "scaling", "none" if self.dataset == ARRAYS else "255")
        super().__post_init__()


@dataclass(frozen=True)
class Model(_Group):
    """The network: layer sizes, hidden activation(s), output/loss pair and initialisation."""

    layers: str = _option("in-32-32-out", "--layers", check=_layers, sweep=True,
                          help="layer sizes joined by '-'; 'in' and 'out' take the input size and the class count "
                               "from the data")
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
        if self.layers.startswith("in-"):
            raise ValidationError(f"layers {self.layers} take their input and output sizes from the data; give the "
                                  "sizes (e.g. 784-32-32-10) where there is no data")
        return checks.layers(self.layers)

    @property
    def hidden(self) -> list[int]:
        """The hidden layers' sizes (known before the data is)."""
        parts = self.layers.split("-")[1:-1]
        return [int(p) for p in parts]

    @property
    def activations(self) -> list[str]:
        """One activation name per hidden layer."""
        return [a.name for a in hidden_activations(self.activation, [1, *self.hidden, 1])]


def _threads(text: str):
    """``--threads``: ``auto`` (``None``) or a whole number."""
    return None if text == "auto" else int(text)


@dataclass(frozen=True)
class Training(_Group):
    """How the data is stepped through: epochs, batch size, shuffling, and how steps run (compiled
    epochs; samples per call of the per-sample kernel; JAX's scan unroll)."""

    epochs: int | None = _option(None, "--epochs", parse=int, check=_maybe(lambda n, v: checks.integer(n, v, 0)),
                                 metavar="N", help="epochs; 0 evaluates the untrained net (default: 3 on MNIST and "
                                 "Fashion-MNIST; on your own data about 180,000 samples' worth, 3 to 200 epochs)")
    batch_size: int = _option(1, "--batch-size", parse=int, check=lambda n, v: checks.integer(n, v, 1), sweep=True,
                              metavar="B",
                              help="samples per step; 1 is the textbook per-sample algorithm")
    shuffle: bool | None = _option(None, "--shuffle", check=_maybe(checks.flag), boolean=True,
                                   help="reshuffle every epoch (default: on for batch size > 1, off for 1)")
    compile: bool | None = _option(None, "--compile", check=_maybe(checks.flag), boolean=True,
                                   help="run each epoch as one compiled call (default: where the backend has a "
                                        "compiler: jax)")
    sample_chunk: int | None = _option(None, check=_maybe(lambda n, v: checks.integer(n, v, 1)))
    unroll: int = _option(1, check=lambda n, v: checks.integer(n, v, 1))
    threads: int | None = _option(None, "--threads", parse=_threads, check=_maybe(lambda n, v: checks.integer(n, v, 0)),
                                  metavar="N|auto",
                                  help="math-library threads while training (NumPy's BLAS, PyTorch on the CPU): N, "
                                       "or 0 for the library's own setting; auto (the default) is one thread for "
                                       "steps of at most 64 rows (per-sample training included), where one "
                                       "measures faster and a busy core costs least, the library's setting above")


def _at_least_one(name, value):
    return checks.integer(name, value, 1)


SCHEDULES = tuple(schedules.SCHEDULES)
#: The value a schedule's or early stopping's option takes when it is not given (an update rule's options
#: take their rule's defaults: :func:`xpnet.optim.default`).
DEFAULTS = {"gamma": 0.1, "power_t": 0.5, "patience": 10, "min_delta": 0.0}


def _rule_fields() -> list:
    """The fields of every registered update rule's options (:data:`xpnet.optim.RULES`), one per name: its
    check and help from the rules that have it, each rule's default said in the help."""
    out = []
    for name, users in optim.options().items():
        setting = users[0][1]
        rules = tuple(rule for rule, _ in users)
        helps: dict[str, list] = {}
        for rule, s in users:
            helps.setdefault(s.help, []).append(rule)
        text = "; ".join(f"{', '.join(named)}: {help}" for help, named in helps.items())
        if setting.switch:
            out.append((name, bool, _option(False, _flag(name), check=setting.check, action="store_true",
                                            optimizers=rules, network=False, help=text)))
            continue
        defaults = {}
        for rule, s in users:
            defaults.setdefault(s.default, []).append(rule)
        if len(defaults) == 1:
            text += f" (default {users[0][1].default:g})"
        else:
            text += " (default " + "; ".join(f"{d:g} for {', '.join(r)}" for d, r in defaults.items()) + ")"
        out.append((name, "float | None", _option(None, _flag(name), parse=float, check=_maybe(setting.check),
                                                  sweep=setting.network, network=setting.network, optimizers=rules,
                                                  metavar=setting.metavar, help=text)))
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _lr_help() -> str:
    defaults = {}
    for name, rule in optim.RULES.items():
        defaults.setdefault(rule.lr, []).append(name)
    return "learning rate (default " + "; ".join(f"{lr:g} for {', '.join(n)}" for lr, n in defaults.items()) + ")"


class _OptimizerGroup(_Group):
    """How the weights move: the update rule (a registered rule of :mod:`xpnet.optim`, torch.optim's
    semantics, weight decay on the weights only) with its options, the learning-rate schedule stepped at
    each epoch's end, and early stopping (Keras' semantics). An option left ``None`` takes its default
    (the rule's, or :data:`DEFAULTS`); an option no optimizer or schedule of the run uses is refused."""

    def __post_init__(self):
        super().__post_init__()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value != f.default and not self.uses(f.name):
                opt = f.metadata["option"]
                early = "" if self.early_stopping is None else f" --early-stopping {self.early_stopping}"
                raise ValidationError(f"{opt.flag} is an option of {_users(f.name)}; this run is --optimizer "
                                      f"{','.join(_values(self.optimizer))} --schedule {self.schedule}{early}")
        for kind in _values(self.optimizer):
            optim.get(kind).validate({name: _values(getattr(self, name)) for name in optim.get(kind).settings})
        kind = schedules.get(self.schedule)
        if kind.check is not None:
            kind.check({name: _values(getattr(self, name)) for name in kind.options})

    def uses(self, name: str) -> bool:
        """Whether this run uses option ``name`` (a grid: whether any of its optimizers does)."""
        opt = OPTIONS[name]
        if opt.optimizers and not set(_values(self.optimizer)) & set(opt.optimizers):
            return False
        if name == "restore_best":
            return self.early_stopping is not None
        if name == "min_delta":
            return self.schedule == "plateau" or self.early_stopping is not None
        return not opt.schedules or self.schedule in opt.schedules

    @property
    def plain(self) -> bool:
        """Plain SGD: no momentum, no weight decay (what the peers without optimizers train with)."""
        o = self.resolved()
        return o["optimizer"] == "sgd" and not o["momentum"] and not o["weight_decay"]

    def resolved(self) -> dict:
        """Every field with its default filled in where the run uses it (the rule's, :data:`DEFAULTS`),
        ``None`` where it does not (an adam run has no momentum): what records and the update rule see."""
        out = {}
        rule = optim.get(self.optimizer)
        for f in fields(self):
            value = getattr(self, f.name)
            if not self.uses(f.name):
                out[f.name] = f.default if isinstance(f.default, bool) else None
            elif value is None and (f.name == "lr" or f.name in rule.settings):
                out[f.name] = optim.default(f.name, self.optimizer)
            elif value is None and f.name in DEFAULTS:
                out[f.name] = DEFAULTS[f.name]
            else:
                out[f.name] = value
        return out


Optimizer = dataclasses.make_dataclass("Optimizer", [
    ("optimizer", str, _option("sgd", "--optimizer", check=_choice(optim.RULES), sweep=True,
                               help="update rule, as torch.optim: " + ", ".join(optim.RULES))),
    ("lr", "float | None", _option(None, "--lr", parse=float, check=_maybe(checks.positive), sweep=True, network=True,
                                   help=_lr_help())),
    *_rule_fields(),
    ("schedule", str, _option("constant", "--schedule", check=_choice(SCHEDULES), choices=SCHEDULES,
                              help="learning rate per epoch: " + ", ".join(
                                  f"{k.name} ({k.help})" for k in schedules.SCHEDULES.values()))),
    ("step_size", "int | None", _option(None, "--step-size", parse=int, check=_maybe(_at_least_one), sweep=True,
                                        network=True, schedules=schedules.users("step_size"), metavar="N", help="step: epochs per decay")),
    ("gamma", "float | None", _option(None, "--gamma", parse=float, check=_maybe(checks.positive), sweep=True,
                                      network=True, schedules=schedules.users("gamma"),
                                      help="step, exponential, plateau: the factor of each decay (default 0.1; "
                                           "exponential needs it)")),
    ("power_t", "float | None", _option(None, "--power-t", parse=float, check=_maybe(checks.nonnegative), sweep=True,
                                        network=True, schedules=schedules.users("power_t"),
                                        help="invscaling: the power (default 0.5)")),
    ("patience", "int | None", _option(None, "--patience", parse=int, check=_maybe(_at_least_one), sweep=True,
                                       network=True, schedules=schedules.users("patience"),
                                       help="plateau: epochs without improvement before the rate drops (default 10)")),
    ("min_delta", "float | None", _option(None, "--min-delta", parse=float, check=_maybe(checks.nonnegative), sweep=True,
                                          network=True, schedules=schedules.users("min_delta"),
                                          help="plateau and --early-stopping: the least decrease that counts as an "
                                               "improvement (default 0)")),
    ("early_stopping", "int | None", _option(None, "--early-stopping", parse=int, check=_maybe(_at_least_one),
                                             sweep=True, network=True, metavar="PATIENCE",
                                             help="stop when the validation loss (--validation) or else the training "
                                                  "loss has not improved by --min-delta for PATIENCE epochs")),
    ("restore_best", bool, _option(True, "--no-restore-best", check=checks.flag, action="store_false",
                                   help="with --early-stopping: keep the last epoch's weights (without it the best "
                                        "epoch's are kept)")),
], bases=(_OptimizerGroup,), frozen=True, namespace={"__module__": __name__, "__doc__": _OptimizerGroup.__doc__})


def _users(name: str) -> str:
    """Who an option belongs to, as a message says it."""
    opt = OPTIONS[name]
    if opt.optimizers:
        return f"--optimizer {', '.join(opt.optimizers)}"
    if name == "restore_best":
        return "--early-stopping"
    if name == "min_delta":
        return "--schedule plateau and --early-stopping"
    return " and ".join(f"--schedule {s}" for s in opt.schedules)


def _values(field) -> list:
    """A field's values: a grid axis, or one value."""
    return field if isinstance(field, list) else [field]


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
            if not model.layers.startswith("in-"):  # else once the data gives the output size
                head_for(model.loss, model.output, model.sizes[-1])
            hidden_activations(model.activation, [1, *model.hidden, 1])

    # -- flat names ---------------------------------------------------------------------------------
    def flat(self, resolved: bool = False) -> dict:
        """Every field by its own name (``lr``, ``seed``, ``layers`` ...), JSON-ready; ``resolved``: the
        optimizer's defaults filled in (:meth:`Optimizer.resolved`)."""
        out = {}
        for group in GROUPS:
            out.update(dataclasses.asdict(getattr(self, group)))
        if resolved:
            out.update(self.optimizer.resolved())
        out["seed"] = self.seed
        return out

    def record(self) -> dict:
        """The resolved :meth:`flat`, without what does not describe the run (where the data files are):
        what a sweep record holds, and what two runs are compared by."""
        return {k: v for k, v in self.flat(resolved=True).items() if k not in UNCOMPARED}

    @classmethod
    def from_flat(cls, values: dict, base: "Run | None" = None) -> "Run":
        """The run with these flat fields (others: ``base``'s, or the defaults); unknown keys are ignored,
        so a sweep record or a weights file's ``meta`` gives its run."""
        return (base or cls()).replace(**{k: v for k, v in values.items() if k in FIELDS})

    def fitted(self, n_features: int, n_classes: int, n_rows: int) -> "Run":
        """The run (or grid) with what it leaves to the data given: the layer ends (:func:`fit_layers`)
        and the epochs (:func:`auto_epochs`)."""
        layers = self.model.layers
        fit = [fit_layers(l, n_features, n_classes, self.model.loss) for l in
               (layers if isinstance(layers, list) else [layers])]
        return self.replace(layers=fit if isinstance(layers, list) else fit[0],
                            epochs=auto_epochs(self.data, n_rows, self.training.epochs))

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

    def for_network(self, seed: int, optimizer: "Optimizer") -> "Run":
        """This run with another seed and optimizer (checked when it was built), the rest not checked
        again: a stack's K networks make K runs at every ``fit`` call."""
        run = copy.copy(self)
        object.__setattr__(run, "seed", checks.seed("seed", seed))
        object.__setattr__(run, "optimizer", optimizer)
        return run

    def to_dict(self) -> dict:
        """The groups as nested dicts (what a weights file records)."""
        return {**{g: dataclasses.asdict(getattr(self, g)) for g in GROUPS}, "seed": self.seed}

    @classmethod
    def from_dict(cls, values: dict) -> "Run":
        if not isinstance(values, dict) or not all(isinstance(values.get(g, {}), dict) for g in GROUPS):
            raise ValidationError(f"not a run specification (a JSON object of {', '.join(GROUPS)}); got {values!r:.60}")
        try:
            groups = {g: GROUPS[g](**values.get(g, {})) for g in GROUPS}
            return cls(**groups, seed=values.get("seed", 0))
        except TypeError as exc:
            raise ValidationError(f"not a run specification ({exc})") from None

    # -- grids --------------------------------------------------------------------------------------
    def is_grid(self) -> bool:
        return isinstance(self.seed, list) or any(isinstance(getattr(getattr(self, g), f.name), list)
                                                  for g, cls in GROUPS.items() for f in _FIELDS_OF[cls])

    def stack_key(self) -> tuple:
        """Runs with the same key can train as networks of one stack: they differ only in fields the
        networks of a stack may differ in (seed, initialisation, the optimizer's numbers)."""
        return tuple((k, v) for k, v in self.record().items() if not OPTIONS[k].network)

    def differences(self, other: "Run", ignore=()) -> list[tuple[str, Any, Any]]:
        """``(name, this value, other's value)`` for each field whose resolved value differs."""
        a, b = self.record(), other.record()
        return [(k, a[k], b[k]) for k in a if a[k] != b[k] and k not in ignore]


_FIELDS_OF = {cls: fields(cls) for cls in GROUPS.values()}
#: Flat field name -> its group (``None`` for the seed).
FIELDS: dict[str, str | None] = {f.name: g for g, cls in GROUPS.items() for f in fields(cls)} | {"seed": None}
#: Flat field name -> its :class:`Option`.
OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for cls in (*GROUPS.values(), Run) for f in fields(cls)
                              if "option" in f.metadata}
#: Fields that say where, not what: never compared, never in records.
UNCOMPARED = ("data_dir", "file")
#: What a resumed run may change: how many epochs, and how and where its steps run.
RESUMABLE = ("epochs", "compile", "sample_chunk", "unroll", "threads", "backend", "device")


def identity(runs) -> dict:
    """What identifies the training of ``runs`` (one run, or a stack's networks) for a checkpoint that
    resumes only the same: the run's :meth:`~Run.record`, a stack's settings that differ between its
    networks as one list each."""
    records = [r.record() for r in runs]
    if len(records) == 1:
        return records[0]
    return {k: v if all(r[k] == v for r in records) else [r[k] for r in records] for k, v in records[0].items()}


def grid(**values) -> Run:
    """A grid from flat fields: a list, tuple, range or array gives the values of a sweepable field
    (a single ``layers`` or ``activation`` is a string)."""
    return Run.from_flat({k: list(v) if isinstance(v, checks.SEQUENCES) else v for k, v in values.items()})


def expand(run: Run, notes: list | None = None) -> list[Run]:
    """Every run of a grid, the fields of :data:`SWEPT` varying in that order (the first slowest). An
    option applies to the runs whose optimizer uses it: ``--optimizer sgd,adam --momentum 0,0.9`` gives
    sgd at both momenta and adam once; ``notes`` receives one line saying so for each such option."""
    flat = run.flat()
    axes = [(k, flat[k]) for k in SWEPT if isinstance(flat[k], list)]
    if not axes:
        return [run]
    names = [k for k, _ in axes]
    # An optimizer's option given once (not a list) applies to the runs whose optimizer has it.
    given = [k for k, o in OPTIONS.items() if o.optimizers and k not in names and flat.get(k) is not None
             and flat.get(k) is not False]
    runs, dropped = [], {}
    for combo in itertools.product(*(v for _, v in axes)):
        values = dict(zip(names, combo))
        kind = values.get("optimizer", flat["optimizer"])
        for name in (*names, *given):
            if OPTIONS[name].optimizers and kind not in OPTIONS[name].optimizers:
                dropped.setdefault((kind, name), len(_values(flat[name])))
                values[name] = default_of(name)
        runs.append(run.replace(**values))
    distinct = list(dict.fromkeys(runs))
    if notes is not None:
        for (kind, name), count in dropped.items():
            notes.append(f"--optimizer {kind} has no {OPTIONS[name].flag}: it trains once, not once per each of its "
                         f"{count} values" if count > 1 else f"--optimizer {kind} has no {OPTIONS[name].flag}: its runs "
                         "train without it")
    return distinct


def default_of(name: str):
    """The default of the flat field ``name``."""
    group = FIELDS[name]
    cls = Run if group is None else GROUPS[group]
    return next(f for f in fields(cls) if f.name == name).default


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
    """A run's data as host arrays: training, test, the held-out ``validation`` pair (or ``None``) and the
    class names."""

    X: Any
    y: Any
    X_test: Any
    y_test: Any
    validation: tuple | None = None
    classes: list | None = None
    note: str | None = None
    #: What scaled the features (:func:`xpnet.datasets.choose_scaling`): recorded with the weights.
    scaling: dict | None = None
    #: The file's rows held out as the test set (own data without a test split of its own), else ``None``.
    held_out: list | None = None
    #: The features' shape as images, where they are images (``None`` for a table of features).
    image_shape: tuple | None = None


def split(arrays: Arrays, data: Data) -> Arrays:
    """``arrays`` with ``data.validation`` of the training rows held out, chosen by ``data.split_seed``."""
    if not data.validation:
        return arrays
    X, y, X_val, y_val = datasets.validation_split(arrays.X, arrays.y, data.validation, data.split_seed)
    return Arrays(X, y, arrays.X_test, arrays.y_test, (X_val, y_val), *arrays[5:])


def load_data(data: Data, dtype="float64", download: bool = True, progress: bool | None = None,
              scaling: dict | None = None) -> Arrays:
    """The data ``data`` describes: loaded (own data without a test split: its held-out rows as the test
    set), scaled, a digit pair, the validation rows held out (host arrays of ``dtype``); ``scaling`` is
    what a weights file recorded of its training data's scaling, used instead of choosing anew. Cached,
    so a Dask worker loads each data set once."""
    recorded = None if scaling is None else json.dumps(scaling, sort_keys=True)
    return _load(data, data.data_dir, data.file, dtype, download, progress, recorded)


@functools.lru_cache(maxsize=4)
def _load(data, data_dir, file, dtype, download, progress, recorded):
    if data.sha256 is None:
        loaded = datasets.load(data.dataset, data_dir, allow_download=download, progress=progress)
    elif file is None:
        raise ValidationError(f"this run was made on your own data {data.dataset} (sha256 {data.sha256[:12]}...): "
                              "give --data FILE")
    else:
        loaded = own.load(file, data.sha256, data.split_seed)
        datasets.check_scaling(loaded, data.scaling)
    scaling = datasets.choose_scaling(loaded, data.scaling, None if recorded is None else json.loads(recorded))
    X, y, X_test, y_test = datasets.prepare(loaded, scaling, data.digits, dtype=dtype)
    classes = [loaded.classes[d] for d in parse_digits(data.digits)] if data.digits else loaded.classes
    held = None if loaded.held_out is None else loaded.held_out.tolist()
    return split(Arrays(X, y, X_test, y_test, classes=classes, note=loaded.note, scaling=scaling, held_out=held,
                        image_shape=loaded.image_shape), data)


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


__all__ = ["Run", "Data", "Model", "Training", "Optimizer", "Placement", "Option", "SWEPT", "FIELDS", "OPTIONS",
           "grid", "expand", "fit_layers"]
