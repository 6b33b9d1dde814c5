"""Where a training step's time goes, and the measurements behind issue 5's design choices.

    python benchmarks/profile_step.py parts       # per-part cost of the batch-1 and batch-1024 steps
    python benchmarks/profile_step.py chunk       # per-sample throughput against SAMPLE_CHUNK
    python benchmarks/profile_step.py reductions  # NumPy's own sum/max against backends.py's, whole epochs
    python benchmarks/profile_step.py threads     # NumPy's BLAS on one thread against as many as it has
    python benchmarks/profile_step.py unroll      # JAX's compiled per-sample epoch against lax.scan unroll
    python benchmarks/profile_step.py jax-reference  # xpnet's compiled JAX epoch against a minimal one

NumPy backend, float32, the seeds' 784-32-32-10 sigmoid net (and the large ReLU net for ``chunk``), on
MNIST. Part costs are the best of 5 repeats of a timing loop; throughputs are medians of 5 rounds that
alternate between the variants, so that the machine's drift hits them alike (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
import timeit

import numpy as np

from xpnet import MLP, bench
from xpnet import train as xtrain
from xpnet.mlp import backward, forward
from xpnet.optim import sgd


@functools.lru_cache(maxsize=None)
def training_set():
    return bench.load_training_set()


def network(name="small", backend="numpy", n=16384):
    X, y = training_set()
    net = MLP(**bench.NETS[name], seed=0, backend=backend, dtype="float32")
    return net, net.inputs(X[:n]), net.backend.asarray(net.targets(y[:n]), "float32")


def cost(label, fn, number=2000):
    seconds = min(timeit.repeat(fn, number=number, repeat=5)) / number
    print(f"{seconds * 1e6:9.1f} us  {label}")


def alternate(variants: dict, rounds=5):
    """Median samples/s of each ``name -> (setup, run, n)`` variant over rounds that take turns."""
    rates = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (setup, run, n) in variants.items():
            setup()
            t0 = time.perf_counter()
            run()
            rates[name].append(n / (time.perf_counter() - t0))
    for name, values in rates.items():
        print(f"{statistics.median(values):12,.0f} samples/s  {name}")


def parts():
    net, X, T = network()
    xp, params, lr = net.xp, net.params, 0.01
    print("batch 1, one sample inside MLP.sample_steps (chunk of 32, row 20):")
    Xc, Tc = X[:32, :], T[:32, :]
    W0, b0 = params[0]
    first, gram = Xc @ W0 + b0, Xc @ xp.matrix_transpose(Xc) + 1.0
    D, k = xp.zeros_like(first), 20
    z0 = first[k : k + 1, :] - gram[k : k + 1, :k] @ D[:k, :]
    z, acts = forward(xp, params, Xc[k : k + 1, :], net._activations, z0=z0)
    out = net.head.activation(xp, z)
    steps = backward(xp, params, acts, out, z, Tc[k : k + 1, :], net._derivatives, net.head, lr, input_weights=False)
    cost("first-layer pre-activation from the chunk's products", lambda: first[k : k + 1, :] - gram[k : k + 1, :k] @ D[:k, :])
    cost("forward through the other layers", lambda: forward(xp, params, Xc[k : k + 1, :], net._activations, z0=z0))
    cost("softmax", lambda: net.head.activation(xp, z))
    cost("backward (no first-layer weight gradient)", lambda: backward(
        xp, params, acts, out, z, Tc[k : k + 1, :], net._derivatives, net.head, lr, input_weights=False))
    copies = [(W.copy(), b.copy()) for W, b in params]
    cost("in-place SGD of the other layers", lambda: sgd(copies[1:], steps[1:], inplace=True))
    x, d, W = Xc[k : k + 1, :], steps[0][1][None, :], copies[0][0]
    print("what the chunks avoid, per sample:")
    cost("first-layer outer product x.T * d (784 x 32)", lambda: xp.matrix_transpose(x) * d)
    cost("the same as a k = 1 matrix product x.T @ d", lambda: xp.matrix_transpose(x) @ d, number=500)
    outer = xp.matrix_transpose(x) * d * 1e-9
    cost("its in-place update W -= outer", lambda: W.__isub__(outer))
    print("batch 1024, one step:")
    Xb, Tb = X[:1024, :], T[:1024, :]
    z, acts = forward(xp, params, Xb, net._activations)
    out, _ = net.head.forward(xp, z, Tb)
    cost("MLP.step", lambda: net.step([(W.copy(), b.copy()) for W, b in params], Xb, Tb, lr), number=50)
    cost("  forward", lambda: forward(xp, params, Xb, net._activations), number=50)
    cost("  softmax + summed cross-entropy", lambda: net.head.forward(xp, z, Tb), number=50)
    cost("  backward", lambda: backward(xp, params, acts, out, z, Tb, net._derivatives, net.head, lr), number=50)
    cost("  of which X @ W0 (1024 x 784 x 32)", lambda: Xb @ W0, number=50)
    cost("  of which X.T @ delta (784 x 1024 x 32)", lambda: xp.matrix_transpose(Xb) @ acts[1], number=50)
    try:
        import torch
    except ImportError:
        pass
    else:
        tX, tW, tA = (torch.from_numpy(np.asarray(a)) for a in (Xb, W0, acts[1]))
        cost("  PyTorch (its own BLAS), X @ W0", lambda: tX @ tW, number=50)
        cost("  PyTorch (its own BLAS), X.T @ delta", lambda: tX.T @ tA, number=50)
    d = np.asarray(z)
    print("NumPy's one-axis reductions of a (1024, 10) matrix against backends.py's:")
    cost("np.maximum.reduce(z, axis=1)", lambda: np.maximum.reduce(d, axis=1), number=200)
    cost("xp.max(z, axis=1)", lambda: xp.max(d, axis=1), number=200)
    h = np.asarray(acts[1])
    cost("np.add.reduce(a, axis=0), a (1024, 32)", lambda: np.add.reduce(h, axis=0), number=200)
    cost("xp.sum(a, axis=0)", lambda: xp.sum(h, axis=0), number=200)


def chunk():
    for name, n in (("small", 8192), ("large", 2048)):
        net, X, T = network(name)

        def one_step_per_sample(params, X, t, lr, net=net):  # what per-sample training did before chunks
            total = 0.0
            for k in range(X.shape[0]):
                params, loss = net.step(params, X[k : k + 1, :], t[k : k + 1, :], lr)
                total = total + loss
            return params, total

        def without_chunks(net=net, plain=one_step_per_sample):
            net.sample_steps = plain

        variants = {f"{name} net, batch 1, one MLP.step per sample": (
            without_chunks, lambda: xtrain.train_epoch(net, X[:n, :], T[:n, :], lr=0.01, batch_size=1), n)}
        for size in (1, 8, 16, 32, 64, 128):
            def setup(size=size, net=net):
                vars(net).pop("sample_steps", None)  # MLP.sample_steps again
                xtrain.SAMPLE_CHUNK = size
            variants[f"{name} net, batch 1, SAMPLE_CHUNK = {size}"] = (
                setup, lambda: xtrain.train_epoch(net, X[:n, :], T[:n, :], lr=0.01, batch_size=1), n)
        alternate(variants)
    xtrain.SAMPLE_CHUNK = 32


def reductions():
    net, X, T = network()
    xp = net.xp
    fast = xp.sum, xp.max
    plain = (lambda x, /, *, axis=None, dtype=None, keepdims=False: np.add.reduce(x, axis=axis, dtype=dtype, keepdims=keepdims),
             lambda x, /, *, axis=None, keepdims=False: np.maximum.reduce(x, axis=axis, keepdims=keepdims))
    variants = {}
    for batch in (64, 256, 1024):
        for label, pair in (("NumPy's reductions", plain), ("backends.py's", fast)):
            def setup(pair=pair):
                xp.sum, xp.max = pair
            variants[f"batch {batch}, {label}"] = (
                setup, lambda batch=batch: xtrain.train_epoch(net, X, T, lr=0.01, batch_size=batch), X.shape[0])
    alternate(variants)
    xp.sum, xp.max = fast


def threads():
    """Training epochs with NumPy's BLAS on one thread (threadpoolctl) against as many as it has."""
    from threadpoolctl import threadpool_limits

    for name, batches in (("small", (1, 64, 256)), ("large", (1, 64))):
        net, X, T = network(name, n=60000)
        variants = {}
        for batch in batches:  # rounds of about 0.3 s
            n = {("small", 1): 4096, ("large", 1): 1536, ("large", 64): 16384}.get((name, batch), 60000)
            for label, limit in (("BLAS threads as they are", None), ("one BLAS thread", 1)):
                def run(b=batch, n=n, limit=limit):
                    with threadpool_limits(limits=limit, user_api="blas"):
                        xtrain.train_epoch(net, X[:n, :], T[:n, :], lr=0.01, batch_size=b)
                variants[f"{name} net, batch {batch}, {label}"] = (lambda: None, run, n)
        alternate(variants, rounds=9)


def unroll():
    import jax

    scan = jax.lax.scan
    variants = {}
    for batch in (1, 1024):
        for u in (1, 4, 16):
            net, X, T = network(backend="jax")
            jax.lax.scan = lambda *a, u=u, **k: scan(*a, **{**k, "unroll": u})
            xtrain.train_epoch(net, X, T, lr=0.01, batch_size=batch, compile=True)  # compiles with this unroll
            jax.lax.scan = scan
            variants[f"JAX compiled, batch {batch}, unroll {u}"] = (
                lambda: None, lambda net=net, X=X, T=T, b=batch: xtrain.train_epoch(net, X, T, lr=0.01, batch_size=b,
                                                                                    compile=True), X.shape[0])
    alternate(variants)


def jax_reference():
    """xpnet's compiled JAX epoch against a minimal hand-written jit + scan of the same per-sample SGD."""
    import jax
    import jax.numpy as jnp

    net, X, T = network(backend="jax")
    sigmoid = net._activations[0]

    def step(params, x, t, lr=0.01):
        (W0, b0), (W1, b1), (W2, b2) = params
        a1 = sigmoid(jnp, x @ W0 + b0)
        a2 = sigmoid(jnp, a1 @ W1 + b1)
        d3 = (jax.nn.softmax(a2 @ W2 + b2) - t) * lr
        d2 = (d3 @ W2.T) * a2 * (1 - a2)
        d1 = (d2 @ W1.T) * a1 * (1 - a1)
        return [(W0 - x.T * d1, b0 - d1[0]), (W1 - a1.T * d2, b1 - d2[0]), (W2 - a2.T * d3, b2 - d3[0])]

    @jax.jit
    def epoch(params, X, T):
        def body(params, k):
            rows = (jax.lax.dynamic_slice_in_dim(A, k, 1) for A in (X, T))
            return step(params, *rows), None
        return jax.lax.scan(body, params, jnp.arange(X.shape[0]))[0]

    params = net.params
    jax.block_until_ready(epoch(params, X, T))
    xtrain.train_epoch(net, X, T, lr=0.01, batch_size=1, compile=True)
    alternate({
        "minimal jit + scan, no loss, batch 1": (lambda: None, lambda: jax.block_until_ready(epoch(params, X, T)), X.shape[0]),
        "xpnet compiled epoch, batch 1": (lambda: None, lambda: xtrain.train_epoch(net, X, T, lr=0.01, batch_size=1,
                                                                                  compile=True), X.shape[0]),
    })


if __name__ == "__main__":
    commands = {"parts": parts, "chunk": chunk, "reductions": reductions, "threads": threads, "unroll": unroll,
                "jax-reference": jax_reference}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python benchmarks/profile_step.py {'|'.join(commands)}")
    commands[sys.argv[1]]()
