"""Training and evaluation loops, for one network (:class:`~xpnet.mlp.MLP`) and a stack of networks
(:class:`~xpnet.stack.Stack`) alike.

Data moves to the device once per :func:`fit`. Each step slices (or, when shuffling, ``xp.take``-s) a
batch on the device, runs forward, backward and the SGD update, and adds the batch loss to a running sum
per network that also stays on the device. The host reads the running losses every few thousand samples
(to notice divergence and draw the progress bar) and the epoch's figures once per epoch.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device

from . import kernels
from .backends import model_sum
from .errors import DivergenceError, ValidationError
from .metrics import accuracy, confusion_matrix, predicted_classes
from .progress import Progress

#: Samples between two host reads of the running losses (divergence check and progress bar).
CHECK_SAMPLES = 4096
#: Default samples per call of :func:`xpnet.kernels.sample_steps` in per-sample training: each call costs
#: two matrix products before its rows and one after, and its rows' first-layer corrections grow with it
#: (docs/benchmarks.md has the measurements behind the choice, compiled and not).
SAMPLE_CHUNK = 32
#: Host bytes of activations one evaluation pass may hold (the rows per pass follow from it).
EVAL_BYTES = 32 * 2**20


def check_number(name, value, low=None, integer=False):
    """Raise a one-line :class:`ValidationError` unless ``value`` is a finite (integer) number >= ``low``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value) == int(value)
    if not ok or not math.isfinite(value) or (low is not None and value < low):
        kind = "an integer" if integer else "a finite number"
        bound = f" >= {low}" if low is not None else ""
        raise ValidationError(f"{name} must be {kind}{bound}; got {value!r}")


def check_data(model, X, y, what="training"):
    """Device inputs and targets for host (or device) ``X`` and labels ``y``, validated."""
    Xd = model.inputs(X, name={"training": "X", "test": "X_test", "val": "X_val"}.get(what, "X"))
    n = Xd.shape[0]
    if n == 0:
        raise ValidationError(f"the {what} data is empty (X has 0 rows)")
    if len(y) != n:
        raise ValidationError(f"X and y must have the same number of samples; got {n} and {len(y)} ({what} data)")
    t = model.targets(y)
    if not np.all(np.isfinite(t)):
        raise ValidationError(f"the {what} targets y contain NaN or infinity")
    return Xd, model.backend.asarray(t, model.dtype)


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
    Xd, Td = check_data(model, X, y, "evaluation")
    return evaluate_device(model, Xd, Td, np.asarray(y), batch_size)


def evaluate_device(model, Xd, Td, y, batch_size=10000):
    """:func:`evaluate` on device arrays ``Xd``, ``Td`` (host labels ``y`` for the accuracy)."""
    xp, n = model.xp, Xd.shape[0]
    width = max(model.sizes) * (model.n_models or 1) * np.dtype(model.dtype).itemsize
    rows_per_pass = max(1, min(batch_size, EVAL_BYTES // width))
    losses, preds = [], []
    with model.backend.quiet_overflow():
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
    return results if model.n_models is not None else results[0]


# -- training ------------------------------------------------------------------------------------
def fit(
    model,
    X,
    y,
    *,
    epochs: int = 1,
    lr=0.01,
    batch_size: int = 1,
    shuffle: bool | None = None,
    seed=None,
    X_test=None,
    y_test=None,
    validation=None,
    compile: bool | None = None,
    progress: bool | None = None,
    on_epoch=None,
    initial_epoch: int = 0,
    sample_chunk: int = SAMPLE_CHUNK,
    unroll: int = 1,
):
    """Train ``model`` in place with SGD and return its history.

    Parameters
    ----------
    model : MLP or Stack
        The network(s) to train; a stack trains all its networks by the same operations.
    X, y : arrays
        Training inputs (n, n_inputs) and labels (n,) or targets (n, n_outputs), host or device.
    epochs : int
        Train up to this epoch (0 trains nothing).
    lr : float or sequence of float
        Learning rate; a stack takes one per network (or one for all).
    batch_size : int
        Samples per SGD step. ``1`` without shuffling is the textbook per-sample algorithm.
    shuffle : bool, optional
        Reshuffle every epoch; defaults to ``batch_size > 1``. Epoch ``e`` is shuffled with
        ``numpy.random.default_rng([seed, e])``, so every backend sees the same batches.
    seed : int or sequence of int, optional
        Shuffling seed; defaults to the model's seed (a stack: each network's own).
    X_test, y_test : arrays, optional
        Scored after every epoch (``test_loss``, ``test_accuracy``).
    validation : tuple (X_val, y_val), optional
        Scored after every epoch (``val_loss``, ``val_accuracy``).
    compile : bool, optional
        Run each epoch as one compiled call where the backend has a compiler (JAX: ``jit`` +
        ``lax.scan`` of the very same step); defaults to where it can.
    progress : bool, optional
        Draw a progress bar (default: when stderr is a terminal).
    on_epoch : callable, optional
        Called with each epoch's record (a stack: the list of its networks' records, ``None`` for a
        network that has diverged).
    initial_epoch : int
        Continue an interrupted run: epochs ``initial_epoch + 1 .. epochs`` are trained, each shuffled as
        in an uninterrupted run, so resuming from a checkpoint ends with the same weights.
    sample_chunk : int
        Samples per call of the per-sample kernel (:func:`xpnet.kernels.sample_steps`) at batch size 1;
        1 runs plain steps.
    unroll : int
        Calls per iteration of a compiled epoch's loop (JAX's ``lax.scan`` unroll).

    Returns
    -------
    list of dict, or list of list of dict for a stack
        One record per epoch: ``epoch``, ``train_loss`` (the mean per-sample loss over the epoch, each
        sample's loss taken as its batch was trained), ``test_loss``, ``test_accuracy`` (``None``
        without test data), ``val_loss`` and ``val_accuracy`` with ``validation``,
        ``samples_per_second`` (the training loop only), ``seconds`` and ``weight_change`` (the L2 norm
        of each layer's weight change over the epoch).

    Raises
    ------
    DivergenceError
        One network's loss or weights became non-finite; it keeps the last finite weights, and
        ``error.history`` holds the finished epochs. A stack does not raise: the network is frozen with
        its last finite weights, ``stack.diverged[k]`` says where, and the others train on.
    ValidationError
        A bad argument or input, before any training.
    """
    K = model.n_models
    if not model.backend.can_train:
        raise ValidationError(f"backend {model.backend.name!r} cannot train (its arrays hold no values to read back); "
                              "it runs the forward pass only")
    check_number("epochs", epochs, low=0, integer=True)
    check_number("initial_epoch", initial_epoch, low=0, integer=True)
    if initial_epoch > epochs:
        raise ValidationError(f"initial_epoch must be at most epochs ({epochs}); got {initial_epoch}")
    lrs = _per_model("lr", lr, K)
    for value in lrs:
        check_number("lr", value)
        if value <= 0:
            raise ValidationError(f"lr must be > 0; got {value!r}")
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("sample_chunk", sample_chunk, low=1, integer=True)
    check_number("unroll", unroll, low=1, integer=True)
    seeds = model.seeds if seed is None else _per_model("seed", seed, K)
    Xd, Td = check_data(model, X, y)
    n = Xd.shape[0]
    if batch_size > n:
        raise ValidationError(f"batch_size must be at most the number of samples ({n}); got {batch_size}")
    smallest = min(model.backend.min_batch_size, n)
    if batch_size < smallest:
        raise ValidationError(f"backend {model.backend.name!r} builds a task graph per step; batch_size must be at "
                              f"least {smallest} there (the full batch is best); got {batch_size}")
    if (X_test is None) != (y_test is None):
        raise ValidationError("X_test and y_test must be given together")
    sets = {} if X_test is None else {"test": (X_test, y_test)}
    if validation is not None:
        sets["val"] = validation
    scored = {k: (*check_data(model, X, y, k), np.asarray(y)) for k, (X, y) in sets.items()}
    # A full batch is the same gradient in any order: shuffling it would only copy the data every step.
    shuffle = (batch_size > 1 if shuffle is None else bool(shuffle)) and batch_size < n
    trainer = Trainer(
        model, Xd, Td, lr=lrs, batch_size=int(batch_size), shuffle=shuffle, seeds=seeds,
        compile=model.backend.can_compile if compile is None else bool(compile), sample_chunk=sample_chunk, unroll=unroll,
    )
    histories: list[list[dict]] = [[] for _ in lrs]
    for epoch in range(int(initial_epoch) + 1, int(epochs) + 1):
        try:
            result = trainer.epoch(epoch, progress=progress, label=f"epoch {epoch}/{epochs}")
        except DivergenceError as exc:
            exc.history = histories[0]
            raise
        evaluations = {name: evaluate_device(model, *data) for name, data in scored.items()}
        records = []
        for k in range(len(lrs)):
            if k in trainer.diverged:
                records.append(None)
                continue
            record = {"epoch": epoch, "train_loss": float(result["train_loss"][k]),
                      "test_loss": None, "test_accuracy": None}
            for name, scores in evaluations.items():
                score = scores[k] if K is not None else scores
                record[f"{name}_loss"], record[f"{name}_accuracy"] = score["loss"], score.get("accuracy")
            record.update(samples_per_second=result["samples_per_second"], seconds=result["seconds"],
                          weight_change=[float(c) for c in result["weight_change"][:, k]])
            histories[k].append(record)
            records.append(record)
        if on_epoch is not None:
            on_epoch(records if K is not None else records[0])
    if K is not None:
        model.diverged = [{k: v for k, v in trainer.diverged[i].items() if k != "kept"} if i in trainer.diverged
                          else None for i in range(K)]
        return histories
    return histories[0]


def _per_model(name, value, K):
    """One value per network: a scalar repeated, or a sequence of length K (K None: one network)."""
    if K is None:
        return [value]
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * K
    if len(values) != K:
        raise ValidationError(f"{name} takes one value or one per network ({K}); got {len(values)}")
    return values


def _gather(xp, X, T, idx):
    """Rows ``idx`` of ``X`` and ``T``: ``idx`` of shape (B,) is one row list shared by every network,
    (K, B) one per network, giving (K, B, n) batches."""
    if idx.ndim == 1:
        return xp.take(X, idx, axis=0), xp.take(T, idx, axis=0)
    K, B = idx.shape
    flat = xp.reshape(idx, (K * B,))
    return (xp.reshape(xp.take(X, flat, axis=0), (K, B, X.shape[1])),
            xp.reshape(xp.take(T, flat, axis=0), (K, B, T.shape[1])))


def _norm(xp, d):
    """The L2 norm of each network's ``d``."""
    return xp.sqrt(model_sum(xp, d * d))


def _advance_fn(per_sample):
    return kernels.sample_steps if per_sample else kernels.train_step


@functools.lru_cache(maxsize=64)
def _compiled_epoch(backend, net, per_sample, steps, size, shuffled, unroll):
    """The whole calls of an epoch as one compiled function ``(carry, data) -> carry``, with
    ``carry = (params, summed losses)`` and ``data = (X, T, order, lr)``; each call's rows start at a
    position computed from the loop counter (:meth:`~xpnet.backends.Backend.traced_rows`)."""
    xp, advance = backend.xp, _advance_fn(per_sample)

    def body(carry, data, k):
        params, total = carry
        X, T, order, lr = data
        if shuffled:
            batch = _gather(xp, X, T, backend.traced_rows(order, k * size, size, axis=-1))
        else:
            batch = backend.traced_rows(X, k * size, size), backend.traced_rows(T, k * size, size)
        params, loss = advance(xp, net, params, *batch, lr, inplace=False)
        return params, total + loss

    return backend.compile_epoch(body, steps, unroll)


class Trainer:
    """SGD epochs over device data for one network or a stack: the batches, the step and the last
    finite checkpoint.

    Per-sample training (batch size 1) runs :func:`~xpnet.kernels.sample_steps` over ``sample_chunk``
    samples per call; larger batches run :func:`~xpnet.kernels.train_step`. With ``compile`` (JAX) the
    whole calls of an epoch are one compiled call. The running loss of each network is read every
    :data:`CHECK_SAMPLES` samples; a network whose loss or weights became non-finite is replayed alone
    from the last finite checkpoint to find the step that went bad. One network then raises
    :class:`DivergenceError` with the weights from before that step; in a stack that network is frozen
    with those weights (learning rate 0, weights restored at every check) and listed in ``diverged``,
    while the others train on untouched: nothing a kernel computes mixes networks.
    """

    def __init__(self, model, X, T, *, lr, batch_size, shuffle=False, seeds=None, compile=False,
                 sample_chunk=SAMPLE_CHUNK, unroll=1):
        self.model, self.backend, self.xp, self.net = model, model.backend, model.xp, model.network
        self.K = model.n_models
        self.X, self.T, self.n = X, T, X.shape[0]
        self.lr = np.asarray(lr, dtype=np.float64).reshape(-1)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.seeds = list(model.seeds if seeds is None else seeds)
        self.compile = compile and self.backend.can_compile
        self.per_sample = batch_size == 1 and sample_chunk > 1  # chunks of samples, else plain steps
        self.size = min(sample_chunk, self.n) if self.per_sample else batch_size
        self.unroll = unroll
        self.inplace = self.backend.supports_inplace
        # The namespace of the weights, for the checks and the running loss: the backend's, but NumPy's
        # where training runs by chunks (Dask: the weights are host arrays, and a graph per check would
        # cost a round trip to the cluster).
        self.wxp = array_namespace(model.params[0][0]) if self.backend.trains_by_chunks else self.xp
        self.diverged: dict[int, dict] = {}  # network index -> where it diverged, and its kept weights
        for k, where in enumerate(getattr(model, "diverged", None) or []):
            if where:  # diverged in an earlier fit: stays frozen
                self.diverged[k] = {**where, "kept": self._copy(self._one(model.params, k))}
        self.order = None

    # -- per-network views --------------------------------------------------------------------------
    def _device_lr(self):
        """The learning rates as the kernels take them: a float for one network, a (K, 1, 1) array for
        a stack (0 for a frozen network); a 0-d array when compiling, so it is traced, not baked in."""
        if self.K is None:
            return self.backend.asarray(self.lr[0], self.model.dtype) if self.compile else float(self.lr[0])
        lr = np.where([k in self.diverged for k in range(self.K)], 0.0, self.lr)
        return self.backend.asarray(lr.reshape(self.K, 1, 1), self.model.dtype)

    def _one(self, params, k):
        """Network ``k``'s parameters (all of them for a single network)."""
        return params if self.K is None else [(W[k, ...], b[k, ...]) for W, b in params]

    def _copy(self, params):
        return [(self.backend.copy(W), self.backend.copy(b)) for W, b in params]

    def _rows(self, start, stop, k=None):
        """The samples at positions ``start .. stop`` of the epoch, for the whole stack or network ``k``."""
        xp = self.xp
        if self.order is None:
            return self.X[start:stop, :], self.T[start:stop, :]
        order = self.order if k is None or self.order.ndim == 1 else self.order[k, :]
        return _gather(xp, self.X, self.T, order[..., start:stop])

    def _epoch_order(self, epoch):
        """Each network's sample order for ``epoch``: (n,) when they share it, (K, n) otherwise."""
        if not self.shuffle:
            return None
        seeds = self.seeds if len(set(self.seeds)) > 1 else self.seeds[:1]
        orders = np.stack([np.random.default_rng([s, epoch]).permutation(self.n) for s in seeds]).astype(np.int32)
        return self.backend.asarray(orders[0] if len(seeds) == 1 else orders)

    def _advance(self, params, X, T, lr):
        if self.backend.trains_by_chunks:
            return self._chunked_step(params, X, T, lr)
        return _advance_fn(self.per_sample)(self.xp, self.net, params, X, T, lr, inplace=self.inplace)

    def _chunked_step(self, params, X, T, lr):
        """One SGD step on a batch split into chunks (Dask): every chunk's summed loss and gradients by
        the same kernels on the host, added up, then the update; the same step as one batch, up to the
        order of the additions."""
        net = self.net

        def chunk(x, t):
            loss, grads = kernels.loss_and_gradients(array_namespace(x), net, params, x, t)
            rows = x.shape[0]  # means over the chunk, back to sums
            return loss * rows, [(dW * rows, db * rows) for dW, db in grads]

        parts = self.backend.map_chunks(chunk, X, T)
        scale = lr / X.shape[0]
        steps = [(sum(p[1][l][0] for p in parts) * scale, sum(p[1][l][1] for p in parts) * scale)
                 for l in range(len(params))]
        return kernels.sgd(params, steps, inplace=True), sum(p[0] for p in parts)

    def _finite(self, params, running=None):
        """Host booleans, one per network: every weight and bias (and the running loss) finite."""
        xp = self.wxp
        parts = [model_sum(xp, a) for pair in params for a in pair] + ([] if running is None else [running])
        values = self.backend.to_host(xp.stack(parts)).reshape(len(parts), -1)
        return np.isfinite(values).all(axis=0)

    # -- one epoch ----------------------------------------------------------------------------------
    def epoch(self, epoch, progress=False, label="") -> dict:
        """Train one epoch in place; returns ``train_loss`` (per network), ``weight_change`` (layers x
        networks), ``seconds`` and ``samples_per_second``."""
        with self.backend.quiet_overflow():
            return self._epoch(epoch, progress, label)

    def _epoch(self, epoch, progress, label):
        backend, n, size = self.backend, self.n, self.size
        self.order = self._epoch_order(epoch)
        params = self.model.params
        start = self._copy(params)
        self.saved = (0, start)
        lead = () if self.K is None else (self.K,)
        running = self.wxp.zeros(lead, dtype=getattr(self.wxp, self.model.dtype), device=array_device(params[0][0]))
        lr = self._device_lr()
        calls = -(-n // size)
        check_every = max(1, CHECK_SAMPLES // size)
        t0 = time.perf_counter()
        with Progress(n, label, enabled=progress) as bar:
            first = 0
            if self.compile and n // size:
                first = n // size
                run = _compiled_epoch(backend, self.net, self.per_sample, first, size, self.shuffle, self.unroll)
                params, running = run((params, running), (self.X, self.T, self.order, lr))
                params, lr = self._check(params, running, lr, first * size, epoch, last=first == calls)
                bar.update(first * size)
            for k in range(first, calls):
                done = min(n, (k + 1) * size)
                params, loss = self._advance(params, *self._rows(k * size, done), lr)
                running = running + loss
                if (k + 1) % check_every == 0 or done == n:
                    params, lr = self._check(params, running, lr, done, epoch, last=done == n)
                    bar.update(done - bar.done)
            backend.synchronize(*params[-1])
        seconds = time.perf_counter() - t0
        self.model.params = params
        change = [self.backend.to_host(_norm(self.wxp, W - W0)) for (W, _), (W0, _) in zip(params, start)]
        return {
            "train_loss": np.atleast_1d(backend.to_host(running)) / n,
            "weight_change": np.array([np.atleast_1d(c) for c in change]),
            "samples_per_second": n / seconds,
            "seconds": seconds,
        }

    def _check(self, params, running, lr, position, epoch, last=False):
        """At sample ``position``: find the networks that went non-finite since the last checkpoint,
        freeze them (a single network raises), and make this the new checkpoint (unless it is the
        epoch's ``last``). Returns the parameters and learning rates (``lr``, or new ones with the newly
        frozen networks' at 0) to go on with."""
        finite = self._finite(params, running)
        bad = [k for k in range(len(finite)) if not finite[k] and k not in self.diverged]
        for k in bad:
            kept, where = self._locate(k, position, epoch)
            if self.K is None:
                self.model.params = kept
                raise DivergenceError(
                    f"training diverged at {where['at']}: {where['problem']}; kept the last finite weights "
                    "(from before that step); try a smaller learning rate",
                    epoch=epoch, step=where["step"], lr=where["lr"],
                )
            self.diverged[k] = {**where, "kept": kept}
        if self.diverged:
            params = self._restore_frozen(params)
        if not last:
            self.saved = (position, self._copy(params))
        return params, self._device_lr() if bad else lr

    def _restore_frozen(self, params):
        """The stack's parameters with every frozen network's slot set back to its kept weights."""
        xp = self.xp
        for k, info in self.diverged.items():
            mask = np.zeros((self.K, 1, 1), dtype=bool)
            mask[k] = True
            mask = self.backend.asarray(mask)
            params = [(xp.where(mask, kW, W), xp.where(mask, kb, b)) for (W, b), (kW, kb) in zip(params, info["kept"])]
        return params

    def _locate(self, k, stop, epoch):
        """Replay network ``k`` alone from the last checkpoint up to sample ``stop`` and find the first
        step that went bad: its weights from before that step, and where (``at``, ``step``, ``lr``,
        ``problem``, ``epoch``). The batches are deterministic, so the replay retraces the computation;
        inside the first bad call, ever longer prefixes of it (one step of ``batch_size`` more each)
        locate the step."""
        position, saved = self.saved
        kept = self._copy(self._one(saved, k))
        lr = float(self.lr[0 if self.K is None else k])
        size, n, batch = self.size, self.n, self.batch_size
        count, problem = 0, "a non-finite value appeared"  # kept only on a non-deterministic backend
        while position < stop:
            available = min(size, n - position)
            new, bad = self._attempt(kept, *self._rows(position, position + available, k), lr)
            if bad is None:
                kept, position = new, position + available
                continue
            before, count, problem = kept, available, bad
            for prefix in range(batch, available, batch):  # the steps inside the call
                new, bad = self._attempt(before, *self._rows(position, position + prefix, k), lr)
                if bad is not None:
                    count, problem = prefix, bad
                    break
                kept = new
            break
        step, steps = position // batch + -(-count // batch), -(-n // batch)
        at = f"epoch {epoch}, step {step} of {steps} (lr={lr:g})"
        return kept, {"epoch": epoch, "step": step, "lr": lr, "problem": problem, "at": at}

    def _attempt(self, params, X, T, lr):
        """One call on a copy of one network's ``params``: the new parameters and what went wrong
        (``None`` if nothing)."""
        new, loss = self._advance(self._copy(params), X, T, lr)
        loss = float(loss)
        if not math.isfinite(loss):
            return new, f"the loss became {loss}"
        if not self._finite(new).all():
            return new, "a weight became non-finite"
        return new, None
