"""Stochastic gradient descent, ``torch.optim.SGD``'s: momentum, Nesterov, coupled weight decay; per-sample
chunks exact by deferring the first layer's updates (in closed form with momentum and decay)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import checks
from ..backends import column_sum, transpose
from ..errors import ValidationError
from .base import MOMENTUM, WEIGHT_DECAY, Rule, Setting, optax_decayed, register


@register
@dataclass(frozen=True)
class SGD(Rule):
    """``torch.optim.SGD`` (dampening 0): coupled weight decay ``g += wd * W`` (weights only), momentum
    ``v = mu * v + g`` (v starts at 0, so its first value is g, as torch's buffer), the step ``v`` or, with
    ``nesterov``, ``g + mu * v``; ``W -= lr * step``.

    ``momentum`` and ``decay`` say whether any network of the run has momentum or weight decay. Plain
    SGD (neither) folds the learning rate into the deltas (``scale``): the update is one subtraction per
    array. Per-sample chunks stay exact either way: the first layer's updates are deferred over the
    chunk, for momentum and decay in the closed form of a linear recurrence (docs/math.md)."""

    nesterov: bool = False
    momentum: bool = False
    decay: bool = False

    name = "sgd"
    lr = 0.003
    settings = {
        "momentum": MOMENTUM,
        "nesterov": Setting(False, "Nesterov momentum (needs --momentum > 0)", checks.flag, network=False, switch=True),
        "weight_decay": WEIGHT_DECAY,
    }
    adaptive = False
    defers_first_layer = True

    @classmethod
    def build(cls, optimizers):
        return cls(nesterov=optimizers[0]["nesterov"], momentum=any(o["momentum"] for o in optimizers),
                   decay=any(o["weight_decay"] for o in optimizers))

    @classmethod
    def validate(cls, values):
        if any(values["nesterov"]) and any(m is None or m <= 0 for m in values["momentum"]):
            raise ValidationError("--nesterov needs --momentum > 0 (as torch.optim.SGD)")

    def torch(self, torch, groups, o, **how):
        return torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"], **how)

    def optax(self, optax, o, weights):
        rule = optax.sgd(o["lr"], momentum=o["momentum"] or None, nesterov=o["nesterov"])
        return optax_decayed(optax, rule, o["weight_decay"], weights)

    @property
    def plain(self) -> bool:
        return not self.momentum and not self.decay

    def scale(self, hyper):
        return hyper["lr"] if self.plain else 1.0

    def init_state(self, xp, params) -> list:
        if not self.momentum:
            return [() for _ in params]
        return [(xp.zeros_like(W), xp.zeros_like(b)) for W, b in params]

    def update(self, xp, params, grads, state, hyper, inplace=False):
        """One step of every layer; ``inplace`` updates the given arrays, otherwise new arrays are
        returned (every Array API library, JAX included)."""
        if self.plain:  # the steps are the deltas: one subtraction per array (per-sample's hot path)
            if inplace:
                for (W, b), (dW, db) in zip(params, grads):
                    W -= dW
                    b -= db
                return params, state
            return [(W - dW, b - db) for (W, b), (dW, db) in zip(params, grads)], state
        out, new_state = [], []
        for (W, b), (dW, db), s in zip(params, grads, state):
            dW, db, s = self._step(hyper, W, dW, db, s, inplace)
            if inplace:
                W -= dW
                b -= db
            else:
                W, b = W - dW, b - db
            out.append((W, b))
            new_state.append(s)
        return out, new_state

    def _step(self, hyper, W, dW, db, s, inplace):
        """The steps ``lr * u`` of one layer from its gradients (not folded), and its new velocities."""
        lr = hyper["lr"]
        if self.decay:
            dW = dW + hyper["weight_decay"] * W
        if self.momentum:
            mu = hyper["momentum"]
            vW, vb = s
            if inplace:
                vW *= mu
                vW += dW
                vb *= mu
                vb += db
            else:
                vW, vb = mu * vW + dW, mu * vb + db
            dW, db = (dW + mu * vW, db + mu * vb) if self.nesterov else (vW, vb)
            s = (vW, vb)
        return lr * dW, lr * db, s

    def first_layer(self, xp, X, param0, state0, hyper):
        if self.plain:
            return _DeferredSGD(xp, X, param0, state0)
        return _DeferredMomentum(self, xp, X, param0, state0, hyper)

    def chunk_coefficients(self, optimizers, size):
        """Per network, the coefficients of the first layer's deferred updates over a chunk of up to
        ``size`` rows (host float64), none for plain SGD (whose deltas carry the rate): ``(W, v)`` after m rows is ``M^m (W, v)_0 + sum_k c_{m-1-k} x_k^T d_k``
        with the 2 x 2 matrix ``M`` and vector ``c_0`` of one row's update (docs/math.md). Returns arrays of
        shape (K, size + 1, 1): ``Mij[m]`` the entries of ``M^m``; (K, size, 1): ``cW[j]``, ``cV[j]`` the
        entries of ``c_{size-1-j}`` (a chunk of m rows takes the last m); (K, size, size): ``T[i, j]`` the
        weights' coefficient ``(c_{i-1-j})_W`` below the diagonal (a chunk of m rows takes ``T[:m, :m]``)."""
        if self.plain:
            return {}
        K = len(optimizers)
        out = {k: np.zeros((K, size + 1, 1)) for k in ("M11", "M12", "M21", "M22")}
        out.update({k: np.zeros((K, size, 1)) for k in ("cW", "cV")})
        out["T"] = np.zeros((K, size, size))
        for n, o in enumerate(optimizers):
            lr, mu, wd = o["lr"], o["momentum"] or 0.0, o["weight_decay"] or 0.0
            if self.nesterov:
                M, c = np.array([[1 - lr * (1 + mu) * wd, -lr * mu * mu], [wd, mu]]), np.array([-lr * (1 + mu), 1.0])
            else:
                M, c = np.array([[1 - lr * wd, -lr * mu], [wd, mu]]), np.array([-lr, 1.0])
            power = np.eye(2)
            for m in range(size + 1):
                for (i, j), key in zip(((0, 0), (0, 1), (1, 0), (1, 1)), ("M11", "M12", "M21", "M22")):
                    out[key][n, m, 0] = power[i, j]
                if m < size:
                    out["cW"][n, size - 1 - m, 0], out["cV"][n, size - 1 - m, 0] = c
                    c = M @ c
                power = M @ power
            rows, cols = np.tril_indices(size, -1)  # T[i, j] = (c_{i-1-j})_W: row j's update as row i sees it
            out["T"][n, rows, cols] = out["cW"][n, size - rows + cols, 0]
        return out


class _DeferredMomentum:
    """The first layer's per-sample updates with momentum and/or coupled weight decay over a chunk of
    rows, applied at its end. After k rows the weights are ``M^k`` applied to the starting weights and
    velocity plus ``sum_j c_{k-1-j} x_j^T d_j`` (:meth:`SGD.chunk_coefficients`), so the rows'
    pre-activations start from their products with the starting weights and velocity (computed once),
    and after row k those still to come gain the rank-one term ``(x_i . x_k) (c_{i-1-k})_W d_k`` -- as for
    plain SGD, with the row products weighted by the coefficients (``R``). The bias and its velocity are
    small and step as usual; at the end ``W`` and ``v`` follow in closed form from two products with
    ``X^T``."""

    def __init__(self, rule, xp, X, param0, state0, hyper):
        W, b = param0
        m = X.shape[-2]
        self.rule, self.xp, self.X, self.hyper, self.W = rule, xp, X, hyper, W
        self.vW, self.vb = state0 if rule.momentum else (None, None)
        self.first = hyper["M11"][..., :m, :] * (X @ W)  # row k: (M^k)_11 x_k W
        if rule.momentum:
            self.first = self.first + hyper["M12"][..., :m, :] * (X @ self.vW)
        self.R = (X @ transpose(xp, X)) * hyper["T"][..., :m, :m]
        self.b, self.ds, self.size = b, [], hyper["cW"].shape[-2]

    def _at(self, key, k):  # the entry of M^k
        return self.hyper[key][..., k : k + 1, :]

    def row(self):
        return self.first[..., :1, :] + self.b

    def after(self, k, d):
        self.ds.append(d)  # x_k^T d_k: the data part of row k's gradient of W
        if k + 1 < self.X.shape[-2]:  # the later rows see this row's first-layer update
            self.first = self.first[..., 1:, :] + self.R[..., k + 1 :, k : k + 1] * d
        if self.rule.momentum:  # the bias and its velocity
            mu = self.hyper["momentum"]
            self.vb = mu * self.vb + d
            d = d + mu * self.vb if self.rule.nesterov else self.vb
        self.b = self.b - self.hyper["lr"] * d

    def finish(self, inplace=False):
        xp, m = self.xp, self.X.shape[-2]
        D, XT = xp.concat(self.ds, axis=-2), transpose(xp, self.X)
        cW, cV = self.hyper["cW"][..., self.size - m :, :], self.hyper["cV"][..., self.size - m :, :]
        W = self._at("M11", m) * self.W + XT @ (D * cW)
        state = ()
        if self.rule.momentum:
            W = W + self._at("M12", m) * self.vW
            state = (self._at("M21", m) * self.W + self._at("M22", m) * self.vW + XT @ (D * cV), self.vb)
        return (W, self.b), state



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
        (param,), _ = SGD().update(self.xp, [self.param0], steps, [self.state0], {"lr": 1.0}, inplace)
        return param, self.state0
