"""The seed notebooks' training loop, reimplemented faithfully: the "before" baseline.

The textbook algorithm as the seeds wrote it: NumPy, float64, one sample at a time as a column vector,
weights of shape (n_out, n_in), sigmoid hidden layers, softmax output with cross-entropy (so the output
delta is p - y), gradients for every layer first, then the update. Nothing is vectorised over samples.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


class Network:
    def __init__(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        # N(0, 1/max(n_in, n_out)), drawn in xpnet's (n_in, n_out) order so that both start equal
        self.weights = [rng.normal(0.0, np.sqrt(1.0 / max(n_in, n_out)), (n_in, n_out)).T
                        for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.biases = [np.zeros((n_out, 1)) for n_out in sizes[1:]]

    def train_epoch(self, X, Y, lr):
        """Per-sample SGD over rows of ``X`` with one-hot rows ``Y``."""
        for x, y in zip(X, Y):
            activations = [x.reshape(-1, 1)]
            for W, b in zip(self.weights[:-1], self.biases[:-1]):
                activations.append(sigmoid(W @ activations[-1] + b))
            p = softmax(self.weights[-1] @ activations[-1] + self.biases[-1])
            delta = p - y.reshape(-1, 1)
            grads = []
            for layer in range(len(self.weights) - 1, -1, -1):
                grads.append((delta @ activations[layer].T, delta))
                if layer > 0:
                    a = activations[layer]
                    delta = (self.weights[layer].T @ delta) * a * (1.0 - a)
            for layer, (gW, gb) in enumerate(reversed(grads)):
                self.weights[layer] = self.weights[layer] - lr * gW
                self.biases[layer] = self.biases[layer] - lr * gb

    def predict(self, X):
        a = X.T
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            a = sigmoid(W @ a + b)
        return np.argmax(self.weights[-1] @ a + self.biases[-1], axis=0)
