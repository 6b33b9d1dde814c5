"""Activations and losses, each forward written right beside its hand-derived derivative.

Every function takes the array namespace ``xp`` first and works on any Array API library.

Hidden activations are a table ``name -> (forward, derivative)``. The derivative is written in terms of
the activation's *output* ``a = f(z)`` -- sigmoid' = a(1 - a), tanh' = 1 - a², relu' = [a > 0] -- so the
backward pass needs only the activations the forward pass already keeps.

Output layers and losses come as pairs (:class:`Head`), because the pair, not each half, has the simple
derivative: softmax + cross-entropy and sigmoid + logistic loss both give dL/dz = p - y. Losses are
**means over the batch**; see docs/math.md for why and how that relates to per-sample sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import ValidationError


# -- hidden activations ---------------------------------------------------------------------------
def sigmoid(xp, z):
    # 1 / (1 + e^-z) written as (1 + tanh(z/2)) / 2: no exp to overflow, so no warning and no NaN at
    # any |z|, and one transcendental call instead of two.
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def sigmoid_derivative(xp, a):
    return a * (1.0 - a)


def tanh(xp, z):
    return xp.tanh(z)


def tanh_derivative(xp, a):
    return 1.0 - a * a


def relu(xp, z):
    return xp.maximum(z, 0.0)


def relu_derivative(xp, a):
    return xp.astype(a > 0.0, a.dtype)


def identity(xp, z):
    return z


def identity_derivative(xp, a):
    return xp.ones_like(a)


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
    "identity": (identity, identity_derivative),
}


# -- output layers and losses --------------------------------------------------------------------
def log_softmax(xp, z):
    """log softmax(z) along the last axis, shifted by the row max so exp never overflows."""
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def softplus(xp, z):
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|), finite for every finite z."""
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


def _batch_mean(xp, per_sample):
    return xp.sum(per_sample) / per_sample.shape[0]


# Each loss is (value(z, out, t), delta(z, out, t)): the batch-mean loss and its derivative with
# respect to the output layer's pre-activation z. `out` is the output activation of z, `t` the targets.
def cross_entropy_softmax(xp, z, out, t):
    return _batch_mean(xp, -xp.sum(t * log_softmax(xp, z), axis=-1))


def cross_entropy_softmax_delta(xp, z, out, t):
    return (out - t) * (1.0 / z.shape[0])


def logistic_sigmoid(xp, z, out, t):
    # -[t log σ(z) + (1 - t) log(1 - σ(z))] = softplus(z) - t z, never log 0.
    return _batch_mean(xp, xp.sum(softplus(xp, z) - t * z, axis=-1))


def logistic_sigmoid_delta(xp, z, out, t):
    return (out - t) * (1.0 / z.shape[0])


def squared(xp, z, out, t):
    err = out - t
    return _batch_mean(xp, 0.5 * xp.sum(err * err, axis=-1))


def squared_identity_delta(xp, z, out, t):
    return (out - t) * (1.0 / z.shape[0])


def squared_sigmoid_delta(xp, z, out, t):
    return (out - t) * sigmoid_derivative(xp, out) * (1.0 / z.shape[0])


def softmax(xp, z):
    return xp.exp(log_softmax(xp, z))


@dataclass(frozen=True)
class Head:
    """An output activation paired with a loss: forward, batch-mean loss, and dL/dz."""

    output: str
    loss: str
    activation: Callable
    value: Callable
    delta: Callable


HEADS: dict[tuple[str, str], Head] = {
    ("softmax", "cross-entropy"): Head(
        "softmax", "cross-entropy", softmax, cross_entropy_softmax, cross_entropy_softmax_delta
    ),
    ("sigmoid", "logistic"): Head("sigmoid", "logistic", sigmoid, logistic_sigmoid, logistic_sigmoid_delta),
    ("identity", "squared"): Head("identity", "squared", identity, squared, squared_identity_delta),
    ("sigmoid", "squared"): Head("sigmoid", "squared", sigmoid, squared, squared_sigmoid_delta),
}
#: The output each loss uses when none is named.
DEFAULT_OUTPUT = {"cross-entropy": "softmax", "logistic": "sigmoid", "squared": "identity"}
LOSSES = tuple(DEFAULT_OUTPUT)
OUTPUTS = ("softmax", "sigmoid", "identity")


def get_activation(name: str) -> tuple[Callable, Callable]:
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValidationError(
            f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}"
        ) from None


def get_head(loss: str, output: str | None = None) -> Head:
    """The output/loss pair for ``loss`` (and ``output``, defaulting to the loss's natural one)."""
    if loss not in DEFAULT_OUTPUT:
        raise ValidationError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    output = DEFAULT_OUTPUT[loss] if output is None else output
    if output not in OUTPUTS:
        raise ValidationError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    try:
        return HEADS[(output, loss)]
    except KeyError:
        allowed = [o for o, l in HEADS if l == loss]
        raise ValidationError(
            f"output {output!r} cannot be paired with loss {loss!r}; it takes output {' or '.join(allowed)}"
        ) from None
