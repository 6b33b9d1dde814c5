"""The kernels: forward, backward, gradients and the per-sample chunked steps, as pure functions of the
array namespace ``xp``. How the weights move given their gradients is the update rule's (:mod:`xpnet.optim`).

Samples are rows. Layer ``l`` maps ``a_l`` (batch, n_l) to ``a_{l+1} = f(a_l @ W_l + b_l)`` with ``W_l``
of shape (n_l, n_{l+1}) and ``b_l`` a row of shape (1, n_{l+1}); ``a_0`` is the input ``X``. The last
layer's pre-activation ``z`` goes through the output activation of the :class:`~xpnet.functions.Head`.

Every kernel serves one network and a *stack* of K networks alike: a stack's parameters carry a leading
model axis (``W_l`` of shape (K, n_l, n_{l+1}), ``b_l`` of shape (K, 1, n_{l+1})), its activations are
(K, batch, n), and its hyperparameters (K, 1, 1) arrays. Products are ``@`` (which broadcasts over
leading axes), reductions run over the last two axes only, and a stack may share one input batch
(batch, n_0) among its networks or give each its own (K, batch, n_0).

Backward is the chain rule written out (derivation in docs/math.md)::

    delta_L = dLoss/dz = head delta / batch             (times a scale: the learning rate of plain SGD)
    dW_l    = a_l^T @ delta_l,     db_l = sum(delta_l over the batch)
    delta_l = (delta_{l+1} @ W_l^T) * f'(a_l)           (f' from the activation's output)
"""

from __future__ import annotations

from dataclasses import dataclass

from .backends import column_sum, transpose, weight_gradient
from .functions import Activation, Head


@dataclass(frozen=True)
class Network:
    """What the kernels need to know of a network besides its parameters: the hidden activations, one
    per hidden layer, and the output/loss pair."""

    hidden: tuple[Activation, ...]
    head: Head


def forward(xp, net: Network, params, X, z0=None):
    """Run the layers on ``X``; return ``(z, acts)``: the last layer's pre-activation and the input of
    every layer (``acts[0] is X``), which with the output is all that :func:`backward` needs.

    ``z0``, when given, is the first layer's pre-activation ``X @ W_0 + b_0`` already computed (see
    :func:`sample_steps`)."""
    acts = [X]
    z = X @ params[0][0] + params[0][1] if z0 is None else z0
    for (W, b), f in zip(params[1:], net.hidden):
        acts.append(f.forward(xp, z))
        z = acts[-1] @ W + b
    return z, acts


def backward(xp, net: Network, params, acts, out, z, t, scale=1.0, input_weights=True, row_weights=None):
    """``scale`` times the gradients ``[(dW_0, db_0), ...]`` of the batch-mean loss; with ``row_weights``
    (a (batch, 1) column) of the mean of the rows' losses times their weights (scikit-learn's
    ``sample_weight``).

    Every gradient is linear in the output delta, so scaling that one (small) array by ``scale`` -- the
    learning rate in a training step, a (K, 1, 1) array for a stack -- scales them all at no extra cost.
    ``input_weights=False`` leaves out the largest product, ``dW_0`` (``None`` in its place); ``db_0`` is
    then, for one sample, the first layer's delta, from which :func:`sample_steps` applies ``dW_0`` later.
    """
    n = acts[0].shape[-2]
    delta = net.head.delta(xp, z, out, t)
    if row_weights is not None:
        delta = delta * row_weights
    if not (isinstance(scale, float) and scale == n):
        delta = delta * (scale / n)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        db = delta if n == 1 else column_sum(xp, delta)
        dW = None if l == 0 and not input_weights else weight_gradient(xp, acts[l], delta)
        grads.append((dW, db))
        if l > 0:
            delta = (delta @ transpose(xp, params[l][0])) * net.hidden[l - 1].derivative(xp, acts[l])
    return grads[::-1]


def gradients(xp, net: Network, params, X, t, scale=1.0):
    """``(loss, grads)``: the loss *summed* over the batch (one number per network) and ``scale`` times the
    gradients of the batch-mean loss (see :func:`backward`)."""
    z, acts = forward(xp, net, params, X)
    out, total = net.head.forward(xp, z, t)
    return total, backward(xp, net, params, acts, out, z, t, scale=scale)


def loss_and_gradients(xp, net: Network, params, X, t):
    """Batch-mean loss (per network) and its gradients for inputs ``X`` and targets ``t``."""
    total, grads = gradients(xp, net, params, X, t)
    return total / X.shape[-2], grads


def sample_steps(xp, net: Network, params, X, t, rule, hyper, state, inplace=False):
    """Per-sample steps over the rows of ``X`` in order -- the updates of one step per row, up to
    rounding -- returning ``(params, state, loss)`` with the loss summed over the rows, each taken before
    its own update. ``rule`` is the update rule (:mod:`xpnet.optim`), ``hyper`` its hyperparameters and
    ``state`` its state, one entry per layer.

    What a per-sample step costs most is the first layer's rank-one update (784 x 32 numbers for MNIST's
    small net, for one sample). Here those updates wait until the end of the rows: the rule's
    ``first_layer`` carries them (for SGD: the rows' first pre-activations computed once, those of the
    rows still to come corrected after each row by a rank-one term, one product after the rows applying
    every update; docs/math.md). Every other layer steps as usual. No array is modified unless
    ``inplace``, so the same code runs one row at a time in Python or unrolled inside a compiled epoch.
    """
    scale = rule.scale(hyper)
    first = rule.first_layer(xp, X, params[0], state[0], hyper)
    rest, rest_state = list(params[1:]), list(state[1:])
    zs = []
    for k in range(X.shape[-2]):
        current = [params[0], *rest]  # the first layer's weights are not read: its pre-activation is given
        z, acts = forward(xp, net, current, X[..., k : k + 1, :], z0=first.row())
        out = net.head.activation(xp, z)
        steps = backward(xp, net, current, acts, out, z, t[..., k : k + 1, :], scale=scale, input_weights=False)
        rest, rest_state = rule.update(xp, rest, steps[1:], rest_state, hyper, inplace)
        first.after(k, steps[0][1])
        zs.append(z)
    param0, state0 = first.finish(inplace)
    _, total = net.head.forward(xp, xp.concat(zs, axis=-2), t)
    return [param0, *rest], [state0, *rest_state], total
