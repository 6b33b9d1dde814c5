"""What happens at an epoch's end: each network's learning-rate schedule and early stopping.

Both are per network and live on the host; what they carry from one epoch to the next is a small dict
(``state``) that the run's state (:class:`xpnet.state.TrainState`) holds and every checkpoint writes, so
a resumed run steps them on exactly where the interrupted one left them (docs/math.md has the rules).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ValidationError


class Schedule:
    """One network's learning rate per epoch, stepped at each epoch's end (``torch.optim.lr_scheduler``'s
    semantics, in closed form): ``constant``; ``step`` (``StepLR``: times ``gamma`` every ``step_size``
    epochs); ``exponential`` (``ExponentialLR``); ``cosine`` (``CosineAnnealingLR`` with ``T_max`` the run's
    epochs, ``eta_min`` 0); ``invscaling`` (``lr0 / (t + 1)^power_t``, t the samples seen before the epoch);
    ``plateau`` (``ReduceLROnPlateau(mode="min", factor=gamma, patience, threshold=min_delta,
    threshold_mode="abs", cooldown=0)``: the rate drops when the epochs without improvement exceed
    ``patience``). ``state`` holds what a checkpoint keeps (the plateau's count, best and rate)."""

    def __init__(self, optimizer: dict, epochs: int, samples: int, state: dict | None = None):
        self.o, self.epochs, self.samples = optimizer, epochs, samples
        self.state = state if state is not None else {"lr": optimizer["lr"], "best": math.inf, "bad": 0}

    def lr(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (1-based)."""
        o, e = self.o, epoch - 1
        kind = o["schedule"]
        if kind == "step":
            return o["lr"] * o["gamma"] ** (e // o["step_size"])
        if kind == "exponential":
            return o["lr"] * o["gamma"] ** e
        if kind == "cosine":
            return o["lr"] * (1.0 + math.cos(math.pi * e / self.epochs)) / 2.0
        if kind == "invscaling":
            return o["lr"] / float(e * self.samples + 1) ** o["power_t"]
        return self.state["lr"]  # constant, and the plateau's current rate

    def end(self, monitor: float) -> None:
        """After an epoch whose monitored loss was ``monitor``: the plateau's bookkeeping."""
        if self.o["schedule"] != "plateau":
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
                lr = 0.0 if self.o["schedule"] == "invscaling" or self.o.get("gamma", 1.0) < 1 else math.inf
            if not tiny <= lr <= largest:
                what = "overflows" if lr > largest else "vanishes (underflows to 0)"
                raise ValidationError(f"the learning rate of epoch {epoch} {what} in {dtype} with --schedule "
                                      f"{self.o['schedule']} ({_options(self.o)}); choose milder values")


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
