"""Update rules, each one registered object: how the weights move, given their gradients.

A rule is a frozen dataclass in a module of its own (``xpnet/rules/<name>.py``), registered with
:func:`~xpnet.rules.base.register`, that says everything about itself in one place:

- ``lr``: its default learning rate; ``settings``: its other options (:class:`Setting`: default, check,
  help, whether the networks of a stack -- and so a sweep -- may differ in it); the run specification
  (:mod:`xpnet.spec`), the command line, sweeps, ``fit``, the benchmark and the peers take every option,
  default and check from here;
- ``build(optimizers)``: the rule that serves a run's networks (their resolved settings);
- its maths, pure functions of ``xp`` with their state, written once for one network and a stack:
  ``scale(hyper)`` (a factor the backward pass may fold into its deltas, so that the gradients it returns
  are already plain SGD's steps -- or 1); ``init_state(xp, params)`` (one entry per layer, ``()`` where
  there is none, arrays on the parameters' device); ``update(xp, params, grads, state, hyper, inplace)``
  -> ``(params, state)``; and, where ``defers_first_layer``, ``first_layer(xp, X, param0, state0, hyper)``
  for per-sample training by chunks (:func:`xpnet.kernels.sample_steps`);
- its references: ``torch(torch, groups, o, **how)`` builds the ``torch.optim`` optimizer with the same
  semantics (the oracle tests' and the PyTorch peers'), ``optax(optax, o, weights)`` optax's
  transformation (the JAX peer's); the caller passes the library in (only the peers import them).

Its state is saved and restored by the run's state (:mod:`xpnet.state`): the rule's fields by name
(:func:`rule_from` reads them back) and its arrays, checked against ``init_state``'s shapes.

``hyper`` maps each hyperparameter to a Python float (one network, stepped eagerly), a 0-d array (one
network inside a compiled epoch: traced, not baked in) or a (K, 1, 1) array (a stack: one per network).
The rules follow ``torch.optim`` except that weight decay applies to the weights, not the biases
(docs/math.md has the update rules; the learning-rate schedules and early stopping are
:mod:`xpnet.schedules`; the scikit-learn estimators' own rules live beside them, in :mod:`xpnet.sklearn`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import checks
from .errors import ValidationError
from .rules import RULES, SGD, Adagrad, Adam, AdamW, RMSprop, Rule, Setting, register


def get(name) -> type:
    """The rule called ``name``; a one-line error naming the known ones otherwise (never a fallback)."""
    if name not in RULES:
        raise ValidationError(f"optimizer must be one of {', '.join(RULES)}; got {name!r}{checks.nearest(name, RULES)}")
    return RULES[name]


def options() -> dict[str, list[tuple[str, Setting]]]:
    """Every option of every rule: name -> ``[(rule name, its Setting)]``, in registration order."""
    out: dict[str, list] = {}
    for rule in RULES.values():
        for name, setting in rule.settings.items():
            out.setdefault(name, []).append((rule.name, setting))
    return out


def default(name: str, optimizer: str):
    """The default of option ``name`` (``lr`` included) for rule ``optimizer``."""
    rule = get(optimizer)
    return rule.lr if name == "lr" else rule.settings[name].default


def rule_for(optimizers) -> Rule:
    """The one rule every network of a run uses, from their resolved settings (dicts of
    :meth:`xpnet.spec.Optimizer.resolved`): one kind, and the same value of each option that shapes the
    rule itself (a stack holds one rule)."""
    kinds = {o["optimizer"] for o in optimizers}
    if len(kinds) > 1:
        raise ValidationError(f"the networks of one stack share their optimizer; got {sorted(kinds)}")
    rule = get(kinds.pop())
    for name, setting in rule.settings.items():
        if not setting.network and len({o[name] for o in optimizers}) > 1:
            raise ValidationError(f"the networks of one stack share their optimizer's {name}; got "
                                  f"{sorted({o[name] for o in optimizers})}")
    return rule.build(optimizers)


def rule_from(record: dict) -> Rule:
    """The rule a checkpoint recorded (``{"rule": name, **its fields}``); ``ValueError`` or ``TypeError``
    for a record that names no registered rule or fields it lacks or mistypes."""
    name = record.get("rule")
    if name not in RULES:
        raise ValueError(f"unknown update rule {name!r}")
    cls = RULES[name]
    values = {k: v for k, v in record.items() if k not in ("rule", "layers")}
    kinds = {f.name: type(f.default) for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in kinds or type(value) is not kinds[key] and not (kinds[key] is float and type(value) is int):
            raise TypeError(f"update rule {name!r} has no field {key!r} of type {type(value).__name__}")
    rule = cls(**values)
    if rule.name != name:
        raise ValueError(f"update rule {name!r} recorded with the fields of {rule.name!r}")
    return rule


def hyper(rule, optimizers, backend, dtype, lead=(), lrs=None, frozen=(), traced=False, chunk=None) -> dict:
    """The hyperparameters of ``rule`` for ``optimizers`` (one resolved dict per network) as the kernels
    take them: floats for one network stepped eagerly, 0-d arrays when ``traced``, (K, 1, 1) arrays for
    a stack (``lead == (K,)``). ``lrs`` are this epoch's learning rates (the schedule's); a ``frozen``
    network's is 0, so that nothing moves it. ``chunk`` (per-sample training with momentum or decay): the
    rows of a chunk, for the coefficients of its deferred first-layer updates (arrays)."""
    current = [{**o, "lr": 0.0 if k in frozen else (o["lr"] if lrs is None else lrs[k])} for k, o in enumerate(optimizers)]
    out = {}
    for name in rule.hyper_names():
        values = np.array([o[name] for o in current], dtype=np.float64)
        if not lead:
            out[name] = backend.asarray(values[0], dtype) if traced else float(values[0])
        else:
            out[name] = backend.asarray(values.reshape(*lead, 1, 1), dtype)
    if chunk:  # only rules that defer the first layer train in chunks
        for name, table in rule.chunk_coefficients(current, chunk).items():
            out[name] = backend.asarray(table if lead else table[0], dtype)
    return out

__all__ = ["Rule", "Setting", "RULES", "register", "get", "options", "default", "rule_for", "rule_from", "hyper",
           "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
