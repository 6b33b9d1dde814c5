"""Training and evaluation loops.

Data moves to the device once per :func:`fit`. Each step slices (or, when shuffling, ``xp.take``-s) a
batch on the device, runs forward, backward and the SGD update, and adds the batch loss to a running sum
that also stays on the device. The host reads one number every few thousand samples (to notice
divergence and draw the progress bar) and the epoch's figures once per epoch.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .errors import DivergenceError, ValidationError
from .metrics import accuracy, confusion_matrix
from .mlp import forward, predicted_classes
from .progress import Progress

#: Samples between two host reads of the running loss (divergence check and progress bar).
CHECK_SAMPLES = 4096
#: Samples per call of MLP.sample_steps in per-sample training: each call costs two matrix products
#: before its rows and one after, and its rows' first-layer corrections grow with it. The small net's
#: gain levels off from 16 on (`python benchmarks/profile_step.py chunk`, docs/benchmarks.md).
SAMPLE_CHUNK = 32


def _check_number(name, value, low=None, integer=False):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value) == int(value)
    if not ok or not math.isfinite(value) or (low is not None and value < low):
        kind = "an integer" if integer else "a finite number"
        bound = f" >= {low}" if low is not None else ""
        raise ValidationError(f"{name} must be {kind}{bound}; got {value!r}")


def _check_data(model, X, y, what="training"):
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


def _is_finite(xp, x) -> bool:
    return math.isfinite(float(xp.sum(x)))


def _finite(xp, running, params=()) -> bool:
    """Whether the running loss, and the weights of ``params`` if given, are finite (host reads)."""
    return math.isfinite(float(running)) and all(_is_finite(xp, W) for W, _ in params)


def evaluate(model, X, y, batch_size: int = 10000) -> dict:
    """Mean loss, accuracy and confusion matrix of ``model`` on ``X`` with labels ``y``."""
    Xd, Td = _check_data(model, X, y, "evaluation")
    return _evaluate_device(model, Xd, Td, np.asarray(y), batch_size)


def _evaluate_device(model, Xd, Td, y, batch_size=10000) -> dict:
    xp, n = model.xp, Xd.shape[0]
    total = 0.0
    outputs = []
    with model.backend.quiet_overflow():
        for i in range(0, n, batch_size):
            rows = slice(i, min(i + batch_size, n))  # out-of-range slice ends are not in the standard
            z, _ = forward(xp, model.params, Xd[rows, :], model._activations)
            out, loss = model.head.forward(xp, z, Td[rows, :])
            total = total + loss
            outputs.append(model.backend.to_host(out))
    result = {"loss": float(total) / n, "n": n}
    if y.ndim == 1:  # class labels (2-D y is regression targets: no accuracy)
        pred = predicted_classes(np.concatenate(outputs))
        result["accuracy"] = accuracy(y, pred)
        result["confusion"] = confusion_matrix(y, pred, model.n_classes)
    return result


def fit(
    model,
    X,
    y,
    *,
    epochs: int = 1,
    lr: float = 0.01,
    batch_size: int = 1,
    shuffle: bool | None = None,
    seed: int | None = None,
    X_test=None,
    y_test=None,
    validation=None,
    compile: bool | None = None,
    progress: bool | None = None,
    on_epoch=None,
    initial_epoch: int = 0,
) -> list[dict]:
    """Train ``model`` in place with SGD and return one history record per epoch.

    ``batch_size=1`` without shuffling is the textbook per-sample algorithm; ``shuffle`` defaults to
    ``batch_size > 1``. Epoch ``e`` is shuffled with ``numpy.random.default_rng([seed, e])`` (seed
    defaults to the model's), so every backend sees the same batches. Each record holds ``epoch``,
    ``train_loss`` (the mean per-sample loss over the epoch, each sample's loss taken as its batch was
    trained), ``test_loss`` and ``test_accuracy``
    (``None`` without test data), ``val_loss`` and ``val_accuracy`` when ``validation=(X_val, y_val)``
    is given, ``samples_per_second`` (training loop only), ``seconds`` and
    ``weight_change`` (the L2 norm of each layer's weight change over the epoch). ``on_epoch(record)`` is
    called after each epoch. ``compile`` (default: where the backend can) runs each epoch as one compiled
    call (JAX: ``jit`` + ``lax.scan`` of the very same step).

    ``initial_epoch`` continues an interrupted run: epochs ``initial_epoch + 1 .. epochs`` are trained,
    each shuffled exactly as in an uninterrupted run, so resuming from a checkpoint of the weights after
    epoch ``initial_epoch`` ends with the same weights.

    A non-finite loss or weight raises :class:`~xpnet.errors.DivergenceError` naming the epoch and step;
    the model keeps the last finite weights and ``error.history`` holds the finished epochs.
    """
    _check_number("epochs", epochs, low=0, integer=True)
    _check_number("initial_epoch", initial_epoch, low=0, integer=True)
    if initial_epoch > epochs:
        raise ValidationError(f"initial_epoch must be at most epochs ({epochs}); got {initial_epoch}")
    _check_number("lr", lr)
    if lr <= 0:
        raise ValidationError(f"lr must be > 0; got {lr!r}")
    _check_number("batch_size", batch_size, low=1, integer=True)
    Xd, Td = _check_data(model, X, y)
    n = Xd.shape[0]
    if batch_size > n:
        raise ValidationError(f"batch_size must be at most the number of samples ({n}); got {batch_size}")
    if (X_test is None) != (y_test is None):
        raise ValidationError("X_test and y_test must be given together")
    sets = {} if X_test is None else {"test": (X_test, y_test)}
    if validation is not None:
        sets["val"] = validation
    scored = {k: (*_check_data(model, X, y, k), np.asarray(y)) for k, (X, y) in sets.items()}
    # A full batch is the same gradient in any order: shuffling it would only copy the data every step.
    shuffle = (batch_size > 1 if shuffle is None else shuffle) and batch_size < n
    seed = model.seed if seed is None else seed
    compile = model.backend.can_compile if compile is None else bool(compile)
    history: list[dict] = []
    for epoch in range(int(initial_epoch) + 1, int(epochs) + 1):
        try:
            record = train_epoch(model, Xd, Td, lr=float(lr), batch_size=int(batch_size), shuffle=shuffle,
                                 seed=seed, epoch=epoch, compile=compile, progress=progress,
                                 label=f"epoch {epoch}/{epochs}")
        except DivergenceError as exc:
            exc.history = history
            raise
        record["test_loss"] = record["test_accuracy"] = None
        for name, data in scored.items():
            result = _evaluate_device(model, *data)
            record[f"{name}_loss"], record[f"{name}_accuracy"] = result["loss"], result.get("accuracy")
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history


def train_epoch(model, Xd, Td, *, lr, batch_size, shuffle=False, seed=0, epoch=1, compile=False, progress=False,
                label="") -> dict:
    """One epoch of SGD over device inputs ``Xd`` and targets ``Td``, in place; returns its record
    (``epoch``, ``train_loss``, ``samples_per_second``, ``seconds``, ``weight_change``).

    This is the loop :func:`fit` runs, without its argument checks; the benchmarks time it directly.
    ``compile=True`` runs the whole batches as one compiled call where the backend has a compiler (JAX);
    a divergence is then noticed at the end of the epoch and located by replaying the steps uncompiled.
    """
    with model.backend.quiet_overflow():
        return _epoch(model, Xd, Td, lr, batch_size, shuffle, seed, epoch, compile, progress, label)


def _epoch(model, Xd, Td, lr, batch_size, shuffle, seed, epoch, compile, progress, label) -> dict:
    xp, backend, n = model.xp, model.backend, Xd.shape[0]
    compile = compile and backend.can_compile
    order = backend.asarray(np.random.default_rng([seed, epoch]).permutation(n)) if shuffle else None

    def rows(start, size):
        """The ``size`` samples (fewer at the end) of the epoch from position ``start`` on."""
        stop = min(start + size, n)  # out-of-range slice ends are not in the standard
        if shuffle:
            idx = order[start:stop]
            return xp.take(Xd, idx, axis=0), xp.take(Td, idx, axis=0)
        return Xd[start:stop, :], Td[start:stop, :]

    # Per-sample SGD on a backend that updates in place goes SAMPLE_CHUNK samples per call of
    # model.sample_steps (the same updates as one model.step per sample, with far fewer operations).
    if batch_size == 1 and backend.inplace:
        size, advance = SAMPLE_CHUNK, lambda params, xb, tb: model.sample_steps(params, xb, tb, lr)
    else:
        size, advance = batch_size, lambda params, xb, tb: model.step(params, xb, tb, lr)
    calls = -(-n // size)
    check_every = max(1, CHECK_SAMPLES // size)
    params = model.params
    start = _copy(backend, params)
    saved = (0, start)  # a sample position and the parameters there, known to be finite
    running = 0.0  # the loss summed over the epoch's samples, kept on the device
    t0 = time.perf_counter()
    with Progress(n, label, enabled=progress) as bar:
        first = 0
        if compile:  # every whole batch in one compiled call, checked after it
            first = n // batch_size
            key = (batch_size, lr, shuffle)
            if key not in model._compiled:
                model._compiled[key] = backend.compile_epoch(model.step, batch_size, lr, shuffle)
            params, running = model._compiled[key](params, Xd, Td, order)
            check_every = first  # the remainder batch, if any, is then checked step by step
        for k in range(first, calls):
            params, loss = advance(params, *rows(k * size, size))
            running = running + loss
            done = min(n, (k + 1) * size)
            if (k + 1) % check_every == 0 or done == n:
                if not _finite(xp, running, params if done == n else ()):
                    _diverged(model, advance, rows, n, batch_size, size, saved, done, lr, epoch)
                bar.update(done - bar.done)
                saved = (done, _copy(backend, params))
        if first == calls and not _finite(xp, running, params):
            _diverged(model, advance, rows, n, batch_size, size, saved, n, lr, epoch)
        bar.update(n - bar.done)
        backend.synchronize(*params[-1])
    seconds = time.perf_counter() - t0
    model.params = params
    record = {
        "epoch": epoch,
        "train_loss": float(running) / n,
        "samples_per_second": n / seconds,
        "seconds": seconds,
        "weight_change": [float(xp.sqrt(xp.sum((W - W0) * (W - W0)))) for (W, _), (W0, _) in zip(params, start)],
    }
    return record


def _copy(backend, params):
    """Parameters that later in-place steps will not change."""
    return [(backend.copy(W), backend.copy(b)) for W, b in params]


def _diverged(model, advance, rows, n, batch_size, size, saved, stop, lr, epoch):
    """Find the first step that went bad, keep the weights from before it, and raise.

    ``saved`` is a sample position and the parameters there, known to be finite. The calls of
    ``advance`` (``size`` samples each, from position to position + size) are replayed from there up to
    sample ``stop``; inside the first bad call, ever longer prefixes of it (one step of ``batch_size``
    more each) locate the step. The batches are deterministic, so the replay retraces the same
    computations and the kept weights are those a run stopped before that step ends with.
    """
    position, kept = saved
    count, problem = 0, "a non-finite value appeared"  # kept only on a non-deterministic backend
    while position < stop:
        available = min(size, n - position)
        new, bad = _attempt(model, advance, kept, *rows(position, available))
        if bad is None:
            kept, position = new, position + available
            continue
        before, count, problem = kept, available, bad
        for prefix in range(batch_size, available, batch_size):  # the steps inside the call
            new, bad = _attempt(model, advance, before, *rows(position, prefix))
            if bad is not None:
                count, problem = prefix, bad
                break
            kept = new
        break
    model.params = kept
    step, steps = position // batch_size + -(-count // batch_size), -(-n // batch_size)
    raise DivergenceError(
        f"training diverged at epoch {epoch}, step {step} of {steps} (lr={lr:g}): {problem}; "
        "kept the last finite weights (from before that step); try a smaller learning rate",
        epoch=epoch, step=step, lr=lr,
    )


def _attempt(model, advance, params, X, T):
    """``advance`` on a copy of ``params``: the new parameters and what went wrong (``None`` if nothing)."""
    new, loss = advance(_copy(model.backend, params), X, T)
    loss = float(loss)
    if not math.isfinite(loss):
        return new, f"the loss became {loss}"
    if not all(_is_finite(model.xp, W) for W, _ in new):
        return new, "a weight became non-finite"
    return new, None
