"""One path from run specifications to a trained network.

A :class:`Session` holds a network, its data checked and on the device, the runs that say what to train,
and the one epoch loop that trains them (:class:`xpnet.train.Trainer`); it resumes from a
:class:`Checkpoint` when asked (after checking that the file is one of this very run) and trains with the
hooks its caller attaches (:mod:`xpnet.hooks`). :func:`xpnet.runs.start` builds it -- for ``xpnet
train``, ``xpnet sweep``, ``fit`` and the benchmark's learner alike; the commands only parse, call and
print.

>>> from xpnet import runs, spec                                                  # doctest: +SKIP
>>> session = runs.start([spec.Run()], spec.load_data(spec.Data()), checkpoint=Checkpoint("w.npz", every=1),
...                      resume=True)
>>> session.finished or session.train()
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import checks, schedules, spec, state, train
from .errors import DataError, DivergenceError, ValidationError
from .hooks import Hook, OnEpoch, ProgressBar
from .io import check_writable, load_weights


@dataclass(eq=False)
class Checkpoint(Hook):
    """Where a run's weights and state are written (atomically), as a hook of the epoch loop: after every
    ``every`` epochs before the last (``None``: only when training ends), when training ends (with the
    final test accuracy) and when a single network diverges (with its last finite weights). ``meta`` is
    written each time (the run specification, what identifies the run)."""

    path: Path
    every: int | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.path = Path(self.path)
        if self.every is not None and (isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1):
            raise ValidationError(f"checkpoint_every must be an integer >= 1; got {self.every!r}")

    def due(self, epoch: int) -> bool:
        return self.every is not None and epoch % self.every == 0

    def write(self, model, **meta) -> None:
        state.save(self.path, model, {**self.meta, **meta})

    def on_epoch_end(self, loop, epoch, records):
        if not loop.done and self.due(epoch) and epoch < loop.epochs:
            self.write(loop.model)

    def on_error(self, loop, error):
        if isinstance(error, DivergenceError):
            self.write(loop.model, diverged=str(error))

    def on_train_end(self, loop):
        extra = {}
        if "test" in loop.final and "accuracy" in loop.final["test"][0]:
            accuracies = [r["accuracy"] for r in loop.final["test"]]
            extra["test_accuracy"] = accuracies[0] if loop.model.n_models is None else accuracies
        self.write(loop.model, **extra)


def run_meta(run: spec.Run) -> dict:
    """What a file of ``run`` records to be read back (``evaluate``, ``export``) and resumed."""
    return {"run": run.to_dict(), "identity": run.record()}


def _legacy_fit_identity(model, training, optimizers, seeds, n: int) -> dict:
    """What identified a run of ``fit`` in checkpoints written before ``fit`` made run specifications
    (they resume as they did): the network's configuration, the resolved optimizer settings (per network
    of a stack), the seeds, batching, epochs and the number of training rows."""
    once = {o: o.resolved() for o in set(optimizers)}
    resolved = [once[o] for o in optimizers]
    options = resolved[0] if model.n_models is None else {k: [r[k] for r in resolved] for k in resolved[0]}
    return {**model.config(), **options, "seeds": list(seeds), "batch_size": training.batch_size,
            "shuffle": training.shuffle, "epochs": training.epochs, "samples": n}


class Session:
    """A network, its data on the device and the runs that say what to train (one, or a stack's), resumed
    from ``checkpoint`` when ``resume`` (and the file exists): ``initial_epoch`` is then the epochs it
    holds (or ``initial_epoch``, continuing the network's own state), ``finished`` says why nothing is left
    to train (``None`` otherwise), ``note`` what the resume did. ``trainer`` is the epoch loop;
    :meth:`train` trains the epochs left and ``final`` holds the scores at the end (name -> one result per
    network, for the ``test`` and ``val`` sets)."""

    def __init__(self, model, data: train.Sets, runs, *, checkpoint: Checkpoint | None = None, resume: bool = False,
                 order=None, initial_epoch: int = 0):
        self.model, self.data = model, data
        self.runs = [r if r.training.epochs is not None else r.replace(epochs=spec.auto_epochs(r.data, data.n))
                     for r in runs]
        self.training = self.runs[0].training
        self.optimizers, self.seeds = [r.optimizer for r in self.runs], [r.seed for r in self.runs]
        self.checkpoint, self.identity = checkpoint, None
        self.initial_epoch, self.finished, self.note = 0, None, None
        saved = None
        if resume and checkpoint is None:
            raise ValidationError("resuming needs a checkpoint (--save PATH, or checkpoint=PATH)")
        if checkpoint is not None:  # what the file records of its run, and what a resume compares
            self.identity = _json(spec.identity(self.runs))
            check_writable(checkpoint.path, "the checkpoint")
            checkpoint.meta = {**checkpoint.meta, "identity": self.identity}
            if resume:
                saved = self._resume()
        self.initial_epoch = max(self.initial_epoch, checks.integer("initial_epoch", initial_epoch, 0))
        schedules.check(self.optimizers, self.training.epochs, data.n, model.dtype, self.initial_epoch + 1)
        self.trainer = train.Trainer(model, data, self.training, self.optimizers, self.seeds, order, saved,
                                     self.initial_epoch)

    # -- resuming ------------------------------------------------------------------------------------
    def _resume(self):
        """The run's state the checkpoint holds (its weights set on the model), or ``None`` where there
        is no file yet."""
        path = self.checkpoint.path
        if not path.exists():
            self.note = f"no checkpoint at {path} yet; starting from the beginning"
            return None
        weights, meta, arrays = load_weights(path, extra=True, models=self.model.n_models)
        if meta.get("diverged"):
            raise ValidationError(f"{path} holds a run that diverged ({str(meta['diverged']).split(':')[0]}); "
                                  "start afresh, with a smaller --lr")
        self._check_same_run(path, meta)
        self.model.check_file(path, meta)
        try:
            self.model.set_weights(weights)
        except ValidationError as exc:
            raise DataError(f"{path}: {exc}") from None
        saved = state.restore(path, self.model, meta, arrays)
        self.model.meta = meta
        done, epochs = saved.epochs_done, self.training.epochs
        if saved.finished:
            if "diverged" in saved.finished:
                raise ValidationError(f"{path} holds a run that {saved.finished}; start afresh, with a smaller --lr")
            self.finished = f"{path} holds a run that {saved.finished}; nothing to train"
        elif done >= epochs:
            self.finished = (f"{path} holds all {done} epochs of this run already; nothing to train" if done == epochs
                             else f"{path} holds {done} epochs, more than the {epochs} asked; nothing to train")
        elif any(saved.restored):
            raise ValidationError(f"{path} ended its {done} epochs with the best epoch's weights (early stopping "
                                  f"restored them), not the last: it cannot train on to {epochs} epochs")
        self.initial_epoch = min(done, epochs)
        if not self.finished:
            self.note = f"resuming from {path} after epoch {done}"
        return saved

    def _check_same_run(self, path, meta) -> None:
        """The file is a checkpoint of this run: every setting equal but what :data:`xpnet.spec.RESUMABLE`
        names (and the epochs not at all where a cosine schedule spans them)."""
        if "epochs_done" not in meta:
            raise ValidationError(f"{path} is not a checkpoint of this run (no epochs_done entry)")
        there, single = meta.get("identity"), self.model.n_models is None
        here = self.identity
        if single and there is None:  # written before files recorded their identity
            try:
                saved = spec.from_meta(meta)
            except ValidationError as exc:
                raise DataError(f"{path}: damaged 'run' entry ({exc})") from None
            run = self.runs[0]
            if "run" not in meta and saved.data.validation and saved.data.split_seed != run.data.split_seed:
                raise ValidationError(f"{path} was written before --split-seed existed: its --validation rows were "
                                      f"chosen with --seed {saved.seed}; resume it with --split-seed "
                                      f"{saved.data.split_seed}")
            there = _json(saved.record())
        if not isinstance(there, dict):
            raise ValidationError(f"{path} is not a checkpoint of this run (it records no run it belongs to)")
        if "samples" in there and "sizes" in there:  # a checkpoint of fit's from before its run specifications
            here = _json(_legacy_fit_identity(self.model, self.training, self.optimizers, self.seeds, self.data.n))
        differ = [(k, there.get(k), v) for k, v in here.items() if there.get(k) != v and k not in spec.RESUMABLE]
        differ += [(k, v, None) for k, v in there.items() if k not in here and k not in spec.RESUMABLE]
        if differ:
            what = ", ".join(f"other data (sha256 {a[:12]}… there, {b[:12]}… here)" if k == "sha256" and a and b
                             else f"{k} {a!r} there, {b!r} here" for k, a, b in differ)
            raise ValidationError(f"{path} is not a checkpoint of this run ({what})")
        cosine = "cosine" in (here.get("schedule") if isinstance(here.get("schedule"), list) else [here.get("schedule")])
        if cosine and there.get("epochs") != here.get("epochs"):
            raise ValidationError(f"{path} anneals its learning rate over --epochs {there.get('epochs')} (--schedule "
                                  f"cosine); a resume cannot change that (asked for {here.get('epochs')})")

    # -- training ------------------------------------------------------------------------------------
    def train(self, progress: bool | None = None, on_epoch=None, hooks=()) -> list[list[dict]]:
        """Train the epochs left with the progress bar (``progress``: ``None`` when stderr is a terminal),
        ``on_epoch(records)`` after every epoch, then ``hooks`` and the checkpoint; return one history per
        network (this call's epochs). A single network that diverges raises
        :class:`~xpnet.errors.DivergenceError` after the checkpoint is written with its last finite
        weights."""
        if self.finished:
            return [[] for _ in self.optimizers]
        attached = [*([ProgressBar(progress)] if progress is not False else []),
                    *([OnEpoch(on_epoch)] if on_epoch is not None else []), *hooks,
                    *([self.checkpoint] if self.checkpoint is not None else [])]
        return self.trainer.run(range(self.initial_epoch + 1, self.training.epochs + 1), attached)

    @property
    def final(self) -> dict:
        """The scores when training ended (empty before): name -> one dict per network."""
        return self.trainer.final

    def scores(self) -> dict:
        """Each scored set's results now: name -> one dict per network (:func:`xpnet.train.scores`)."""
        return {name: train.scores(self.model, *scored) for name, scored in self.data.scored.items()}


def start(runs, arrays: spec.Arrays, model, *, checkpoint: Checkpoint | None = None, resume: bool = False,
          order=None, initial_epoch: int = 0) -> Session:
    """The session of run specifications ``runs`` (one network, or a stack's) for ``model`` (which they
    describe) on ``arrays`` (host, as :func:`xpnet.spec.load_data` gives them, or device arrays): the data
    checked and moved to the device, resumed from ``checkpoint`` when ``resume``. ``order`` and
    ``initial_epoch``: as :class:`xpnet.train.Trainer` takes them. The one door of every run: ``xpnet
    train``, ``xpnet sweep`` and the benchmark through :func:`xpnet.runs.start`, ``fit`` directly."""
    data = train.prepare(model, arrays.X, arrays.y, test=(arrays.X_test, arrays.y_test), validation=arrays.validation)
    if checkpoint is not None and model.n_models is None:
        checkpoint.meta = {**checkpoint.meta, **run_meta(runs[0])}
    return Session(model, data, runs, checkpoint=checkpoint, resume=resume, order=order, initial_epoch=initial_epoch)


def _json(value):
    """``value`` as it reads back from a file's JSON (tuples as lists), so that the two compare."""
    return json.loads(json.dumps(value))


__all__ = ["Session", "Checkpoint", "run_meta", "start"]
