"""Stochastic gradient descent.

Per-sample SGD (the textbook algorithm) and minibatch SGD are the same update at different batch
sizes: the gradients are of the batch-*mean* loss, so ``lr`` means the same step per sample whatever the
batch size.
"""

from __future__ import annotations


def sgd(params, steps, inplace=False):
    """Subtract each layer's step (the gradient already multiplied by the learning rate: see
    :func:`xpnet.mlp.backward`'s ``scale``) from its ``(W, b)``.

    ``inplace=True`` updates the given arrays (one pass over each, no new allocation) and returns them;
    otherwise new arrays are returned, which every Array API library (JAX included) supports.
    """
    if inplace:
        for (W, b), (dW, db) in zip(params, steps):
            W -= dW
            b -= db
        return params
    return [(W - dW, b - db) for (W, b), (dW, db) in zip(params, steps)]
