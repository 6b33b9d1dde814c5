"""From run specifications to a session: the network(s) a specification describes, built, with the data on
their device (:class:`xpnet.session.Session`). ``xpnet train``, ``xpnet sweep`` and the benchmark's learner
start here; ``fit``, whose network exists already, starts one step further on, at
:func:`xpnet.session.start`, where every session begins.
"""

from __future__ import annotations

from . import spec
from .mlp import MLP
from .session import Checkpoint, Session
from .session import start as session_start
from .stack import Stack


def build(runs, stack: bool = False):
    """The network of one run (an :class:`~xpnet.mlp.MLP`), or the :class:`~xpnet.stack.Stack` of several
    that share a stack key (``stack``: a stack even of one), with their initial weights."""
    return Stack.from_runs(runs) if stack or len(runs) > 1 else MLP.from_spec(runs[0])


def start(runs, arrays: spec.Arrays, *, stack: bool = False, model=None, checkpoint: Checkpoint | None = None,
          resume: bool = False, order=None, initial_epoch: int = 0) -> Session:
    """The session of run specifications ``runs`` (one network, or a stack's) on ``arrays``: the network
    built (``stack``: a stack even of one) -- or ``model``, which the runs describe -- then
    :func:`xpnet.session.start`."""
    model = build(runs, stack) if model is None else model
    return session_start(runs, arrays, model, checkpoint=checkpoint, resume=resume, order=order,
                         initial_epoch=initial_epoch)


__all__ = ["build", "start"]
