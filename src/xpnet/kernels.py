"""The kernels: forward, backward and the SGD steps, as pure functions of the array namespace ``xp``.

Samples are rows. Layer ``l`` maps ``a_l`` (batch, n_l) to ``a_{l+1} = f(a_l @ W_l + b_l)`` with ``W_l``
of shape (n_l, n_{l+1}) and ``b_l`` a row of shape (1, n_{l+1}); ``a_0`` is the input ``X``. The last
layer's pre-activation ``z`` goes through the output activation of the :class:`~xpnet.functions.Head`.

Every kernel serves one network and a *stack* of K networks alike: a stack's parameters carry a leading
model axis (``W_l`` of shape (K, n_l, n_{l+1}), ``b_l`` of shape (K, 1, n_{l+1})), its activations are
(K, batch, n), and its learning rates a (K, 1, 1) array. Products are ``@`` (which broadcasts over
leading axes), reductions run over the last two axes only, and a stack may share one input batch
(batch, n_0) among its networks or give each its own (K, batch, n_0).

Backward is the chain rule written out (derivation in docs/math.md)::

    delta_L = dLoss/dz = head delta / batch             (times lr in a training step)
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


def backward(xp, net: Network, params, acts, out, z, t, scale=1.0, input_weights=True):
    """``scale`` times the gradients ``[(dW_0, db_0), ...]`` of the batch-mean loss.

    Every gradient is linear in the output delta, so scaling that one (small) array by ``scale`` -- the
    learning rate in a training step, a (K, 1, 1) array for a stack -- scales them all at no extra cost.
    ``input_weights=False`` leaves out the largest product, ``dW_0`` (``None`` in its place); ``db_0`` is
    then, for one sample, the first layer's delta, from which :func:`sample_steps` applies ``dW_0`` later.
    """
    n = acts[0].shape[-2]
    delta = net.head.delta(xp, z, out, t)
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


def sgd(params, steps, inplace=False):
    """Subtract each layer's step (the gradient already multiplied by the learning rate) from its
    ``(W, b)``: per-sample and minibatch SGD are this same update at different batch sizes.

    ``inplace=True`` updates the given arrays (one pass over each, no new allocation) and returns them;
    otherwise new arrays are returned, which every Array API library (JAX included) supports.
    """
    if inplace:
        for (W, b), (dW, db) in zip(params, steps):
            W -= dW
            b -= db
        return params
    return [(W - dW, b - db) for (W, b), (dW, db) in zip(params, steps)]


def loss_and_gradients(xp, net: Network, params, X, t):
    """Batch-mean loss (per network) and its gradients for inputs ``X`` and targets ``t``."""
    z, acts = forward(xp, net, params, X)
    out, total = net.head.forward(xp, z, t)
    return total / X.shape[-2], backward(xp, net, params, acts, out, z, t)


def train_step(xp, net: Network, params, X, t, lr, inplace=False):
    """One SGD step on a batch: returns ``(params, loss)`` with the loss *summed* over the batch.

    With ``inplace`` the given parameter arrays are updated and returned; otherwise new arrays are
    returned and the step is a pure function, ready for a tracing compiler.
    """
    z, acts = forward(xp, net, params, X)
    out, total = net.head.forward(xp, z, t)
    steps = backward(xp, net, params, acts, out, z, t, scale=lr)
    return sgd(params, steps, inplace), total


def sample_steps(xp, net: Network, params, X, t, lr, inplace=False):
    """Per-sample SGD over the rows of ``X`` in order -- the updates of one :func:`train_step` per row,
    up to rounding -- returning ``(params, loss)`` with the loss summed over the rows, each taken before
    its own update.

    What a per-sample step costs most is the first layer's rank-one update ``W_0 -= x^T d`` (784 x 32
    numbers for MNIST's small net, for one sample). Here those updates wait until the end of the rows:
    after row ``k`` with first-layer delta ``d_k`` (learning rate included) the first layer would hold
    ``W_0 - x_k^T d_k`` and ``b_0 - d_k``, which changes every later row ``j``'s pre-activation by
    ``-(x_j . x_k + 1) d_k`` (docs/math.md). So the rows' pre-activations are computed once, those of the
    rows still to come corrected after each row by that rank-one term, and one product after the rows
    applies all the first-layer updates. Every other layer steps as usual. No array is modified unless ``inplace``, so the same code
    runs one row at a time in Python or unrolled inside a compiled epoch.
    """
    W0, b0 = params[0]
    first = X @ W0 + b0  # the rows' first pre-activations under the weights the rows start from
    gram = X @ transpose(xp, X) + 1.0  # row products; the 1 carries the bias updates
    rest = list(params[1:])
    ds, zs = [], []
    n = X.shape[-2]
    for k in range(n):
        # first[..., 0, :] is row k's pre-activation; the rows after it follow
        current = [params[0], *rest]
        z, acts = forward(xp, net, current, X[..., k : k + 1, :], z0=first[..., :1, :])
        out = net.head.activation(xp, z)
        steps = backward(xp, net, current, acts, out, z, t[..., k : k + 1, :], scale=lr, input_weights=False)
        rest = sgd(rest, steps[1:], inplace)
        d = steps[0][1]
        if k + 1 < n:  # the later rows see this row's first-layer update
            first = first[..., 1:, :] - gram[..., k + 1 :, k : k + 1] * d
        ds.append(d)
        zs.append(z)
    D = xp.concat(ds, axis=-2)
    first_layer = sgd([params[0]], [(transpose(xp, X) @ D, column_sum(xp, D))], inplace)
    _, total = net.head.forward(xp, xp.concat(zs, axis=-2), t)
    return [*first_layer, *rest], total
