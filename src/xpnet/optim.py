"""Update rules: how the weights move, given their gradients. Pure functions of ``xp`` with their state.

A rule is a small frozen object with

- ``scale(hyper)``: a factor the backward pass may fold into its (small) output delta, so that the
  gradients it returns are already the steps of plain SGD (the learning rate) -- or 1;
- ``init_state(xp, params)``: the optimizer state, one entry per layer (``()`` where there is none),
  arrays on the parameters' device;
- ``update(xp, params, grads, state, hyper, inplace)`` -> ``(params, state)`` for any leading model axis;
- ``first_layer(xp, X, param0, state0, hyper)``: for per-sample training by chunks
  (:func:`xpnet.kernels.sample_steps`), an object that carries the first layer's deferred updates over a
  chunk of rows -- ``row()`` (the next row's first pre-activation, its updates so far included),
  ``after(k, d)`` (row ``k``'s first-layer delta, as scaled by ``scale``) and ``finish(inplace)``
  (the first layer's ``(W, b)`` and state after the chunk).

``hyper`` maps each hyperparameter to a Python float (one network, stepped eagerly), a 0-d array (one
network inside a compiled epoch: traced, not baked in) or a (K, 1, 1) array (a stack: one per network).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import column_sum, transpose


@dataclass(frozen=True)
class SGD:
    """Plain stochastic gradient descent, ``W -= lr * dW``: the learning rate is folded into the deltas
    (``scale``), so the update is one subtraction per array and per-sample chunks stay exact."""

    name = "sgd"
    #: Hyperparameters, per network.
    hyper_names = ("lr",)

    def scale(self, hyper):
        return hyper["lr"]

    def init_state(self, xp, params) -> list:
        return [() for _ in params]

    def update(self, xp, params, grads, state, hyper, inplace=False):
        """Subtract each layer's step; ``inplace`` updates the given arrays (one pass over each, no new
        allocation), otherwise new arrays are returned (every Array API library, JAX included)."""
        if inplace:
            for (W, b), (dW, db) in zip(params, grads):
                W -= dW
                b -= db
            return params, state
        return [(W - dW, b - db) for (W, b), (dW, db) in zip(params, grads)], state

    def first_layer(self, xp, X, param0, state0, hyper):
        return _DeferredSGD(xp, X, param0, state0)


class _DeferredSGD:
    """The first layer's per-sample SGD updates over a chunk of rows, applied at its end.

    After row ``k`` with first-layer step ``d_k`` the first layer would hold ``W - x_k^T d_k`` and
    ``b - d_k``, which changes every later row ``j``'s pre-activation by ``-(x_j . x_k + 1) d_k``
    (docs/math.md): so the rows' pre-activations are computed once, those still to come corrected after
    each row by that rank-one term, and one product after the rows applies every update."""

    def __init__(self, xp, X, param0, state0):
        W0, b0 = param0
        self.xp, self.X, self.param0, self.state0 = xp, X, param0, state0
        self.first = X @ W0 + b0  # the rows' pre-activations under the weights the rows start from
        self.gram = X @ transpose(xp, X) + 1.0  # row products; the 1 carries the bias updates
        self.ds = []

    def row(self):
        return self.first[..., :1, :]

    def after(self, k, d):
        if k + 1 < self.X.shape[-2]:  # the later rows see this row's first-layer update
            self.first = self.first[..., 1:, :] - self.gram[..., k + 1 :, k : k + 1] * d
        self.ds.append(d)

    def finish(self, inplace=False):
        D = self.xp.concat(self.ds, axis=-2)
        steps = [(transpose(self.xp, self.X) @ D, column_sum(self.xp, D))]
        (param,), _ = SGD().update(self.xp, [self.param0], steps, [self.state0], {}, inplace)
        return param, self.state0


#: Optimizer name -> its rule.
RULES = {"sgd": SGD()}


def rule_for(optimizers) -> SGD:
    """The one rule every network of a run uses (a stack's networks share their optimizer kind)."""
    return RULES["sgd"]


def hyper(optimizers, backend, dtype, lead=(), frozen=(), traced=False) -> dict:
    """The hyperparameters of ``optimizers`` (one :class:`~xpnet.spec.Optimizer` per network) as the
    kernels take them: floats for one network stepped eagerly, 0-d arrays when ``traced``, (K, 1, 1)
    arrays for a stack (``lead == (K,)``); a ``frozen`` network's learning rate is 0."""
    rule = rule_for(optimizers)
    out = {}
    for name in rule.hyper_names:
        values = np.array([getattr(o, name) for o in optimizers], dtype=np.float64)
        if name == "lr" and frozen:
            values[list(frozen)] = 0.0
        if not lead:
            out[name] = backend.asarray(values[0], dtype) if traced else float(values[0])
        else:
            out[name] = backend.asarray(values.reshape(*lead, 1, 1), dtype)
    return out
