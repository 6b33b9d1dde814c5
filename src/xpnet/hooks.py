"""What the epoch loop (:class:`xpnet.train.Trainer`) calls as training goes: hooks, in the manner of Keras'
callbacks. Everything that happens around the steps attaches here -- the learning-rate schedules and early
stopping (:mod:`xpnet.schedules`), checkpoints (:class:`xpnet.session.Checkpoint`), the progress bar, the
command line's report, a sweep's progress, the benchmark's timing and scoring -- so that ``xpnet train``,
``xpnet sweep``, ``fit`` and ``xpnet bench`` run one loop.

The loop calls, for each hook in order:

- ``on_train_begin(loop)`` once, before the first epoch;
- ``on_epoch_begin(loop, epoch)``; ``on_check(loop, epoch, position)`` at each of the guard's reads of the
  host inside the epoch (every :data:`xpnet.train.CHECK_SAMPLES` rows, and its end), off the epoch's
  clock, with the model's weights up to date; ``on_epoch_end(loop, epoch, records)`` once the epoch is
  trained and scored (``records``: one per network, ``None`` for a frozen one);
- ``on_error(loop, error)`` when an epoch ends in an exception (a divergence, Ctrl-C), which the loop
  then raises;
- ``on_train_end(loop)`` once, after the last epoch (or the one where training stopped).

A hook that ``decides`` (the schedules, early stopping) is called first at an epoch's and training's end;
then the loop brings the run's state (:class:`xpnet.state.TrainState`, of which it is the one writer) up to
date and scores the final weights, and only then are the other hooks called, so that a checkpoint or a
report sees the state the decisions left. ``loop`` is the trainer: ``loop.model``, ``loop.state``,
``loop.epochs`` (the run's last epoch), ``loop.lrs`` (this epoch's learning rates), ``loop.done``,
``loop.final`` (the scores at the end), ``loop.pass_rows`` (rows this pass trains).

:func:`hooked` adds hooks to every loop that runs inside a ``with`` block, in this process: a counter, a
logger, a profiler.
"""

from __future__ import annotations

import contextlib

from .progress import Progress


class Hook:
    """A hook that does nothing; subclasses override what they need."""

    #: Called before the loop brings the run's state up to date (it decides what the state then says).
    decides = False

    def on_train_begin(self, loop) -> None:
        pass

    def on_epoch_begin(self, loop, epoch: int) -> None:
        pass

    def on_check(self, loop, epoch: int, position: int) -> None:
        pass

    def on_epoch_end(self, loop, epoch: int, records: list) -> None:
        pass

    def on_error(self, loop, error: BaseException) -> None:
        pass

    def on_train_end(self, loop) -> None:
        pass


#: The hooks :func:`hooked` adds to every loop.
EXTRA: list[Hook] = []


@contextlib.contextmanager
def hooked(*hooks: Hook):
    """Every epoch loop that runs inside the block (in this process) also calls ``hooks``, after its own."""
    EXTRA.extend(hooks)
    try:
        yield hooks
    finally:
        for hook in hooks:
            EXTRA.remove(hook)


def checks_of(hooks) -> list[Hook]:
    """The hooks of ``hooks`` that do something at the guard's checks (the loop calls only those there)."""
    return [h for h in hooks if type(h).on_check is not Hook.on_check]


class OnEpoch(Hook):
    """``fn(records)`` after every epoch (``fit(on_epoch=...)``, ``Session.train(on_epoch=...)``)."""

    def __init__(self, fn):
        self.fn = fn

    def on_epoch_end(self, loop, epoch, records):
        self.fn(records)


class ProgressBar(Hook):
    """One bar per epoch on stderr (``enabled``: ``None`` when stderr is a terminal)."""

    def __init__(self, enabled: bool | None = None):
        self.enabled, self.bar = enabled, None

    def on_epoch_begin(self, loop, epoch):
        self.bar, self.done = Progress(loop.pass_rows, f"epoch {epoch}/{loop.epochs}", enabled=self.enabled), 0

    def on_check(self, loop, epoch, position):
        self.bar.update(position - self.done)
        self.done = position

    def on_epoch_end(self, loop, epoch, records):
        self.bar.close()

    def on_error(self, loop, error):
        if self.bar is not None:
            self.bar.close()


__all__ = ["Hook", "hooked", "OnEpoch", "ProgressBar", "EXTRA"]
