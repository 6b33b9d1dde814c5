"""Stochastic gradient descent.

Per-sample SGD (the textbook algorithm) and minibatch SGD are the same update at different batch
sizes: the gradients are of the batch-*mean* loss, so ``lr`` means the same step per sample whatever the
batch size. The update returns new arrays rather than writing in place, which every Array API library
(JAX included) supports.
"""

from __future__ import annotations


def sgd(params, grads, lr):
    """``W - lr * dW`` and ``b - lr * db`` for every layer."""
    return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)]
