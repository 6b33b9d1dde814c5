"""A hand-tuned NumPy per-sample loop: the yardstick for what NumPy calls can do at batch size 1.

The seeds' 784-32-32-10 sigmoid net with softmax + cross-entropy, float32, trained one sample at a time
with plain SGD, written the way one tunes NumPy by hand and the Array API cannot express: every result
goes into a preallocated ``out=`` buffer, the first layer is stored transposed (32 x 784) so that its
outer product runs along contiguous rows, and nothing is allocated per sample (40 NumPy calls per sample).
No loss is computed. ``benchmarks/targets.py`` times it beside xpnet; it is not part of xpnet.
"""

import numpy as np

from xpnet import bench
from xpnet.init import initial_weights


class HandTunedRunner:
    """``setup(n)`` / ``run()`` like the runners of :mod:`xpnet.bench`."""

    device = "cpu"

    def __init__(self, X, y, lr=bench.LR, seed=0):
        sizes = bench.NETS["small"]["layers"]
        weights = initial_weights(sizes, bench.NETS["small"]["init"], seed)
        self.WT0 = np.ascontiguousarray(weights[0][0].T, dtype=np.float32)
        self.W1, self.W2 = (np.asarray(W, dtype=np.float32) for W, _ in weights[1:])
        self.b0, self.b1, self.b2 = (np.zeros(n, dtype=np.float32) for n in sizes[1:])
        self.X = np.asarray(X, dtype=np.float32)
        self.T = np.eye(sizes[-1], dtype=np.float32)[y]
        self.lr = np.float32(lr)

    def setup(self, n):
        self.n = n

    def run(self):
        mul, add, sub, dot, tanh, exp = np.multiply, np.add, np.subtract, np.dot, np.tanh, np.exp
        WT0, W1, W2, b0, b1, b2, lr = self.WT0, self.W1, self.W2, self.b0, self.b1, self.b2, self.lr
        h1, h2, tmp, d1, d2 = (np.empty(32, np.float32) for _ in range(5))
        z, d3 = np.empty(10, np.float32), np.empty(10, np.float32)
        g1, g2, g0 = np.empty((32, 32), np.float32), np.empty((32, 10), np.float32), np.empty_like(WT0)
        for x, t in zip(self.X[: self.n], self.T[: self.n]):
            dot(WT0, x, out=h1); add(h1, b0, out=h1)  # sigmoid(z) = (1 + tanh(z / 2)) / 2
            mul(h1, 0.5, out=h1); tanh(h1, out=h1); mul(h1, 0.5, out=h1); add(h1, 0.5, out=h1)
            dot(h1, W1, out=h2); add(h2, b1, out=h2)
            mul(h2, 0.5, out=h2); tanh(h2, out=h2); mul(h2, 0.5, out=h2); add(h2, 0.5, out=h2)
            dot(h2, W2, out=z); add(z, b2, out=z)
            sub(z, z.max(), out=z); exp(z, out=z); mul(z, 1.0 / z.sum(), out=z)
            sub(z, t, out=d3); mul(d3, lr, out=d3)
            dot(W2, d3, out=d2); sub(1.0, h2, out=tmp); mul(tmp, h2, out=tmp); mul(d2, tmp, out=d2)
            dot(W1, d2, out=d1); sub(1.0, h1, out=tmp); mul(tmp, h1, out=tmp); mul(d1, tmp, out=d1)
            mul(h2[:, None], d3, out=g2); sub(W2, g2, out=W2); sub(b2, d3, out=b2)
            mul(h1[:, None], d2, out=g1); sub(W1, g1, out=W1); sub(b1, d2, out=b1)
            mul(d1[:, None], x, out=g0); sub(WT0, g0, out=WT0); sub(b0, d1, out=b0)
