"""Update rules and learning-rate schedules: how the weights move, given their gradients.

A rule is a small frozen object (pure functions of ``xp`` with their state, written once for one network
and a stack):

- ``scale(hyper)``: a factor the backward pass may fold into its (small) output delta, so that the
  gradients it returns are already plain SGD's steps (the learning rate) -- or 1;
- ``init_state(xp, params)``: the optimizer state, one entry per layer (``()`` where there is none), arrays
  on the parameters' device;
- ``update(xp, params, grads, state, hyper, inplace)`` -> ``(params, state)`` for any leading model axis;
- ``first_layer(xp, X, param0, state0, hyper)`` (where ``defers_first_layer``): for per-sample training
  by chunks (:func:`xpnet.kernels.sample_steps`), an object that carries the first layer's deferred
  updates over a chunk of rows -- ``row()`` (the next row's first pre-activation, its updates so far
  included), ``after(k, d)`` (row ``k``'s first-layer delta, as scaled by ``scale``) and
  ``finish(inplace)`` (the first layer's ``(W, b)`` and state after the chunk).

``hyper`` maps each hyperparameter to a Python float (one network, stepped eagerly), a 0-d array (one
network inside a compiled epoch: traced, not baked in) or a (K, 1, 1) array (a stack: one per network).
The rules follow ``torch.optim`` (``SGD`` with dampening 0, ``Adam``, ``AdamW``) except that weight decay
applies to the weights, not the biases (docs/math.md has the update rules; the learning-rate schedules are
:mod:`xpnet.schedules`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import column_sum, transpose
from .errors import ValidationError


@dataclass(frozen=True)
class SGD:
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
    hyper_names = ("lr", "momentum", "weight_decay")
    defers_first_layer = True

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


@dataclass(frozen=True)
class Adam:
    """``torch.optim.Adam`` (``decoupled``: ``AdamW``): with weight decay coupled (``g += wd * W``) or
    decoupled (``W *= 1 - lr * wd``), on the weights only; per layer the moments and the step count
    ``t`` (one per network): ``m += (1 - b1) (g - m)``, ``v = b2 v + (1 - b2) g^2``, ``W -= lr / (1 -
    b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. Not linear in the gradients, so per-sample training
    steps row by row."""

    decoupled: bool = False
    decay: bool = False

    hyper_names = ("lr", "beta1", "beta2", "eps", "weight_decay")
    defers_first_layer = False

    @property
    def name(self):
        return "adamw" if self.decoupled else "adam"

    def scale(self, hyper):
        return 1.0

    def init_state(self, xp, params) -> list:
        def count(W):  # the step count, one per network: (1, 1), or (K, 1, 1) for a stack
            return xp.zeros((*W.shape[:-2], 1, 1), dtype=W.dtype, device=_device(W))

        return [(xp.zeros_like(W), xp.zeros_like(b), xp.zeros_like(W), xp.zeros_like(b), count(W))
                for W, b in params]

    def update(self, xp, params, grads, state, hyper, inplace=False):
        lr, b1, b2, eps = hyper["lr"], hyper["beta1"], hyper["beta2"], hyper["eps"]
        out, new_state = [], []
        for (W, b), (dW, db), (mW, mb, vW, vb, t) in zip(params, grads, state):
            t = t + 1.0
            if self.decay:
                wd = hyper["weight_decay"]
                if not self.decoupled:
                    dW = dW + wd * W
                elif inplace:
                    W *= 1.0 - lr * wd
                else:
                    W = W * (1.0 - lr * wd)
            step = lr / (1.0 - b1 ** t)
            root = xp.sqrt(1.0 - b2 ** t)
            moved = []
            for P, g, m, v in ((W, dW, mW, vW), (b, db, mb, vb)):
                if inplace:
                    m += (1.0 - b1) * (g - m)
                    v *= b2
                    v += (1.0 - b2) * (g * g)
                    P -= step * (m / (xp.sqrt(v) / root + eps))
                else:
                    m = m + (1.0 - b1) * (g - m)
                    v = b2 * v + (1.0 - b2) * (g * g)
                    P = P - step * (m / (xp.sqrt(v) / root + eps))
                moved.append((P, m, v))
            (W, mW, vW), (b, mb, vb) = moved
            out.append((W, b))
            new_state.append((mW, mb, vW, vb, t))
        return out, new_state


class SklearnSGD:
    """scikit-learn's ``SGDOptimizer`` (its ``_stochastic_optimizers.py``), for :mod:`xpnet.sklearn`: a
    velocity that carries the learning rate, ``v = mu v - lr g``, and the step ``v`` or, Nesterov's form,
    ``mu v - lr g`` with the new ``v``; ``p += step``. ``params``, ``grads`` and ``state`` are flat lists
    (scikit-learn's order: the weights, then the biases); ``lr`` is the current rate (a float)."""

    def init_state(self, xp, params) -> list:
        return [xp.zeros_like(p) for p in params]

    def update(self, xp, params, grads, state, lr, momentum, nesterov):
        velocities = [momentum * v - lr * g for v, g in zip(state, grads)]
        steps = [momentum * v - lr * g for v, g in zip(velocities, grads)] if nesterov else velocities
        return [p + u for p, u in zip(params, steps)], velocities


class SklearnAdam:
    """scikit-learn's ``AdamOptimizer``: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, the bias
    correction folded into the rate, ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)`` (a host float, as
    scikit-learn computes it), and ``eps`` added to ``sqrt(v)``: ``p -= lr_t m / (sqrt(v) + eps)``. The
    state is ``(t, ms, vs)``."""

    def init_state(self, xp, params):
        return 0, [xp.zeros_like(p) for p in params], [xp.zeros_like(p) for p in params]

    def update(self, xp, params, grads, state, lr, beta1, beta2, eps):
        t, ms, vs = state
        t += 1
        ms = [beta1 * m + (1 - beta1) * g for m, g in zip(ms, grads)]
        vs = [beta2 * v + (1 - beta2) * (g**2) for v, g in zip(vs, grads)]
        rate = lr * float(np.sqrt(1 - beta2**t)) / (1 - beta1**t)
        return [p - rate * m / (xp.sqrt(v) + eps) for p, m, v in zip(params, ms, vs)], (t, ms, vs)


def _device(x):
    from array_api_compat import device

    return device(x)


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


def rule_from(record: dict):
    """The rule a checkpoint recorded (``{"rule": name, **its fields}``); ``ValueError`` or ``TypeError``
    for a record that names no rule of this module or fields it lacks."""
    kinds = {"sgd": SGD, "adam": Adam, "adamw": Adam}
    name = record.get("rule")
    if name not in kinds:
        raise ValueError(f"unknown update rule {name!r}")
    fields = {k: v for k, v in record.items() if k not in ("rule", "layers")}
    if not all(isinstance(v, bool) for v in fields.values()):
        raise TypeError(f"the fields of update rule {name!r} must be true or false; got {fields}")
    rule = kinds[name](**fields)
    if rule.name != name:
        raise ValueError(f"update rule {name!r} recorded with the fields of {rule.name!r}")
    return rule


def rule_for(optimizers):
    """The one rule every network of a run uses: their resolved optimizer settings (dicts of
    :meth:`xpnet.spec.Optimizer.resolved`) share the kind and Nesterov (a stack holds one kind)."""
    kinds = {(o["optimizer"], o["nesterov"]) for o in optimizers}
    if len(kinds) > 1:
        raise ValidationError(f"the networks of one stack share their optimizer (and --nesterov); got {sorted(kinds)}")
    kind, nesterov = kinds.pop()
    decay = any(o["weight_decay"] for o in optimizers)
    if kind == "sgd":
        return SGD(nesterov=nesterov, momentum=any(o["momentum"] for o in optimizers), decay=decay)
    return Adam(decoupled=kind == "adamw", decay=decay)


def hyper(rule, optimizers, backend, dtype, lead=(), lrs=None, frozen=(), traced=False, chunk=None) -> dict:
    """The hyperparameters of ``rule`` for ``optimizers`` (one resolved dict per network) as the kernels
    take them: floats for one network stepped eagerly, 0-d arrays when ``traced``, (K, 1, 1) arrays for
    a stack (``lead == (K,)``). ``lrs`` are this epoch's learning rates (the schedule's); a ``frozen``
    network's is 0, so that nothing moves it. ``chunk`` (per-sample training with momentum or decay): the
    rows of a chunk, for the coefficients of its deferred first-layer updates (arrays)."""
    current = [{**o, "lr": 0.0 if k in frozen else (o["lr"] if lrs is None else lrs[k])} for k, o in enumerate(optimizers)]
    out = {}
    for name in rule.hyper_names:
        values = np.array([o[name] for o in current], dtype=np.float64)
        if not lead:
            out[name] = backend.asarray(values[0], dtype) if traced else float(values[0])
        else:
            out[name] = backend.asarray(values.reshape(*lead, 1, 1), dtype)
    if chunk:  # only rules that defer the first layer train in chunks
        for name, table in rule.chunk_coefficients(current, chunk).items():
            out[name] = backend.asarray(table if lead else table[0], dtype)
    return out
