"""What happens at an epoch's end: each network's learning-rate schedule and early stopping, the two hooks
of the epoch loop that decide (:class:`LearningRates`, :class:`EarlyStopping`).

Both are per network and live on the host; what they carry from one epoch to the next is a small dict
(``state``) that the run's state (:class:`xpnet.state.TrainState`) holds and every checkpoint writes, so
a resumed run steps them on exactly where the interrupted one left them (docs/math.md has the rules).

A schedule is registered once (:data:`SCHEDULES`, :func:`register`): its name, the options it reads, its
rate for an epoch in closed form (``torch.optim.lr_scheduler``'s semantics), the checks of its options;
the run specification, the command line and the help take the names and options from here, and an
unknown name is a one-line error everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import checks
from .errors import ValidationError
from .hooks import Hook


@dataclass(frozen=True)
class Kind:
    """A learning-rate schedule: ``rate(o, e, epochs, samples, state)`` is the rate of 0-based epoch ``e``
    for resolved optimizer settings ``o`` in a run of ``epochs`` epochs over ``samples`` rows (``state``:
    what the schedule carries between epochs, the plateau's rate); ``options`` the settings it reads;
    ``check(values)`` refuses settings that do not fit it (``values``: each option's values, a list)."""

    name: str
    rate: Callable
    help: str
    options: tuple = ()
    check: Callable | None = None


#: Every schedule by name, in the order registered (the order help and docs list them in).
SCHEDULES: dict[str, Kind] = {}


def register(name, help, options=(), check=None):
    """Decorator: ``rate`` becomes the schedule ``name``."""

    def add(rate):
        if name in SCHEDULES:
            raise ValueError(f"schedule {name!r} is registered already")
        SCHEDULES[name] = Kind(name, rate, help, tuple(options), check)
        return rate

    return add


def get(name) -> Kind:
    """The schedule called ``name``; a one-line error naming the known ones otherwise (never a fallback)."""
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValidationError(f"schedule must be one of {', '.join(SCHEDULES)}; got {name!r}"
                              f"{checks.nearest(name, SCHEDULES)}")
    return SCHEDULES[name]


def users(option: str) -> tuple:
    """The schedules that read ``option``."""
    return tuple(name for name, kind in SCHEDULES.items() if option in kind.options)


def _needs(option, flag, what):
    def check(values):
        if any(v is None for v in values[option]):
            raise ValidationError(f"--schedule {what} needs {flag}")
    return check


def _plateau_check(values):
    if any(g is not None and g >= 1 for g in values["gamma"]):
        raise ValidationError(f"--schedule plateau needs --gamma < 1 (as ReduceLROnPlateau); got "
                              f"{', '.join(str(g) for g in values['gamma'])}")


@register("constant", "the same rate every epoch")
def _constant(o, e, epochs, samples, state):
    return state["lr"]


@register("step", "StepLR: times --gamma every --step-size epochs", ("step_size", "gamma"),
          _needs("step_size", "--step-size N (epochs per decay)", "step"))
def _step(o, e, epochs, samples, state):
    return o["lr"] * o["gamma"] ** (e // o["step_size"])


@register("exponential", "ExponentialLR: times --gamma every epoch", ("gamma",),
          _needs("gamma", "--gamma (the factor per epoch)", "exponential"))
def _exponential(o, e, epochs, samples, state):
    return o["lr"] * o["gamma"] ** e


@register("cosine", "CosineAnnealingLR over --epochs")
def _cosine(o, e, epochs, samples, state):
    return o["lr"] * (1.0 + math.cos(math.pi * e / epochs)) / 2.0


@register("invscaling", "lr / (t + 1)^power_t, t samples seen", ("power_t",))
def _invscaling(o, e, epochs, samples, state):
    return o["lr"] / float(e * samples + 1) ** o["power_t"]


@register("plateau", "ReduceLROnPlateau", ("gamma", "patience", "min_delta"), _plateau_check)
def _plateau(o, e, epochs, samples, state):
    return state["lr"]  # stepped by Schedule.end


class Schedule:
    """One network's learning rate per epoch, stepped at each epoch's end (``torch.optim.lr_scheduler``'s
    semantics, in closed form): the registered schedules above; ``plateau`` is
    ``ReduceLROnPlateau(mode="min", factor=gamma, patience, threshold=min_delta, threshold_mode="abs",
    cooldown=0)``: the rate drops when the epochs without improvement exceed ``patience``. ``state`` holds
    what a checkpoint keeps (the plateau's count, best and rate)."""

    def __init__(self, optimizer: dict, epochs: int, samples: int, state: dict | None = None):
        self.o, self.epochs, self.samples = optimizer, epochs, samples
        self.kind = get(optimizer["schedule"])
        self.state = state if state is not None else {"lr": optimizer["lr"], "best": math.inf, "bad": 0}

    def lr(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (1-based)."""
        return self.kind.rate(self.o, epoch - 1, self.epochs, self.samples, self.state)

    def end(self, monitor: float) -> None:
        """After an epoch whose monitored loss was ``monitor``: the plateau's bookkeeping."""
        if self.kind.name != "plateau":
            return
        state = self.state
        if monitor < state["best"] - self.o["min_delta"]:
            state["best"], state["bad"] = monitor, 0
        else:
            state["bad"] += 1
        if state["bad"] > self.o["patience"]:
            new = state["lr"] * self.o["gamma"]
            if state["lr"] - new > 1e-8:  # ReduceLROnPlateau's eps
                state["lr"] = new
            state["bad"] = 0

    def check(self, first: int, dtype: str) -> None:
        """Refuse, before any work, a schedule whose learning rate for an epoch from ``first`` on would
        overflow or vanish in ``dtype`` (``--power-t 100``, ``--gamma 1e10``): every epoch's closed-form rate
        must be a normal, finite number there. (The plateau's rate only falls, and stops falling at 1e-8.)"""
        tiny, largest = float(np.finfo(dtype).tiny), float(np.finfo(dtype).max)
        for epoch in range(first, self.epochs + 1):
            try:
                lr = self.lr(epoch)
            except OverflowError:  # a power too large for a float: the denominator's (invscaling) or the rate's
                lr = 0.0 if self.kind.name == "invscaling" or self.o.get("gamma", 1.0) < 1 else math.inf
            if not tiny <= lr <= largest:
                what = "overflows" if lr > largest else "vanishes (underflows to 0)"
                raise ValidationError(f"the learning rate of epoch {epoch} {what} in {dtype} with --schedule "
                                      f"{self.kind.name} ({_options(self.o)}); choose milder values")


def check(optimizers, epochs: int, samples: int, dtype: str, first: int = 1) -> None:
    """:meth:`Schedule.check` for each of ``optimizers`` (:class:`xpnet.spec.Optimizer`), for a run of
    ``epochs`` over ``samples`` rows in ``dtype`` from epoch ``first`` on: what the session and a sweep
    refuse before any work."""
    for o in set(optimizers):
        Schedule(o.resolved(), epochs, samples).check(first, dtype)


def _options(o: dict) -> str:
    return ", ".join(f"{k} {o[k]:g}" for k in ("lr", "gamma", "step_size", "power_t") if o.get(k) is not None)


class EarlyStop:
    """Keras' ``EarlyStopping(monitor, min_delta, patience, restore_best_weights)`` for one network: an
    epoch improves when its monitored loss is below the best by more than ``min_delta``; training stops
    when ``patience`` epochs in a row have not improved (never after the first epoch); the best epoch's
    weights are restored at the end of training when ``restore`` (whether it stopped or not). ``state``
    holds the counters, ``best_weights`` the best epoch's weights (what a checkpoint keeps)."""

    def __init__(self, patience: int, min_delta: float, restore: bool, state: dict | None = None, best=None):
        self.patience, self.min_delta, self.restore = patience, min_delta, restore
        self.state = state if state is not None else {"wait": 0, "best": None, "best_epoch": 0, "stopped": 0}
        self.best_weights = best

    def end(self, epoch0: int, current: float, weights) -> bool:
        """After epoch ``epoch0`` (0-based, as Keras counts) with monitored loss ``current``; ``weights()``
        copies the network's weights. Whether to stop."""
        s = self.state
        if self.restore and self.best_weights is None:  # the first epoch's weights are the best so far
            self.best_weights, s["best_epoch"] = weights(), epoch0
        s["wait"] += 1
        if s["best"] is None or current + self.min_delta < s["best"]:
            s["best"], s["best_epoch"], s["wait"] = current, epoch0, 0
            if self.restore:
                self.best_weights = weights()
            return False
        if s["wait"] >= self.patience and epoch0 > 0:
            s["stopped"] = epoch0
            return True
        return False


def monitored(record: dict) -> float:
    """The loss a network's schedule and early stopping watch: the validation loss where a validation set
    is scored, else the training loss."""
    return record["val_loss"] if "val_loss" in record else record["train_loss"]


# -- the hooks -------------------------------------------------------------------------------------
class LearningRates(Hook):
    """Each network's schedule as a hook: the epoch's rates at its beginning (``loop.lrs``), the plateau's
    bookkeeping at its end. ``state``: each schedule's counters, what the run's state keeps."""

    decides = True

    def __init__(self, optimizers, epochs: int, samples: int, states):
        self.schedules = [Schedule(o, epochs, samples, s) for o, s in zip(optimizers, states)]

    @property
    def state(self) -> list:
        return [schedule.state for schedule in self.schedules]

    def on_epoch_begin(self, loop, epoch):
        loop.lrs = [schedule.lr(epoch) for schedule in self.schedules]

    def on_epoch_end(self, loop, epoch, records):
        for schedule, record in zip(self.schedules, records):
            if record is not None:
                schedule.end(monitored(record))


class EarlyStopping(Hook):
    """Each network's early stopping as a hook: at an epoch's end a network that has not improved for its
    patience stops (``loop.stop``: one network ends training, a stack's is frozen with its best weights);
    at training's end every network that keeps its best weights gets them back (``loop.restore``).
    ``state`` and ``best``: the counters and best weights, what the run's state keeps."""

    decides = True

    def __init__(self, optimizers, states, best):
        self.early = [EarlyStop(o["early_stopping"], o["min_delta"], o["restore_best"], s, b)
                      if o["early_stopping"] else None for o, s, b in zip(optimizers, states, best)]

    @property
    def state(self) -> list:
        return [None if e is None else e.state for e in self.early]

    @property
    def best(self) -> list:
        return [None if e is None else e.best_weights for e in self.early]

    def on_epoch_end(self, loop, epoch, records):
        for k, (early, record) in enumerate(zip(self.early, records)):
            if early is not None and record is not None and early.end(epoch - 1, monitored(record),
                                                                      lambda: loop.weights_of(k)):
                record["stopped"] = True
                loop.stop(k, epoch, early.best_weights if early.restore else None)

    def on_train_end(self, loop):
        for k, early in enumerate(self.early):
            if early is not None and early.restore and early.best_weights is not None and not loop.diverged(k):
                loop.restore(k, early.best_weights)
