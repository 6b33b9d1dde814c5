"""What every update rule is made of: :class:`Rule`, its options (:class:`Setting`, with the options
several rules share), the registry (:data:`RULES`, :func:`register`) and small helpers of the rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .. import checks


@dataclass(frozen=True)
class Setting:
    """One option of an update rule beyond its learning rate.

    ``check(name, value)`` accepts a value (normalising it) or raises a one-line
    :class:`~xpnet.errors.ValidationError`; ``network``: the networks of one stack may differ in it (a
    hyperparameter the update reads per network, which a sweep may list); otherwise it shapes the rule
    itself (``nesterov``), one value per stack. ``switch``: a flag that is off by default
    (``--nesterov``)."""

    default: Any
    help: str
    check: Callable
    network: bool = True
    switch: bool = False
    metavar: str | None = None


#: Options several rules share, each rule giving its own default and help.
MOMENTUM = Setting(0.0, "momentum", checks.nonnegative, metavar="M")
WEIGHT_DECAY = Setting(0.0, "L2 on the weights, not the biases, coupled (added to the gradient)", checks.nonnegative,
                       metavar="L")
EPS = Setting(1e-8, "added to the denominator", checks.positive)


class Rule:
    """What every registered rule has (:mod:`xpnet.optim` says what each part does); subclasses are frozen
    dataclasses whose fields say how the rule is built (saved and restored by name)."""

    name: str = ""
    lr: float = 0.0
    settings: dict = {}
    #: Adapts its steps to the gradients' size (its learning rates live near 1e-3, not near 0.1).
    adaptive: bool = True
    defers_first_layer = False

    @classmethod
    def hyper_names(cls) -> tuple:
        """What ``update`` reads from ``hyper``: the learning rate and the per-network settings."""
        return ("lr", *(k for k, s in cls.settings.items() if s.network))

    @classmethod
    def build(cls, optimizers) -> "Rule":
        raise NotImplementedError

    @classmethod
    def validate(cls, values: dict) -> None:
        """One-line errors for settings that do not fit together (``values``: each option's values, a
        list: one, or a grid's)."""

    def scale(self, hyper):
        return 1.0

    def first_layer(self, xp, X, param0, state0, hyper):
        raise NotImplementedError(f"{self.name} does not defer the first layer")

    def torch(self, torch, groups, o, **how):
        raise NotImplementedError

    def optax(self, optax, o, weights):
        raise NotImplementedError


#: Every rule by name, in the order registered (the order help and docs list them in).
RULES: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` (a frozen dataclass subclassing :class:`Rule`) a rule by its ``name``."""
    if not cls.name or cls.name in RULES:
        raise ValueError(f"a rule needs a name of its own; got {cls.name!r}")
    for name, setting in cls.settings.items():
        known = next((r.settings[name] for r in RULES.values() if name in r.settings), None)
        if known is not None and (known.check, known.network, known.switch) != (setting.check, setting.network, setting.switch):
            raise ValueError(f"{cls.name}: option {name!r} is checked or shared differently by another rule")
    RULES[cls.name] = cls
    return cls


def device_of(x):
    from array_api_compat import device

    return device(x)


def step_count(xp, W):
    """A step count per network, zero: shape (1, 1), or (K, 1, 1) for a stack."""
    return xp.zeros((*W.shape[:-2], 1, 1), dtype=W.dtype, device=device_of(W))


def optax_decayed(optax, rule, decay, weights):
    """optax's ``rule`` after coupled weight decay on the weights only (``weights``: the mask)."""
    return optax.chain(optax.add_decayed_weights(decay, mask=weights), rule) if decay else rule
