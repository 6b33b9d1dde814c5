"""From run specifications to a session: the network(s) a specification describes, built, with the
data on their device (:class:`xpnet.session.Session`). ``xpnet train``, ``xpnet sweep`` and the benchmark's
learner start here; ``fit`` starts its session from the network it is called on.
"""

from __future__ import annotations

from . import spec, train
from .errors import ValidationError
from .mlp import MLP
from .session import Checkpoint, Session, run_meta
from .stack import Stack


def build(runs, stack: bool = False):
    """The network of one run (an :class:`~xpnet.mlp.MLP`), or the :class:`~xpnet.stack.Stack` of several
    that share a stack key (``stack``: a stack even of one), with their initial weights."""
    return Stack.from_runs(runs) if stack or len(runs) > 1 else MLP.from_spec(runs[0])


def start(runs, arrays: spec.Arrays, *, stack: bool = False, checkpoint: Checkpoint | None = None,
          resume: bool = False) -> Session:
    """The session of run specifications ``runs`` (one network, or a stack) on host ``arrays``
    (:func:`xpnet.spec.load_data`): built, the data checked and moved to the device, resumed from
    ``checkpoint`` when ``resume`` (one run only: a stack's networks are saved one by one)."""
    model = build(runs, stack)
    data = train.prepare(model, arrays.X, arrays.y, test=(arrays.X_test, arrays.y_test), validation=arrays.validation)
    single = isinstance(model, MLP)
    if checkpoint is not None:
        if not single:
            raise ValidationError("a checkpoint holds one run; a stack's networks are saved one by one")
        checkpoint.meta = {**checkpoint.meta, **run_meta(runs[0])}
    return Session(model, data, runs[0].training, [r.optimizer for r in runs], [r.seed for r in runs],
                   checkpoint=checkpoint, resume=resume, identity=runs[0].record() if single else None,
                   run=runs[0] if single else None)


__all__ = ["build", "start"]
