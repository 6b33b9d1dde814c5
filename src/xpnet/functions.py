"""Activations and losses, each forward written right beside its hand-derived derivative.

Every function takes the array namespace ``xp`` first and works on any Array API library, on one
network's arrays (batch, n) or a stack's (models, batch, n): reductions run over the last axes only, and
a loss is one number per network.

Hidden activations are a table ``name -> Activation(name, forward, derivative)``. The derivative is written in terms of
the activation's *output* ``a = f(z)`` -- sigmoid' = a(1 - a), tanh' = 1 - a², relu' = [a > 0] -- so the
backward pass needs only the activations the forward pass already keeps.

Output layers and losses come as pairs (:class:`Head`), because the pair, not each half, has the simple
derivative: softmax + cross-entropy and sigmoid + logistic loss both give dl/dz = p - y. xpnet minimises
the **mean over the batch** of the per-sample losses; see docs/math.md for why and how that relates to
per-sample sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import checks
from .backends import model_sum, positive_part, row_max, row_sum
from .errors import ValidationError


# -- hidden activations ---------------------------------------------------------------------------
def sigmoid(xp, z):
    # 1 / (1 + e^-z) written as (1 + tanh(z/2)) / 2: no exp to overflow, so no warning and no NaN at
    # any |z|, and no branch on the sign of z.
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def sigmoid_derivative(xp, a):
    return a * (1.0 - a)


def tanh(xp, z):
    return xp.tanh(z)


def tanh_derivative(xp, a):
    return 1.0 - a * a


def relu(xp, z):
    return positive_part(xp, z)


def relu_derivative(xp, a):
    return xp.astype(a > 0.0, a.dtype)


def identity(xp, z):
    return z


def identity_derivative(xp, a):
    return xp.ones_like(a)


@dataclass(frozen=True)
class Activation:
    """A hidden activation ``forward(xp, z)`` and its ``derivative(xp, a)`` written in terms of the
    output ``a = forward(xp, z)``."""

    name: str
    forward: Callable
    derivative: Callable


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, sigmoid_derivative),
        Activation("tanh", tanh, tanh_derivative),
        Activation("relu", relu, relu_derivative),
        Activation("identity", identity, identity_derivative),
    )
}


# -- output layers and losses --------------------------------------------------------------------
# Each output/loss pair has
#   forward(xp, z, t) -> (out, loss): the output activation of the last pre-activation z, and the loss
#       *summed* over the batch, one number per network (callers divide by the batch size for the mean);
#   delta(xp, z, out, t) -> dl/dz: the derivative of each sample's own loss with respect to z
#       (backward divides it by the batch size, because xpnet minimises the batch mean).
# Targets t are rows: one-hot (or probability) rows for softmax; for the logistic loss a 0/1 column, or one 0/1
# column per output unit (independent labels: multilabel); counts (or rates) for the Poisson loss.
def softmax(xp, z):
    """softmax(z) along the last axis, shifted by the row max so exp never overflows."""
    e = xp.exp(z - row_max(xp, z))
    return e / row_sum(xp, e)


def softmax_cross_entropy(xp, z, t):
    # log p = (z - m) - log s with s = sum(e^(z - m)) >= 1: a stable log-softmax that never takes log 0.
    # Summed over the batch, -sum(t log p) = sum(log s) - sum(t (z - m)), since every row of t sums to 1.
    shifted = z - row_max(xp, z)
    e = xp.exp(shifted)
    s = row_sum(xp, e)
    return e / s, model_sum(xp, xp.log(s)) - model_sum(xp, t * shifted)


def softplus(xp, z):
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|), finite for every finite z."""
    return positive_part(xp, z) + xp.log1p(xp.exp(-xp.abs(z)))


def sigmoid_logistic(xp, z, t):
    # -[t log σ(z) + (1 - t) log(1 - σ(z))] = softplus(z) - t z, never log 0.
    return sigmoid(xp, z), model_sum(xp, softplus(xp, z) - t * z)


def identity_squared(xp, z, t):
    err = z - t
    return z, 0.5 * model_sum(xp, err * err)


def sigmoid_squared(xp, z, t):
    out = sigmoid(xp, z)
    err = out - t
    return out, 0.5 * model_sum(xp, err * err)


def exponential(xp, z):
    return xp.exp(z)


def exp_poisson(xp, z, t):
    # Half the Poisson deviance of the rate e^z: t log(t / e^z) - t + e^z = t log t - t z - t + e^z, the
    # t log t term 0 where t = 0 (scikit-learn's xlogy); its derivative in z is e^z - t.
    out = xp.exp(z)
    positive = t > 0
    t_log_t = xp.where(positive, t * xp.log(xp.where(positive, t, xp.ones_like(t))), xp.zeros_like(t))
    return out, model_sum(xp, t_log_t - t * z - t + out)


def output_error(xp, z, out, t):
    """dl/dz = out - t: softmax + cross-entropy, sigmoid + logistic, identity + squared, exp + Poisson
    (each the canonical link of its loss; docs/math.md)."""
    return out - t


def sigmoid_squared_delta(xp, z, out, t):
    return (out - t) * sigmoid_derivative(xp, out)


@dataclass(frozen=True)
class Head:
    """An output activation paired with a loss (see the comment above for ``forward`` and ``delta``)."""

    output: str
    loss: str
    activation: Callable
    forward: Callable
    delta: Callable


HEADS: dict[tuple[str, str], Head] = {
    ("softmax", "cross-entropy"): Head("softmax", "cross-entropy", softmax, softmax_cross_entropy, output_error),
    ("sigmoid", "logistic"): Head("sigmoid", "logistic", sigmoid, sigmoid_logistic, output_error),
    ("identity", "squared"): Head("identity", "squared", identity, identity_squared, output_error),
    ("sigmoid", "squared"): Head("sigmoid", "squared", sigmoid, sigmoid_squared, sigmoid_squared_delta),
    ("exp", "poisson"): Head("exp", "poisson", exponential, exp_poisson, output_error),
}
#: The output each loss uses when none is named.
DEFAULT_OUTPUT = {"cross-entropy": "softmax", "logistic": "sigmoid", "squared": "identity", "poisson": "exp"}
LOSSES = tuple(DEFAULT_OUTPUT)
OUTPUTS = ("softmax", "sigmoid", "identity", "exp")


def get_activation(name: str) -> Activation:
    if name == "logistic":  # scikit-learn's name for the sigmoid
        name = "sigmoid"
    return ACTIVATIONS[checks.choice("activation", name, ACTIVATIONS)]


def get_head(loss: str, output: str | None = None) -> Head:
    """The output/loss pair for ``loss`` (and ``output``, defaulting to the loss's natural one)."""
    output = DEFAULT_OUTPUT[checks.choice("loss", loss, LOSSES)] if output is None else output
    checks.choice("output", output, OUTPUTS)
    try:
        return HEADS[(output, loss)]
    except KeyError:
        allowed = [o for o, l in HEADS if l == loss]
        raise ValidationError(
            f"output {output!r} cannot be paired with loss {loss!r}; it takes output {' or '.join(allowed)}"
        ) from None


def hidden_activations(names, sizes) -> tuple[Activation, ...]:
    """The hidden activations of a network of layer ``sizes``: ``names`` is one name for every hidden
    layer (a string, ``"relu/tanh"`` for one per layer) or a sequence of one name per hidden layer."""
    hidden = len(sizes) - 2
    if isinstance(names, str):
        names = names.split("/") if "/" in names else [names] * max(hidden, 1)
    names = list(names)
    if len(names) == 1 and hidden != 1:
        names = names * hidden
    if len(names) != hidden:
        raise ValidationError(f"activation {'/'.join(map(str, names))!r} names {len(names)} layers; layers "
                              f"{'-'.join(map(str, sizes))} have {hidden} hidden layer(s)")
    return tuple(get_activation(n) for n in names)


def head_for(loss: str, output: str | None, n_out: int) -> Head:
    """The output/loss pair for a network with ``n_out`` output units (see :func:`get_head`)."""
    head = get_head(loss, output)
    if head.loss == "cross-entropy" and n_out < 2:
        raise ValidationError("softmax + cross-entropy needs at least 2 output units; use loss='logistic' for 1")
    return head
