"""One path from a run specification -- or ``fit``'s arguments -- to a trained network.

A :class:`Session` holds a network, its data checked and on the device, and what to train; it resumes from
a :class:`Checkpoint` when asked (after checking that the file is one of this very run), trains
(:func:`xpnet.train.train`, writing the checkpoint every N epochs and when training ends) and scores.
``fit`` trains through it, and :func:`xpnet.runs.start` builds it from run specifications for ``xpnet
train``, ``xpnet sweep`` and the benchmark's learner; the commands only parse, call and print.

>>> from xpnet import runs, spec                                                  # doctest: +SKIP
>>> session = runs.start([spec.Run()], spec.load_data(spec.Data()), checkpoint=Checkpoint("w.npz", every=1),
...                      resume=True)
>>> session.finished or session.train()
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import schedules, spec, state, train
from .errors import DataError, ValidationError
from .io import check_writable, load_weights


@dataclass
class Checkpoint:
    """Where a run's weights and state are written (atomically): after every ``every`` epochs (``None``:
    only when training ends) and when training ends or diverges. ``meta`` is written each time (the run
    specification, what identifies the run)."""

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


def run_meta(run: spec.Run) -> dict:
    """What a file of ``run`` records to be read back (``evaluate``, ``export``) and resumed."""
    return {"run": run.to_dict(), "identity": run.record()}


def fit_identity(model, training, optimizers, seeds, n: int) -> dict:
    """What identifies a run of ``fit`` (a checkpoint of it resumes only the same): the network's
    configuration, the optimizer's resolved settings (per network of a stack), the seeds, batching, epochs
    and the number of training rows."""
    once = {o: o.resolved() for o in set(optimizers)}  # once per distinct setting, not per network
    resolved = [once[o] for o in optimizers]
    options = resolved[0] if model.n_models is None else {k: [r[k] for r in resolved] for k in resolved[0]}
    return {**model.config(), **options, "seeds": list(seeds), "batch_size": training.batch_size,
            "shuffle": training.shuffle, "epochs": training.epochs, "samples": n}


class Session:
    """A network, its data on the device and what to train, resumed from ``checkpoint`` when ``resume``
    (and the file exists): ``initial_epoch`` is then the epochs it holds, ``finished`` says why nothing is
    left to train (``None`` otherwise), ``note`` what the resume did. :meth:`train` trains and scores
    (``final``: name -> one result per network, for the ``test`` and ``val`` sets)."""

    def __init__(self, model, data: train.Sets, training, optimizers, seeds, *, checkpoint: Checkpoint | None = None,
                 resume: bool = False, identity: dict | None = None, run: spec.Run | None = None):
        self.model, self.data, self.training = model, data, training
        self.optimizers, self.seeds = list(optimizers), list(seeds)
        self.checkpoint, self.run, self.identity = checkpoint, run, None
        self.initial_epoch, self.finished, self.note, self.final = 0, None, None, {}
        if resume and checkpoint is None:
            raise ValidationError("resuming needs a checkpoint (--save PATH, or checkpoint=PATH)")
        if checkpoint is not None:  # what the file records of its run, and what a resume compares
            self.identity = _json(identity if identity is not None else fit_identity(model, training, self.optimizers,
                                                                                      self.seeds, data.n))
            check_writable(checkpoint.path, "the checkpoint")
            checkpoint.meta = {**checkpoint.meta, "identity": self.identity}
            if resume:
                self._resume()
        schedules.check(self.optimizers, training.epochs, data.n, model.dtype, self.initial_epoch + 1)

    # -- resuming ------------------------------------------------------------------------------------
    def _resume(self) -> None:
        path = self.checkpoint.path
        if not path.exists():
            self.note = f"no checkpoint at {path} yet; starting from the beginning"
            return
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
        self.model.state, self.model.meta = saved, meta
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

    def _check_same_run(self, path, meta) -> None:
        """The file is a checkpoint of this run: every setting equal but what :data:`xpnet.spec.RESUMABLE`
        names (and the epochs not at all where a cosine schedule spans them)."""
        if "epochs_done" not in meta:
            raise ValidationError(f"{path} is not a checkpoint of this run (no epochs_done entry)")
        there = meta.get("identity")
        if self.run is not None and there is None:  # written before files recorded their identity
            try:
                saved = spec.from_meta(meta)
            except ValidationError as exc:
                raise DataError(f"{path}: damaged 'run' entry ({exc})") from None
            if "run" not in meta and saved.data.validation and saved.data.split_seed != self.run.data.split_seed:
                raise ValidationError(f"{path} was written before --split-seed existed: its --validation rows were "
                                      f"chosen with --seed {saved.seed}; resume it with --split-seed "
                                      f"{saved.data.split_seed}")
            there = _json(saved.record())
        if not isinstance(there, dict):
            raise ValidationError(f"{path} is not a checkpoint of this run (it records no run it belongs to)")
        here = self.identity
        differ = [(k, there.get(k), v) for k, v in here.items() if there.get(k) != v and k not in spec.RESUMABLE]
        differ += [(k, v, None) for k, v in there.items() if k not in here and k not in spec.RESUMABLE]
        if differ:
            what = ", ".join(f"{k} {a!r} there, {b!r} here" for k, a, b in differ)
            raise ValidationError(f"{path} is not a checkpoint of this run ({what})")
        cosine = "cosine" in (here.get("schedule") if isinstance(here.get("schedule"), list) else [here.get("schedule")])
        if cosine and there.get("epochs") != here.get("epochs"):
            raise ValidationError(f"{path} anneals its learning rate over --epochs {there.get('epochs')} (--schedule "
                                  f"cosine); a resume cannot change that (asked for {here.get('epochs')})")

    # -- training ------------------------------------------------------------------------------------
    def train(self, progress: bool | None = None, on_epoch=None, order=None) -> list[list[dict]]:
        """Train the epochs left (writing the checkpoint every ``every`` epochs and when training ends),
        score the ``test`` and ``val`` sets (``final``) and return one history per network (this call's
        epochs). A single network that diverges raises :class:`~xpnet.errors.DivergenceError` after the
        checkpoint is written with its last finite weights."""
        if self.finished:
            return [[] for _ in self.optimizers]
        histories = train.train(self.model, self.data, self.training, self.optimizers, self.seeds,
                                initial_epoch=self.initial_epoch, progress=progress, on_epoch=on_epoch, order=order,
                                checkpoint=self.checkpoint)
        self.final = self.scores()
        if self.checkpoint is not None:
            extra = {}
            if "test" in self.final and "accuracy" in self.final["test"][0]:
                accuracies = [r["accuracy"] for r in self.final["test"]]
                extra["test_accuracy"] = accuracies[0] if self.model.n_models is None else accuracies
            self.checkpoint.write(self.model, **extra)
        return histories

    def scores(self) -> dict:
        """Each scored set's results now: name -> one dict per network (:func:`xpnet.train.scores`)."""
        return {name: train.scores(self.model, *scored) for name, scored in self.data.scored.items()}


def _json(value):
    """``value`` as it reads back from a file's JSON (tuples as lists), so that the two compare."""
    return json.loads(json.dumps(value))


__all__ = ["Session", "Checkpoint", "run_meta", "fit_identity"]
