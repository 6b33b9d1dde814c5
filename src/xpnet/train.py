"""Training and evaluation, for one network (:class:`~xpnet.mlp.MLP`) and a stack (:class:`~xpnet.stack.Stack`)
alike: a single network is one network in the bookkeeping only, its arrays keep no model axis.

Training is three small parts:

- the **epoch order** (:func:`epoch_order`): which rows each epoch visits, in which order -- the same
  function serves training, ``xpnet bench`` and the peers' learners, and a caller may supply its own;
- a **stepper**, chosen once from the backend's capabilities (:func:`stepper_for`): plain steps in
  Python, a compiled epoch (JAX), or steps computed chunk by chunk (Dask); each call computes gradients
  with the kernels and hands them to the update rule (:mod:`xpnet.optim`);
- a **guard** (:class:`Guard`): reads the running losses every :data:`CHECK_SAMPLES` samples, owns the
  last finite weights, replays a network that went non-finite to find the step, and keeps the set of
  frozen networks.

Data moves to the device once per :func:`train`; the host reads the running losses at the guard's checks
and the epoch's figures once per epoch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device

from . import checks, kernels, optim
from . import hooks as hooks_module
from .backends import host_copy, model_sum
from .errors import DivergenceError, ValidationError
from .metrics import accuracy, confusion_matrix, predicted_classes
from .schedules import EarlyStopping, LearningRates
from .state import TrainState

#: Samples between two host reads of the running losses (divergence check and progress bar).
CHECK_SAMPLES = 4096
#: Default samples per call of :func:`xpnet.kernels.sample_steps` in per-sample training: each call costs
#: two matrix products before its rows and one after, and its rows' first-layer corrections grow with it
#: (docs/benchmarks.md has the measurements behind the choice, compiled and not).
SAMPLE_CHUNK = 32
#: The same for SGD with momentum or weight decay in a compiled epoch: each row's correction reads the
#: coefficient tables too, and XLA runs those chunks fastest short (docs/benchmarks.md: 8 rows 1.4-1.7x
#: the optax loop per sample, 32 rows 0.65x).
COMPILED_DEFERRED_CHUNK = 8
#: Host bytes of activations one evaluation pass may hold (the rows per pass follow from it).
EVAL_BYTES = 32 * 2**20
#: Rows per step up to which training runs on one math-library thread unless told otherwise
#: (``Training.threads``): products this small gain nothing from a second thread, and a thread that waits
#: for a core another program holds loses most of the time (docs/benchmarks.md, "threads").
ONE_THREAD_ROWS = 64


def thread_choice(training) -> int | None:
    """The math-library thread count training runs with: ``training.threads`` where given (0: the
    library's own setting, ``None`` here), else one thread for steps of at most :data:`ONE_THREAD_ROWS`
    rows (per-sample training's chunks included) and the library's setting above."""
    if training.threads is not None:
        return training.threads or None
    return 1 if training.batch_size <= ONE_THREAD_ROWS else None


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which a shuffled epoch visits ``n`` rows: ``default_rng([seed, epoch])``'s
    permutation, so every backend, resume and peer sees the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def shuffled(seeds, n: int):
    """The default order of shuffled training: ``order(epoch)`` gives each network's :func:`epoch_order`
    of its own seed -- (n,) when all networks share one seed, (K, n) otherwise."""
    distinct = list(dict.fromkeys(seeds)) if len(set(seeds)) == 1 else list(seeds)

    def order(epoch):
        orders = np.stack([epoch_order(s, epoch, n) for s in distinct])
        return orders[0] if len(distinct) == 1 else orders

    return order


# -- data ----------------------------------------------------------------------------------------
def check_data(model, X, y, what="training"):
    """``(X, T, labels)``: device inputs and targets and host labels for ``X`` and labels ``y`` (host
    arrays, or arrays of any backend on any device: the labels are read to the host once, to be
    checked and scored), validated."""
    Xd = model.inputs(X, name={"training": "X", "test": "X_test", "val": "X_val"}.get(what, "X"))
    labels = host_copy(y)
    n = Xd.shape[0]
    if n == 0:
        raise ValidationError(f"the {what} data is empty (X has 0 rows)")
    if labels.ndim == 0 or labels.shape[0] != n:
        got = labels.shape[0] if labels.ndim else "a scalar"
        raise ValidationError(f"X and y must have the same number of samples; got {n} and {got} ({what} data)")
    t = model.targets(labels)
    if not np.all(np.isfinite(t)):
        raise ValidationError(f"the {what} targets y contain NaN or infinity")
    return Xd, model.backend.asarray(t, model.dtype), labels


@dataclass
class Sets:
    """Training data on the device (``X``, targets ``T``) and the sets scored after every epoch
    (``name -> (X, T, host labels)``: ``test``, ``val``)."""

    X: object
    T: object
    scored: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.X.shape[0]


def prepare(model, X, y, test=None, validation=None) -> Sets:
    """Check the data and move it to ``model``'s device once: training ``(X, y)``, ``test`` and
    ``validation`` as ``(X, y)`` pairs or ``None``."""
    if test is not None and (test[0] is None) != (test[1] is None):
        raise ValidationError("X_test and y_test must be given together")
    sets = {name: pair for name, pair in (("test", test), ("val", validation)) if pair is not None and pair[0] is not None}
    Xd, Td, _ = check_data(model, X, y)
    return Sets(Xd, Td, {k: check_data(model, Xs, ys, k) for k, (Xs, ys) in sets.items()})


# -- evaluation ----------------------------------------------------------------------------------
def evaluate(model, X, y, batch_size: int = 10000):
    """Mean loss, accuracy and confusion matrix of ``model`` on ``X`` with labels ``y``.

    Parameters
    ----------
    model : MLP or Stack
    X : array of shape (n, n_inputs)
        Host (NumPy) inputs, or an array of the model's backend already on its device.
    y : array of shape (n,) or (n, n_outputs)
        Class labels, or regression targets (then no accuracy is computed).
    batch_size : int
        Rows per forward pass (fewer for a large stack, so that the activations stay small).

    Returns
    -------
    dict or list of dict
        ``{"loss", "n"}`` and, for class labels, ``"accuracy"`` and ``"confusion"``; a stack gives one
        such dict per network.
    """
    return model.unstack(scores(model, *check_data(model, X, y, "evaluation"), batch_size))


def scores(model, Xd, Td, y, batch_size=10000) -> list[dict]:
    """:func:`evaluate` on device arrays ``Xd``, ``Td`` (host labels ``y`` for the accuracy): one dict
    per network."""
    xp, n = model.xp, Xd.shape[0]
    width = max(model.sizes) * (model.n_models or 1) * np.dtype(model.dtype).itemsize
    rows_per_pass = max(1, min(batch_size, EVAL_BYTES // width))
    losses, preds = [], []
    with model.backend.context():
        for i in range(0, n, rows_per_pass):
            rows = slice(i, min(i + rows_per_pass, n))  # out-of-range slice ends are not in the standard
            z, _ = kernels.forward(xp, model.network, model.params, Xd[rows, :])
            out, loss = model.network.head.forward(xp, z, Td[rows, :])
            losses.append(loss)
            preds.append(model.backend.to_host(predicted_classes(out, xp)))
    losses = np.atleast_1d(model.backend.to_host(xp.sum(xp.stack(losses), axis=0))) / n
    pred = np.concatenate(preds, axis=-1).reshape(len(losses), n)
    results = []
    for k, loss in enumerate(losses):
        result = {"loss": float(loss), "n": n}
        if y.ndim == 1:  # class labels (2-D y is regression targets: no accuracy)
            result["accuracy"] = accuracy(y, pred[k])
            result["confusion"] = confusion_matrix(y, pred[k], model.n_classes)
        results.append(result)
    return results


# -- training ------------------------------------------------------------------------------------
def fit(model, X, y, **options):
    """Train ``model`` in place and return its history: :meth:`xpnet.mlp.BaseNetwork.fit`."""
    return model.fit(X, y, **options)


def check_training(model, training, n: int, initial_epoch: int = 0) -> int:
    """Refuse, in one line, what cannot train: a backend without values to read back, an
    ``initial_epoch`` past the run's epochs, a batch larger than the data or smaller than the backend
    takes. Returns ``initial_epoch``, checked."""
    if not model.backend.can_train:
        raise ValidationError(f"backend {model.backend.name!r} cannot train (its arrays hold no values to read back); "
                              "it runs the forward pass only")
    initial_epoch = checks.integer("initial_epoch", initial_epoch, 0)
    if initial_epoch > training.epochs:
        raise ValidationError(f"initial_epoch must be at most epochs ({training.epochs}); got {initial_epoch}")
    if training.batch_size > n:
        raise ValidationError(f"batch_size must be at most the number of samples ({n}); got {training.batch_size}")
    smallest = min(model.backend.min_batch_size, n)
    if training.batch_size < smallest:
        raise ValidationError(f"backend {model.backend.name!r} builds a task graph per step; batch_size must be at "
                              f"least {smallest} there (the full batch is best); got {training.batch_size}")
    return initial_epoch


def _record(epoch, result, evaluations, k, lr) -> dict:
    record = {"epoch": epoch, "train_loss": float(result["train_loss"][k]), "test_loss": None, "test_accuracy": None,
              "lr": lr}
    for name, per_network in evaluations.items():
        record[f"{name}_loss"], record[f"{name}_accuracy"] = per_network[k]["loss"], per_network[k].get("accuracy")
    record.update(samples_per_second=result["samples_per_second"], seconds=result["seconds"],
                  weight_change=[float(c) for c in result["weight_change"][:, k]])
    return record


# -- the bookkeeping of K networks ---------------------------------------------------------------
def _map(fn, tree):
    """``fn`` applied to every array of nested lists and tuples."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(fn, t) for t in tree)
    return fn(tree)


@dataclass(frozen=True)
class Networks:
    """K networks, or one without a model axis (``K is None``): the bookkeeping tells them apart, the
    arrays and the kernels do not."""

    K: int | None

    @property
    def single(self) -> bool:
        return self.K is None

    @property
    def count(self) -> int:
        return 1 if self.K is None else self.K

    @property
    def lead(self) -> tuple:
        return () if self.K is None else (self.K,)

    def one(self, tree, k):
        """Network ``k``'s arrays (all of them for a single network)."""
        return tree if self.K is None else _map(lambda a: a[k, ...], tree)

    def restore(self, backend, tree, k, kept):
        """``tree`` with network ``k``'s slot set back to ``kept`` (its own arrays, no model axis)."""
        if self.K is None:
            return kept
        mask = np.zeros((self.K, 1, 1), dtype=bool)
        mask[k] = True
        mask = backend.asarray(mask)
        xp = backend.xp
        return _restore(xp, tree, kept, mask)


def _restore(xp, tree, kept, mask):
    if isinstance(tree, (list, tuple)):
        return type(tree)(_restore(xp, t, c, mask) for t, c in zip(tree, kept))
    return xp.where(mask if tree.ndim == 3 else xp.reshape(mask, mask.shape[: tree.ndim]), kept, tree)


class Rows:
    """The rows of one epoch: the data's own order, or an order ((n,) shared, (K, n) per network)."""

    def __init__(self, xp, X, T, order=None, offset=0, n=None):
        self.xp, self.X, self.T, self.order, self.offset = xp, X, T, order, offset
        self.n = (X.shape[0] if order is None else order.shape[-1]) if n is None else n

    def part(self, start: int, stop: int) -> "Rows":
        """Positions ``start .. stop`` of the epoch as rows of their own (a pass over part of an epoch);
        nothing is copied."""
        return Rows(self.xp, self.X, self.T, self.order, self.offset + start, stop - start)

    def get(self, start, stop, k=None):
        """The samples at positions ``start .. stop`` of the rows, for every network or network ``k``."""
        start, stop = start + self.offset, stop + self.offset
        if self.order is None:
            return self.X[start:stop, :], self.T[start:stop, :]
        order = self.order if k is None or self.order.ndim == 1 else self.order[k, :]
        return _gather(self.xp, self.X, self.T, order[..., start:stop])


def _gather(xp, X, T, idx):
    """Rows ``idx`` of ``X`` and ``T``: ``idx`` of shape (B,) is one row list shared by every network,
    (K, B) one per network, giving (K, B, n) batches."""
    if idx.ndim == 1:
        return xp.take(X, idx, axis=0), xp.take(T, idx, axis=0)
    K, B = idx.shape
    flat = xp.reshape(idx, (K * B,))
    return (xp.reshape(xp.take(X, flat, axis=0), (K, B, X.shape[1])),
            xp.reshape(xp.take(T, flat, axis=0), (K, B, T.shape[1])))


# -- steppers ------------------------------------------------------------------------------------
def advance(xp, net, rule, per_sample, params, state, X, T, hyper, inplace=False):
    """One call of a step: gradients by the kernels, then the rule's update (per-sample: a chunk of rows
    by :func:`~xpnet.kernels.sample_steps`). Returns ``(params, state, loss summed over the rows)``."""
    if per_sample:
        return kernels.sample_steps(xp, net, params, X, T, rule, hyper, state, inplace)
    total, grads = kernels.gradients(xp, net, params, X, T, rule.scale(hyper))
    params, state = rule.update(xp, params, grads, state, hyper, inplace)
    return params, state, total


class Stepper:
    """Plain steps in Python: every call of ``size`` rows (a chunk of per-sample steps, or a batch)
    updates the weights, in place where the backend can."""

    def __init__(self, backend, net, rule, per_sample: bool, size: int, unroll: int = 1):
        self.backend, self.xp, self.net, self.rule = backend, backend.xp, net, rule
        self.per_sample, self.size, self.unroll = per_sample, size, unroll
        self.inplace = backend.supports_inplace

    @property
    def chunk(self) -> int | None:
        """The rows of a per-sample chunk (``None`` when every call is one batch)."""
        return self.size if self.per_sample else None

    def stops(self, n: int) -> list[int]:
        """The positions of an epoch of ``n`` rows at which the guard reads the host."""
        every = max(1, CHECK_SAMPLES // self.size) * self.size
        return [min(n, p) for p in range(every, n + every, every)]

    def one(self, params, state, X, T, hyper):
        """One call on the rows ``X``, ``T``: ``(params, state, loss)``."""
        return advance(self.xp, self.net, self.rule, self.per_sample, params, state, X, T, hyper, self.inplace)

    def run(self, params, state, running, rows: Rows, start, stop, hyper):
        """The calls from row ``start`` to row ``stop``; ``running`` accumulates their losses."""
        for position in range(start, stop, self.size):
            params, state, loss = self.one(params, state, *rows.get(position, min(stop, position + self.size)), hyper)
            running = running + loss
        return params, state, running


class CompiledStepper(Stepper):
    """The epoch's whole calls as one compiled call (JAX: ``jit`` + ``lax.scan`` of the very same
    step), and the remaining rows, fewer than one call, as one more compiled call: nothing of an epoch
    runs eagerly, so nothing crosses to or from the host inside it."""

    def stops(self, n):
        whole = n // self.size * self.size
        return [p for p in (whole, n) if p] if whole != n else [n]

    def run(self, params, state, running, rows, start, stop, hyper):
        steps, tail = divmod(stop - start, self.size)
        carry = (params, state, running)
        for calls, size in ((steps, self.size), (1 if tail else 0, tail)):
            if calls:
                epoch = _compiled_epoch(self.backend, self.net, self.rule, self.per_sample, calls, size,
                                        rows.order is not None, self.unroll)
                first = self.backend.asarray(np.asarray(rows.offset + start, dtype=np.int32))  # traced, not baked in
                carry = epoch(carry, (rows.X, rows.T, rows.order, hyper, first))
                start += calls * size
        return carry


class ChunkedStepper(Stepper):
    """A backend that trains by chunks (Dask): each step sends the weights to every chunk of rows, runs
    the same kernels there on NumPy, adds the chunks' gradients up and updates once -- the step of one
    batch, up to the order of the additions."""

    def one(self, params, state, X, T, hyper):
        net = self.net

        def chunk(x, t):  # sums over the chunk: the batch mean is taken once, below
            return kernels.gradients(array_namespace(x), net, params, x, t, scale=float(x.shape[0]))

        parts = self.backend.map_chunks(chunk, X, T)
        scale = self.rule.scale(hyper) / X.shape[0]
        grads = [(sum(p[1][l][0] for p in parts) * scale, sum(p[1][l][1] for p in parts) * scale)
                 for l in range(len(params))]
        params, state = self.rule.update(self.xp, params, grads, state, hyper, inplace=True)
        return params, state, sum(p[0] for p in parts)


def compiles(backend, compile=None) -> bool:
    """Whether epochs on ``backend`` run as one compiled call (``compile``: the run's choice, ``None``
    where it can); asking for it where the backend has no compiler is a one-line error."""
    if compile and not backend.can_compile:
        raise ValidationError(f"--compile needs a backend with a compiler (jax); {backend.name!r} has none and "
                              "steps in Python")
    return backend.can_compile and compile is not False and not backend.trains_by_chunks


def stepper_for(backend, net, rule, per_sample, size, compile=None, unroll=1) -> Stepper:
    """The stepper this backend trains with, chosen once: by chunks where it trains by chunks, compiled
    epochs where it can compile (unless ``compile`` is false), plain steps otherwise."""
    if backend.trains_by_chunks:
        return ChunkedStepper(backend, net, rule, per_sample, size, unroll)
    if compiles(backend, compile):
        return CompiledStepper(backend, net, rule, per_sample, size, unroll)
    return Stepper(backend, net, rule, per_sample, size, unroll)


@functools.lru_cache(maxsize=64)
def _compiled_epoch(backend, net, rule, per_sample, steps, size, shuffled, unroll):
    """``steps`` calls of ``size`` rows as one compiled function ``(carry, data) -> carry``, with ``carry =
    (params, state, summed losses)`` and ``data = (X, T, order, hyper, start)``: each call's rows start at
    a position computed from ``start`` (a device integer, so that every start shares the compilation) and
    the loop counter (:meth:`~xpnet.backends.Backend.traced_rows`)."""
    xp = backend.xp

    def body(carry, data, k):
        params, state, total = carry
        X, T, order, hyper, start = data
        first = start + k * size
        if shuffled:
            batch = _gather(xp, X, T, backend.traced_rows(order, first, size, axis=-1))
        else:
            batch = backend.traced_rows(X, first, size), backend.traced_rows(T, first, size)
        params, state, loss = advance(xp, net, rule, per_sample, params, state, *batch, hyper)
        return params, state, total + loss

    return backend.compile_epoch(body, steps, unroll)


# -- the guard -----------------------------------------------------------------------------------
class Guard:
    """Divergence: reads every network's running loss and weights at the stepper's stops, keeps the last
    finite checkpoint, and replays a network that went non-finite alone from there to find the step that
    went bad. A single network then raises :class:`DivergenceError` with the weights (and the rule's
    state) from before that step; in a stack that network is frozen with those (learning rate 0, weights
    and rule state restored at every check) and listed in ``frozen``, while the others train on
    untouched: nothing a kernel computes mixes networks."""

    def __init__(self, trainer, previous=None):
        self.trainer = trainer
        self.nets = trainer.nets
        self.frozen: dict[int, dict] = {}  # network index -> where it diverged or stopped, and what it keeps
        for k, where in enumerate(previous or []):
            if where:  # diverged (or stopped) in an earlier fit: stays frozen
                self.frozen[k] = {**where, "kept": self.copy(self.nets.one(trainer.model.params, k)),
                                  "kept_state": self.copy(self.nets.one(trainer.state.opt, k))}

    def copy(self, tree):
        """A copy of every array of ``tree`` that later in-place updates leave alone."""
        return _map(self.trainer.backend.copy, tree)

    def begin(self, params, state):
        """The epoch starts: its start is the first checkpoint."""
        self.saved = (0, self.copy(params), self.copy(state))

    def finite(self, params, running=None) -> np.ndarray:
        """Host booleans, one per network: every weight and bias (and the running loss) finite."""
        arrays = [a for pair in params for a in pair]
        xp = array_namespace(*arrays)
        parts = [model_sum(xp, a) for a in arrays] + ([] if running is None else [running])
        values = self.trainer.backend.to_host(xp.stack(parts)).reshape(len(parts), -1)
        return np.isfinite(values).all(axis=0)

    def check(self, params, state, running, position, epoch, last=False):
        """At row ``position``: find the networks that went non-finite since the last checkpoint, freeze
        them (a stack's; one network's is the trainer's to report) and make this the new checkpoint
        (unless it is the epoch's ``last``). Returns the parameters and rule state to go on with and what
        it found: ``(k, kept weights, kept rule state, where)`` per network newly gone bad."""
        finite = self.finite(params, running)
        found = [(k, *self.locate(k, position, epoch)) for k in range(len(finite))
                 if not finite[k] and k not in self.frozen]
        if found and self.nets.single:  # one network stops here: the trainer reports it
            return params, state, found
        for k, kept, kept_state, where in found:
            self.frozen[k] = {**where, "kept": kept, "kept_state": kept_state}
        params, state = self.hold(params, state)
        if not last:
            self.saved = (position, self.copy(params), self.copy(state))
        return params, state, found

    def hold(self, params, state):
        """``params`` and ``state`` with every frozen network's set back to what it keeps."""
        backend = self.trainer.backend
        for k, info in self.frozen.items():
            params = self.nets.restore(backend, params, k, info["kept"])
            state = self.nets.restore(backend, state, k, info["kept_state"])
        return params, state

    def locate(self, k, stop, epoch):
        """Replay network ``k`` alone from the last checkpoint up to row ``stop`` and find the first step
        that went bad: its weights and rule state from before that step, and where (``at``, ``step``,
        ``lr``, ``problem``, ``epoch``). The batches are deterministic, so the replay retraces the
        computation; inside the first bad call, a bisection over its prefixes (whole steps of
        ``batch_size``) finds the first bad step: a step that went bad leaves the loss or the weights
        non-finite for every longer prefix."""
        t = self.trainer
        position, saved, saved_state = self.saved
        kept, state = self.copy(self.nets.one(saved, k)), self.copy(self.nets.one(saved_state, k))
        hyper = optim.hyper(t.rule, [t.optimizers[k]], t.backend, t.model.dtype, lrs=[t.lrs[k]], chunk=t.stepper.chunk)
        size, n, batch = t.stepper.size, t.rows.n, t.batch_size
        count, problem = 0, "a non-finite value appeared"  # kept only on a non-deterministic backend
        while position < stop:
            available = min(size, n - position)
            new, new_state, bad = self._attempt(kept, state, *t.rows.get(position, position + available, k), hyper)
            if bad is None:
                kept, state, position = new, new_state, position + available
                continue
            before, before_state, problem = kept, state, bad
            good, worse = 0, -(-available // batch)  # steps of the call: the first `good` are, step `worse` is not
            while worse - good > 1:
                middle = (good + worse) // 2
                new, new_state, bad = self._attempt(before, before_state,
                                                    *t.rows.get(position, position + middle * batch, k), hyper)
                if bad is None:
                    good, kept, state = middle, new, new_state
                else:
                    worse, problem = middle, bad
            count = min(worse * batch, available)
            break
        lr = t.lrs[k]
        step, steps = position // batch + -(-count // batch), -(-n // batch)
        at = f"epoch {epoch}, step {step} of {steps} (lr={lr:g})"
        return kept, state, {"epoch": epoch, "step": step, "lr": lr, "problem": problem, "at": at}

    def _attempt(self, params, state, X, T, hyper):
        """One call on copies of one network's arrays: the new ones and what went wrong (``None`` if
        nothing)."""
        new, new_state, loss = self.trainer.stepper.one(self.copy(params), self.copy(state), X, T, hyper)
        loss = float(loss)
        if not math.isfinite(loss):
            return new, new_state, f"the loss became {loss}"
        if not self.finite(new).all():
            return new, new_state, "a weight became non-finite"
        return new, new_state, None

    def freeze(self, k, **where):
        """Freeze network ``k`` with the weights and rule state it has now, noting ``where``."""
        t = self.trainer
        self.frozen[k] = {**where, "kept": self.copy(self.nets.one(t.model.params, k)),
                          "kept_state": self.copy(self.nets.one(t.state.opt, k))}

    def report(self) -> list:
        """For each network ``None`` or where it was frozen (without what it keeps)."""
        return [{k: v for k, v in self.frozen[i].items() if k not in ("kept", "kept_state")} if i in self.frozen
                else None for i in range(self.nets.count)]


# -- the trainer: the epoch loop -------------------------------------------------------------------
class Trainer:
    """The epoch loop, for one network or a stack: the order, the stepper and the guard, with hooks
    (:mod:`xpnet.hooks`) for everything around the steps -- each network's learning-rate schedule and early
    stopping are its own two hooks (:mod:`xpnet.schedules`); checkpoints, progress, reports and the
    benchmark's timing are the caller's. It is the one writer of the run's state
    (:class:`~xpnet.state.TrainState`), which it keeps on the model (``model.state``) and brings up to date
    at every epoch's end, so that a checkpoint written then holds all of it.

    Per-sample training (batch size 1) runs :func:`~xpnet.kernels.sample_steps` over ``sample_chunk``
    samples per call where the rule can defer the first layer's updates, one step per sample otherwise;
    larger batches run one step per call. ``state`` is the run's state to start from (a resumed
    checkpoint's; default the model's own). From ``initial_epoch`` > 0 the run continues that state where
    it stands (an interrupted run: schedules, early stopping, history); otherwise a new run of epochs
    begins, and only the rule's state carries over (the same rule: a second ``fit`` continues the
    moments) and a stack's frozen networks stay frozen.
    """

    def __init__(self, model, data: Sets, training, optimizers, seeds, order=None, state=None, initial_epoch=0):
        self.initial_epoch = check_training(model, training, data.n, initial_epoch)
        self.model, self.backend, self.data, self.training = model, model.backend, data, training
        self.epochs, self.nets = training.epochs, Networks(model.n_models)
        optimizers = checks.per_network("optimizers", list(optimizers), self.nets.count)
        resolved = {o: o.resolved() for o in set(optimizers)}  # once per distinct setting, not per network
        self.optimizers = [resolved[o] for o in optimizers]
        self.rule = optim.rule_for(self.optimizers)
        self.batch_size, n = training.batch_size, data.n
        # A full batch is the same gradient in any order: shuffling it would only copy the data every step.
        shuffle = (training.batch_size > 1 if training.shuffle is None else training.shuffle) and training.batch_size < n
        self.order = order or (shuffled(list(seeds), n) if shuffle else None)
        # Chunks of samples where the rule defers the first layer's updates, else one plain step per sample.
        chunk = training.sample_chunk or (COMPILED_DEFERRED_CHUNK if compiles(self.backend, training.compile)
                                          and self.rule.defers_first_layer and not self.rule.plain else SAMPLE_CHUNK)
        per_sample = training.batch_size == 1 and chunk > 1 and self.rule.defers_first_layer
        size = min(chunk, n) if per_sample else training.batch_size
        self.stepper = stepper_for(self.backend, model.network, self.rule, per_sample, size, training.compile,
                                   training.unroll)
        self.compiled = isinstance(self.stepper, CompiledStepper)
        if state is None and model.state is not None and model.state.count == self.nets.count:
            state = model.state
        state = state if state is not None else TrainState(self.nets.count)
        if not self.initial_epoch:
            state = state.restart(keep_frozen=not self.nets.single)
        state.rule, state.opt = self.rule, self._rule_state(state)
        self.state = model.state = state
        self.guard = Guard(self, state.frozen)
        self.learning_rates = LearningRates(self.optimizers, training.epochs, n, state.schedules)
        self.early_stopping = (EarlyStopping(self.optimizers, state.early, state.best)
                               if any(o["early_stopping"] for o in self.optimizers) else None)
        self.lrs, self.done, self.final, self.pass_rows = [o["lr"] for o in self.optimizers], False, {}, n
        self._stopped: list[int] = []

    def _rule_state(self, state) -> list:
        """The rule's state to go on with: the state's own where it was made by this rule with the same
        arrays (a second ``fit`` that changes only a setting, ``weight_decay`` say, keeps Adam's moments),
        fresh where there was none or another rule made it (a new optimizer starts afresh, as in
        ``torch.optim``); a change of the same rule that would drop what its state holds is refused."""
        fresh = self.rule.init_state(self.backend.xp, self.model.params)
        old = state.opt
        if old is None or state.rule is None or state.rule.name != self.rule.name:
            return fresh
        if [len(layer) for layer in old] == [len(layer) for layer in fresh]:
            return old
        if not any(old):  # nothing to lose (sgd without momentum before)
            return fresh
        old_rule, new_rule = dataclasses.asdict(state.rule), dataclasses.asdict(self.rule)
        differ = [k for k in new_rule if old_rule.get(k) != new_rule[k]]
        raise ValidationError(f"this network's {self.rule.name} state was made with "
                              f"{', '.join(f'{k}={old_rule.get(k)}' for k in differ)}, which keeps other arrays than "
                              f"{', '.join(f'{k}={new_rule[k]}' for k in differ)}: train on with the same settings, "
                              "or start from a new network")

    def hyper(self):
        return optim.hyper(self.rule, self.optimizers, self.backend, self.model.dtype, self.nets.lead, self.lrs,
                           self.guard.frozen, traced=self.compiled, chunk=self.stepper.chunk)

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, epochs, hooks=(), rows=None) -> list[list[dict]]:
        """Train ``epochs`` (a range of epoch numbers, 1-based) in place, calling ``hooks`` (after the
        schedules and early stopping, before those :func:`xpnet.hooks.hooked` adds); return one history per
        network (these epochs' records). ``rows=(start, stop)`` makes each epoch a pass over only those
        positions of its order (the benchmark's rounds): the passes leave the run's state as it was.

        A single network that diverges raises :class:`DivergenceError` (with ``history``) holding its
        last finite weights; a stack freezes the network instead (``model.diverged``). With early stopping
        a network stops (a stack: freezes, listed in ``model.stopped``) and ends with its best epoch's
        weights (unless ``restore_best`` is off)."""
        hooks = [self.learning_rates, *([self.early_stopping] if self.early_stopping else []), *hooks,
                 *hooks_module.EXTRA]
        deciding, others = [h for h in hooks if h.decides], [h for h in hooks if not h.decides]
        checking = hooks_module.checks_of(hooks)
        histories: list[list[dict]] = [[] for _ in range(self.nets.count)]
        self.done, self.pass_rows = False, self.data.n if rows is None else rows[1] - rows[0]
        with self.backend.context(), self.backend.threads(thread_choice(self.training)):
            for hook in hooks:
                hook.on_train_begin(self)
            for epoch in epochs:
                for hook in hooks:
                    hook.on_epoch_begin(self, epoch)
                try:
                    result = self._epoch(epoch, checking, rows)
                except BaseException as exc:
                    if isinstance(exc, DivergenceError):
                        exc.history = self.state.history[0]
                    for hook in hooks:
                        hook.on_error(self, exc)
                    raise
                evaluations = {name: scores(self.model, *scored) for name, scored in self.data.scored.items()}
                records = [None if k in self.guard.frozen else _record(epoch, result, evaluations, k, self.lrs[k])
                           for k in range(self.nets.count)]
                self._stopped = []
                for hook in deciding:
                    hook.on_epoch_end(self, epoch, records)
                self.done = (self.nets.single and bool(self._stopped)) or len(self.guard.frozen) == self.nets.count
                if rows is None:
                    self._keep(epoch, records)
                for history, record in zip(histories, records):
                    if record is not None:
                        history.append(record)
                for hook in others:
                    hook.on_epoch_end(self, epoch, records)
                if self.done:
                    break
            for hook in deciding:
                hook.on_train_end(self)
            self.final = {name: scores(self.model, *scored) for name, scored in self.data.scored.items()}
            for hook in others:
                hook.on_train_end(self)
        return histories

    def _epoch(self, epoch, checking, rows=None) -> dict:
        """Train one epoch (or the pass ``rows`` of it) in place; returns ``train_loss`` (per network),
        ``weight_change`` (layers x networks), ``seconds`` and ``samples_per_second``: the steps and the
        guard's checks, not the hooks at the checks."""
        backend, guard = self.backend, self.guard
        order = None if self.order is None else self.order(epoch)
        self.rows = Rows(backend.xp, self.data.X, self.data.T,
                         None if order is None else backend.asarray(np.asarray(order, dtype=np.int32)))
        if rows is not None:
            self.rows = self.rows.part(*rows)
        n = self.rows.n
        params, state = self.model.params, self.state.opt
        start = guard.copy(params)
        guard.begin(params, state)
        running = _zeros(params, self.nets.lead, self.model.dtype)
        hyper = self.hyper()
        seconds, t0, position = 0.0, time.perf_counter(), 0
        for stop in self.stepper.stops(n):
            params, state, running = self.stepper.run(params, state, running, self.rows, position, stop, hyper)
            params, state, found = guard.check(params, state, running, stop, epoch, last=stop == n)
            if found and self.nets.single:
                self._diverged(epoch, *found[0][1:])
            if found:
                hyper = self.hyper()
            position = stop
            if checking:  # off the clock, with the weights where the steps left them
                seconds += time.perf_counter() - t0
                self.model.params, self.state.opt = params, state
                for hook in checking:
                    hook.on_check(self, epoch, position)
                t0 = time.perf_counter()
        backend.synchronize(*params[-1])
        seconds += time.perf_counter() - t0
        self.model.params, self.state.opt = params, state
        change = [backend.to_host(_norm(W - W0)) for (W, _), (W0, _) in zip(params, start)]
        return {
            "train_loss": np.atleast_1d(backend.to_host(running)) / n,
            "weight_change": np.array([np.atleast_1d(c) for c in change]),
            "samples_per_second": n / seconds,
            "seconds": seconds,
        }

    # -- what the hooks and the guard report ---------------------------------------------------------
    def _diverged(self, epoch, kept, kept_state, where):
        """One network went non-finite: it ends with the weights and rule state from before that step."""
        self.model.params, self.state.opt = kept, kept_state
        self.state.frozen = [dict(where)]
        raise DivergenceError(f"training diverged at {where['at']}: {where['problem']}; kept the last finite weights "
                              "(from before that step); try a smaller learning rate",
                              epoch=epoch, step=where["step"], lr=where["lr"])

    def weights_of(self, k):
        """A copy of network ``k``'s weights now."""
        return self.guard.copy(self.nets.one(self.model.params, k))

    def diverged(self, k) -> bool:
        return "problem" in self.guard.frozen.get(k, {})

    def stop(self, k, epoch, best=None) -> None:
        """Network ``k`` stops after ``epoch`` (early stopping): one network ends training; a stack's is
        frozen, with the weights ``best`` where given, while the others train on."""
        self._stopped.append(k)
        if not self.nets.single:
            if best is not None:
                self.restore(k, best)
            self.guard.freeze(k, stopped=epoch)

    def restore(self, k, weights) -> None:
        """Network ``k`` ends with ``weights`` (its best epoch's), and the run's state says so."""
        self.model.params = self.nets.restore(self.backend, self.model.params, k, weights)
        self.state.restored[k] = True

    def _keep(self, epoch, records) -> None:
        """The epoch's end in the run's state: its records, the epochs done, the schedules' and early
        stopping's counters and best weights, the frozen networks (what a checkpoint then writes)."""
        s = self.state
        for history, record in zip(s.history, records):
            if record is not None:
                history.append(record)
        s.epochs_done = epoch
        s.schedules = self.learning_rates.state
        if self.early_stopping is not None:
            s.early, s.best = self.early_stopping.state, self.early_stopping.best
        if self.nets.single and self.done:
            s.frozen = [{"stopped": epoch}]
        elif not self.nets.single:
            s.frozen = self.guard.report()


def _zeros(params, lead, dtype):
    """The running losses: zeros on the weights' device, in their namespace (NumPy where a backend keeps
    its weights on the host)."""
    W = params[0][0]
    xp = array_namespace(W)
    return xp.zeros(lead, dtype=getattr(xp, dtype), device=array_device(W))


def _norm(d):
    """The L2 norm of each network's ``d``."""
    xp = array_namespace(d)
    return xp.sqrt(model_sum(xp, d * d))
