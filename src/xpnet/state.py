"""A run's state, one value: everything training carries from one epoch to the next besides the weights,
and the checkpoint file that holds it beside them.

:class:`TrainState` holds the update rule and its state (device arrays), each network's schedule and
early-stopping counters, early stopping's best weights, the networks that are frozen (diverged, or
stopped early) and where, the epochs done, the history, and whether the weights are the best epoch's
rather than the last. The :class:`~xpnet.train.Trainer` takes it, updates it at every epoch's end and
leaves it on the model (``model.state``); :func:`save` writes it with the weights, atomically, and
:func:`restore` reads it back whole -- every array checked for its name, shape, type and finiteness, every
counter for its type, so that a damaged or foreign file is one line (:class:`~xpnet.errors.DataError`)
and never a traceback or a silently different run.

The file is an ``.npz`` (``W0, b0, ...``, a JSON ``meta`` entry, and the state's arrays ``state{l}_{i}``,
``best_W{l}``, ``best_b{l}``); a stack's arrays carry its model axis. Files written before this module
(one network, ``meta["train_state"]`` without ``frozen``) read as they were written.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import optim
from .errors import DataError, ValidationError
from .io import save_weights


@dataclass
class TrainState:
    """What a run carries between epochs besides the weights (every list: one entry per network).

    ``rule`` and ``opt``: the update rule and its state (per layer a tuple of device arrays, with the
    model axis of a stack). ``schedules``: each schedule's counters (:class:`xpnet.schedules.Schedule`),
    ``None`` before the first epoch; ``early``: early stopping's counters, ``None`` without it; ``best``:
    its best weights (device ``[(W, b), ...]`` of that network alone), or ``None``; ``frozen``: ``None``, or
    where the network diverged (``problem``, ``epoch``, ``step``, ``lr``, ``at``) or stopped early
    (``stopped``); ``epochs_done``; ``history``: each network's epoch records; ``restored``: its weights
    are the best epoch's (early stopping restored them when training ended), not the last.
    """

    count: int = 1
    rule: object | None = None
    opt: list | None = None
    schedules: list = field(default_factory=list)
    early: list = field(default_factory=list)
    best: list = field(default_factory=list)
    frozen: list = field(default_factory=list)
    epochs_done: int = 0
    history: list = field(default_factory=list)
    restored: list = field(default_factory=list)

    def __post_init__(self):
        if not self.restored:
            self.restored = [False] * self.count
        for name in ("schedules", "early", "best", "frozen"):
            if not getattr(self, name):
                setattr(self, name, [None] * self.count)
        if not self.history:
            self.history = [[] for _ in range(self.count)]

    def report(self, key: str) -> list:
        """For each network ``None`` or where it was frozen for ``key``: ``"problem"`` (diverged) or
        ``"stopped"`` (stopped early)."""
        return [f if f and key in f else None for f in self.frozen]

    @property
    def finished(self) -> str | None:
        """Why training cannot go on from here (``None`` where it can): every network diverged or
        stopped early."""
        if all(f and "problem" in f for f in self.frozen):
            f = self.frozen[0]
            return f"diverged at {f.get('at', 'epoch ' + str(f.get('epoch')))}"
        if all(self.frozen):
            return f"stopped early after epoch {max(f.get('stopped') or f.get('epoch') or 0 for f in self.frozen)}"
        return None

    def restart(self, keep_frozen: bool) -> "TrainState":
        """The state a new run of epochs starts from: the rule's state carries over (as a second
        ``fit`` continues the moments), the schedules, early stopping and history start afresh; a stack's
        frozen networks stay frozen (``keep_frozen``)."""
        return TrainState(self.count, self.rule, self.opt, frozen=list(self.frozen) if keep_frozen else [])

    def one(self, k: int) -> "TrainState":
        """Network ``k`` of a stack's state as the state of that network alone."""
        opt = None if self.opt is None else [tuple(a[k, ...] for a in layer) for layer in self.opt]
        history = self.history[k]
        done = history[-1]["epoch"] if self.frozen[k] and history else self.epochs_done  # where it stopped
        return TrainState(1, self.rule, opt, [self.schedules[k]], [self.early[k]], [self.best[k]], [self.frozen[k]],
                          done, [history], [self.restored[k]])


# -- writing ---------------------------------------------------------------------------------------
def save(path, model, meta: dict | None = None) -> None:
    """Write ``model``'s weights, its run state (``model.state``) and ``meta`` (JSON: the run, the final
    scores, ...) to ``path`` atomically."""
    out, arrays = to_host(model)
    save_weights(path, model.get_weights(), {**out, **(meta or {})}, arrays)


def to_host(model) -> tuple[dict, dict]:
    """``(meta, arrays)``: the network's configuration and its run state as JSON values and host arrays
    (what :func:`save` writes beside the weights and :func:`restore` reads back)."""
    state = model.state or TrainState(model.n_models or 1)
    to_host, single = model.backend.to_host, model.n_models is None
    out, arrays = {**model.config()}, {}
    if state.opt is not None:
        out["optimizer_state"] = {"rule": state.rule.name, **asdict(state.rule), "layers": [len(s) for s in state.opt]}
        arrays.update({f"state{l}_{i}": to_host(a) for l, s in enumerate(state.opt) for i, a in enumerate(s)})
    has_best = [b is not None for b in state.best]
    out["train_state"] = {"schedules": state.schedules, "early": state.early, "frozen": state.frozen,
                          "has_best": has_best, "restored": state.restored}
    for l in range(len(model.sizes) - 1) if any(has_best) else ():
        for i, name in enumerate(("best_W", "best_b")):
            if single:
                arrays[f"{name}{l}"] = to_host(state.best[0][l][i])
            else:  # a network without best weights fills its slot with its weights (has_best says which)
                arrays[f"{name}{l}"] = np.stack([to_host(b[l][i] if b is not None else model.params[l][i][k, ...])
                                                 for k, b in enumerate(state.best)])
    out.update(epochs_done=state.epochs_done, history=state.history[0] if single else state.history)
    return out, arrays


# -- reading ---------------------------------------------------------------------------------------
def restore(path, model, meta: dict, arrays: dict) -> TrainState:
    """The run state ``meta`` and ``arrays`` (host) hold for ``model`` (weights already set), its arrays
    moved to the model's device; a one-line :class:`DataError` naming ``path`` for anything missing,
    extra, mistyped, misshapen or not finite."""
    try:
        return _restore(model, meta, arrays)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ValidationError) as exc:
        raise DataError(f"{path}: damaged training state ({type(exc).__name__}: {exc})") from None


def _recorded_optimizer(meta):
    """The update rule a file's run records (one name for all its networks), or ``None`` where it records
    none or several."""
    run = meta.get("run")
    names = run.get("optimizer", {}).get("optimizer") if isinstance(run, dict) else None
    if names is None and isinstance(meta.get("identity"), dict):
        names = meta["identity"].get("optimizer")
    names = names if isinstance(names, list) else [names]
    return names[0] if len(set(map(str, names))) == 1 and isinstance(names[0], str) else None


def _restore(model, meta, arrays) -> TrainState:
    K = model.n_models
    count = K or 1
    lead = () if K is None else (K,)
    shapes = [((*lead, n_in, n_out), (*lead, 1, n_out)) for n_in, n_out in zip(model.sizes[:-1], model.sizes[1:])]
    expected = {}  # array name -> shape
    rule, opt = None, None
    record = meta.get("optimizer_state")
    if record is not None:
        _type(record, dict, "optimizer_state")
        rule = optim.rule_from(record)
        recorded = _recorded_optimizer(meta)
        if recorded is not None and recorded != rule.name:
            raise DataError(f"its run records optimizer {recorded!r}, but its training state was made by {rule.name!r} "
                            "(an edited or damaged file): training on would use another rule's state")
        zeros = [(np.zeros(w), np.zeros(b)) for w, b in shapes]
        wanted = [tuple(a.shape for a in layer) for layer in rule.init_state(np, zeros)]
        if record.get("layers") != [len(s) for s in wanted]:
            raise DataError(f"the optimizer state's layers {record.get('layers')} are not those of rule "
                            f"{rule.name!r} for layers {model.sizes}")
        expected.update({f"state{l}_{i}": s for l, layer in enumerate(wanted) for i, s in enumerate(layer)})
    kept = meta.get("train_state") or {}
    _type(kept, dict, "train_state")
    has_best = kept.get("has_best")
    if has_best is None:  # files of one network written before the run state: best weights when present
        has_best = ["best_W0" in arrays]
    _list_of(has_best, count, "has_best", lambda v: isinstance(v, bool))
    if any(has_best):
        expected.update({f"best_{n}{l}": s for l, pair in enumerate(shapes) for n, s in zip("Wb", pair)})
    unexpected = sorted(set(arrays) - set(expected))
    if unexpected:
        raise DataError(f"unexpected entries {', '.join(unexpected)} (not part of this file's run state)")
    host = {}
    for name, shape in expected.items():
        if name not in arrays:
            raise DataError(f"missing entry {name} of the training state")
        a = arrays[name]
        if a.dtype.kind != "f" or tuple(a.shape) != shape:
            raise DataError(f"entry {name} should be floats of shape {shape}; found {a.dtype} {tuple(a.shape)}")
        if not np.isfinite(a).all():
            raise DataError(f"entry {name} holds NaN or infinity (a damaged file; a diverged run keeps finite values)")
        host[name] = a
    backend, dtype = model.backend, model.dtype
    if rule is not None:
        opt = [tuple(backend.asarray(host[f"state{l}_{i}"], dtype) for i in range(n)) for l, n in enumerate(record["layers"])]
    best = [None] * count
    for k in range(count):
        if has_best[k]:
            best[k] = [tuple(backend.asarray(host[f"best_{n}{l}"] if K is None else host[f"best_{n}{l}"][k], dtype)
                             for n in "Wb") for l in range(len(shapes))]
    schedules = kept.get("schedules") or [None] * count
    _list_of(schedules, count, "schedules", _schedule)
    early = kept.get("early") or [None] * count
    _list_of(early, count, "early", _early)
    frozen = kept.get("frozen") or [None] * count
    _list_of(frozen, count, "frozen", _frozen)
    restored = kept.get("restored") or [False] * count
    _list_of(restored, count, "restored", lambda v: isinstance(v, bool))
    done = meta.get("epochs_done", 0)
    if not _count(done):
        raise DataError(f"epochs_done must be a whole number >= 0; got {done!r}")
    history = meta.get("history", [])
    histories = [history] if K is None else history
    _list_of(histories, count, "history", lambda h: isinstance(h, list) and all(_record(r, done) for r in h))
    return TrainState(count, rule, opt, schedules, early, best, frozen, done, histories, restored)


def _type(value, kind, name):
    if not isinstance(value, kind):
        raise DataError(f"'{name}' should be a {kind.__name__}; got {type(value).__name__}")


def _list_of(values, count, name, ok):
    if not isinstance(values, list) or len(values) != count:
        raise DataError(f"'{name}' should list {count} network(s); got {values!r:.80}")
    for v in values:
        if not ok(v):
            raise DataError(f"'{name}' holds a damaged entry: {v!r:.80}")


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _number(v, allow_inf=False) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)
            and (allow_inf or math.isfinite(v)))


def _schedule(s) -> bool:
    return s is None or (isinstance(s, dict) and set(s) == {"lr", "best", "bad"} and _number(s["lr"]) and s["lr"] > 0
                         and _number(s["best"], allow_inf=True) and _count(s["bad"]))


def _early(e) -> bool:
    return e is None or (isinstance(e, dict) and set(e) == {"wait", "best", "best_epoch", "stopped"}
                         and _count(e["wait"]) and (e["best"] is None or _number(e["best"]))
                         and _count(e["best_epoch"]) and _count(e["stopped"]))


def _frozen(f) -> bool:
    if f is None:
        return True
    if not isinstance(f, dict) or not ("problem" in f or "stopped" in f):
        return False
    return all(_count(f[k]) for k in ("epoch", "step", "stopped") if k in f) and all(
        isinstance(f[k], str) for k in ("problem", "at") if k in f) and ("lr" not in f or _number(f["lr"]))


def _record(r, done) -> bool:
    return isinstance(r, dict) and _count(r.get("epoch")) and 1 <= r["epoch"] <= max(done, 1)


__all__ = ["TrainState", "save", "to_host", "restore"]
