"""Where a training step's time goes, and the measurements behind issue 5's design choices.

    python benchmarks/profile_step.py parts       # per-part cost of the batch-1 and batch-1024 steps
    python benchmarks/profile_step.py chunk       # per-sample throughput against the sample_chunk argument
    python benchmarks/profile_step.py reductions  # NumPy's own sum/max against the kernels' helpers
    python benchmarks/profile_step.py threads     # NumPy's BLAS on one thread against as many as it has
    python benchmarks/profile_step.py unroll      # JAX's compiled epochs against the unroll and sample_chunk arguments
    python benchmarks/profile_step.py jax-reference  # xpnet's compiled JAX epoch against a minimal one
    python benchmarks/profile_step.py stack       # a stacked per-sample chunk, part by part (64 networks)

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

from xpnet import MLP, bench, kernels, optim, spec, train
from xpnet.backends import column_sum, row_max
from xpnet.session import Session

SGD = optim.SGD()


@functools.lru_cache(maxsize=None)
def training_set():
    data = bench.load_training_set()
    return data.X, data.y


def network(name="small", backend="numpy", n=16384):
    X, y = training_set()
    net = MLP.from_spec(bench.case(name).replace(backend=backend))
    return net, net.inputs(X[:n]), net.backend.asarray(net.targets(y[:n]), "float32")


def epoch(net, X, T, batch_size, **settings):
    """A function that trains one epoch over ``X`` (the Trainer that :func:`xpnet.fit` uses)."""
    run = spec.Run(training=spec.Training(epochs=1, batch_size=batch_size, shuffle=False, **settings),
                   optimizer=spec.Optimizer(lr=0.01), seed=net.seeds[0])
    trainer = Session(net, train.Sets(X, T), [run]).trainer
    return lambda: trainer.run(range(1, 2), rows=(0, X.shape[0]))  # a pass: the run's state stays as it was


def sgd_step(xp, net, params, X, T, lr):
    """One SGD step in place: the kernels' gradients, then the update."""
    _, grads = kernels.gradients(xp, net, params, X, T, lr)
    return SGD.update(xp, params, grads, SGD.init_state(xp, params), {"lr": lr}, inplace=True)


def cost(label, fn, number=2000):
    seconds = min(timeit.repeat(fn, number=number, repeat=5)) / number
    print(f"{seconds * 1e6:9.1f} us  {label}")


def alternate(variants: dict, rounds=5):
    """Median samples/s of each ``name -> (run, n)`` variant over rounds that take turns."""
    rates = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (run, n) in variants.items():
            t0 = time.perf_counter()
            run()
            rates[name].append(n / (time.perf_counter() - t0))
    for name, values in rates.items():
        print(f"{statistics.median(values):12,.0f} samples/s  {name}")


def parts():
    net, X, T = network()
    xp, params, lr, nw = net.xp, net.params, 0.01, net.network
    print("batch 1, one sample inside kernels.sample_steps (chunk of 32, row 20):")
    Xc, Tc = X[:32, :], T[:32, :]
    W0, b0 = params[0]
    first, gram = Xc @ W0 + b0, Xc @ Xc.mT + 1.0
    k = 20
    z0 = first[k : k + 1, :]
    z, acts = kernels.forward(xp, nw, params, Xc[k : k + 1, :], z0=z0)
    out = nw.head.activation(xp, z)
    steps = kernels.backward(xp, nw, params, acts, out, z, Tc[k : k + 1, :], lr, input_weights=False)
    d = steps[0][1]
    cost("forward through the other layers", lambda: kernels.forward(xp, nw, params, Xc[k : k + 1, :], z0=z0))
    cost("softmax", lambda: nw.head.activation(xp, z))
    cost("backward (no first-layer weight gradient)", lambda: kernels.backward(
        xp, nw, params, acts, out, z, Tc[k : k + 1, :], lr, input_weights=False))
    copies = [(W.copy(), b.copy()) for W, b in params]
    cost("in-place SGD of the other layers", lambda: SGD.update(xp, copies[1:], steps[1:], [()] * 2, {}, inplace=True))
    cost("the later rows' first-layer correction", lambda: first - gram[:, k : k + 1] * d)
    x, W = Xc[k : k + 1, :], copies[0][0]
    print("what the chunks avoid, per sample:")
    cost("first-layer outer product x.T * d (784 x 32)", lambda: x.mT * d)
    cost("the same as a k = 1 matrix product x.T @ d", lambda: x.mT @ d, number=500)
    outer = x.mT * d * 1e-9
    cost("its in-place update W -= outer", lambda: W.__isub__(outer))
    print("batch 1024, one step:")
    Xb, Tb = X[:1024, :], T[:1024, :]
    z, acts = kernels.forward(xp, nw, params, Xb)
    out, _ = nw.head.forward(xp, z, Tb)
    cost("one SGD step", lambda: sgd_step(xp, nw, [(W.copy(), b.copy()) for W, b in params], Xb, Tb, lr), number=50)
    cost("  forward", lambda: kernels.forward(xp, nw, params, Xb), number=50)
    cost("  softmax + summed cross-entropy", lambda: nw.head.forward(xp, z, Tb), number=50)
    cost("  backward", lambda: kernels.backward(xp, nw, params, acts, out, z, Tb, lr), number=50)
    cost("  of which X @ W0 (1024 x 784 x 32)", lambda: Xb @ W0, number=50)
    cost("  of which X.T @ delta (784 x 1024 x 32)", lambda: Xb.mT @ acts[1], number=50)
    try:
        import torch
    except ImportError:
        pass
    else:
        tX, tW, tA = (torch.from_numpy(np.asarray(a)) for a in (Xb, W0, acts[1]))
        cost("  PyTorch (its own BLAS), X @ W0", lambda: tX @ tW, number=50)
        cost("  PyTorch (its own BLAS), X.T @ delta", lambda: tX.T @ tA, number=50)
    reductions(np.asarray(z), np.asarray(acts[1]))


def reductions(z=None, h=None):
    """NumPy's own one-axis reductions against the kernels' helpers (backends.py), on the batch-1024
    step's (1024, 10) output and (1024, 32) hidden activations."""
    if z is None:
        rng = np.random.default_rng(0)
        z, h = rng.normal(size=(1024, 10)).astype(np.float32), rng.normal(size=(1024, 32)).astype(np.float32)
    print("one-axis reductions, NumPy's own against the helpers the kernels call:")
    cost("np.max(z, axis=-1, keepdims=True), z (1024, 10)", lambda: np.max(z, axis=-1, keepdims=True), number=200)
    cost("row_max(np, z)", lambda: row_max(np, z), number=200)
    cost("np.sum(a, axis=-2, keepdims=True), a (1024, 32)", lambda: np.sum(h, axis=-2, keepdims=True), number=200)
    cost("column_sum(np, a)", lambda: column_sum(np, h), number=200)
    one = z[:1]
    cost("np.sum(z, axis=-1, keepdims=True), z (1, 10)", lambda: np.sum(one, axis=-1, keepdims=True), number=5000)
    cost("np.add.reduce(z, axis=-1, keepdims=True), z (1, 10)", lambda: np.add.reduce(one, axis=-1, keepdims=True),
         number=5000)


def chunk():
    for name, n in (("small", 8192), ("large", 2048)):
        net, X, T = network(name)
        variants = {}
        for size in (1, 8, 16, 32, 64, 128):  # 1: one plain step per sample
            variants[f"{name} net, batch 1, sample_chunk = {size}"] = (
                epoch(net, X[:n, :], T[:n, :], 1, sample_chunk=size), n)
        alternate(variants)


def threads():
    """Training epochs with NumPy's BLAS on one thread (threadpoolctl) against as many as it has."""
    from threadpoolctl import threadpool_limits

    for name, batches in (("small", (1, 64, 256)), ("large", (1, 64))):
        net, X, T = network(name, n=60000)
        variants = {}
        for batch in batches:  # rounds of about 0.3 s
            n = {("small", 1): 4096, ("large", 1): 1536, ("large", 64): 16384}.get((name, batch), 60000)
            run = epoch(net, X[:n, :], T[:n, :], batch)
            for label, limit in (("BLAS threads as they are", None), ("one BLAS thread", 1)):
                def limited(run=run, limit=limit):
                    with threadpool_limits(limits=limit, user_api="blas"):
                        run()
                variants[f"{name} net, batch {batch}, {label}"] = (limited, n)
        alternate(variants, rounds=9)


def unroll():
    variants = {}
    for batch, chunks in ((1, (1, 32)), (1024, (1,))):
        for size in chunks:
            for u in (1, 4, 16):
                net, X, T = network(backend="jax")
                run = epoch(net, X, T, batch, sample_chunk=size, unroll=u)
                run()  # compiles with this unroll
                label = f"JAX compiled, batch {batch}" + (f", sample_chunk {size}" if batch == 1 else "")
                variants[f"{label}, unroll {u}"] = (run, X.shape[0])
    alternate(variants)


def stack(K=64):
    """Where a stacked per-sample chunk's time goes (NumPy, K networks, 32 samples)."""
    from xpnet import Stack

    X, y = training_set()
    st = Stack.from_runs([bench.case("small", seed=k) for k in range(K)])
    xp, nw, P = np, st.network, st.params
    Xc, T = st.inputs(X[:32]), st.backend.asarray(st.targets(y[:32]), "float32")
    lr = np.full((K, 1, 1), 0.01, np.float32)
    W0, b0 = P[0]
    print(f"NumPy, {K} networks, one chunk of 32 samples:")
    cost("the whole kernels.sample_steps call", lambda: kernels.sample_steps(
        xp, nw, [(W.copy(), b.copy()) for W, b in P], Xc, T, SGD, {"lr": lr}, [()] * 3, inplace=True), number=5)
    cost("its first product X @ W0", lambda: Xc @ W0 + b0, number=20)
    D = np.random.default_rng(0).random((K, 32, 32), dtype=np.float32)
    cost("its last product X.T @ D", lambda: Xc.mT @ D, number=20)
    k = 5
    first, gram = Xc @ W0 + b0, Xc @ Xc.mT + 1.0
    z, acts = kernels.forward(xp, nw, P, Xc[k : k + 1], z0=first[:, k : k + 1])
    out = nw.head.activation(xp, z)
    steps = kernels.backward(xp, nw, P, acts, out, z, T[k : k + 1], scale=lr, input_weights=False)
    print("per sample:")
    cost("forward through the upper layers", lambda: kernels.forward(xp, nw, P, Xc[k : k + 1], z0=first[:, k : k + 1]))
    cost("softmax", lambda: nw.head.activation(xp, z))
    cost("backward of the upper layers (their outer products)", lambda: kernels.backward(
        xp, nw, P, acts, out, z, T[k : k + 1], scale=lr, input_weights=False))
    rest = [(W.copy(), b.copy()) for W, b in P[1:]]
    zero = [(0 * dW, 0 * db) for dW, db in steps[1:]]
    cost("SGD of the upper layers", lambda: SGD.update(xp, rest, zero, [()] * 2, {}, inplace=True))
    d = steps[0][1]
    cost("the first layer's correction of 16 rows still to come", lambda: first[:, 16:] - gram[16:, k : k + 1] * d)
    a = acts[1]
    cost(f"one broadcast outer product ({K}, 32, 1) x ({K}, 1, 32)", lambda: a.mT * a)
    outer = a.mT * a
    cost("copying an array of that size", lambda: outer.copy())


def jax_reference():
    """xpnet's compiled JAX epoch against a minimal hand-written jit + scan of the same per-sample SGD."""
    import jax
    import jax.numpy as jnp

    net, X, T = network(backend="jax")
    sigmoid = net.network.hidden[0].forward

    def step(params, x, t, lr=0.01):
        (W0, b0), (W1, b1), (W2, b2) = params
        a1 = sigmoid(jnp, x @ W0 + b0)
        a2 = sigmoid(jnp, a1 @ W1 + b1)
        d3 = (jax.nn.softmax(a2 @ W2 + b2) - t) * lr
        d2 = (d3 @ W2.T) * a2 * (1 - a2)
        d1 = (d2 @ W1.T) * a1 * (1 - a1)
        return [(W0 - x.T * d1, b0 - d1), (W1 - a1.T * d2, b1 - d2), (W2 - a2.T * d3, b2 - d3)]

    @jax.jit
    def minimal(params, X, T):
        def body(params, k):
            rows = (jax.lax.dynamic_slice_in_dim(A, k, 1) for A in (X, T))
            return step(params, *rows), None
        return jax.lax.scan(body, params, jnp.arange(X.shape[0]))[0]

    params = net.params
    jax.block_until_ready(minimal(params, X, T))
    ours = epoch(net, X, T, 1)
    ours()
    alternate({
        "minimal jit + scan, no loss, batch 1": (lambda: jax.block_until_ready(minimal(params, X, T)), X.shape[0]),
        "xpnet compiled epoch, batch 1": (ours, X.shape[0]),
    })


if __name__ == "__main__":
    commands = {"parts": parts, "chunk": chunk, "reductions": reductions, "threads": threads, "unroll": unroll,
                "stack": stack,
                "jax-reference": jax_reference}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python benchmarks/profile_step.py {'|'.join(commands)}")
    commands[sys.argv[1]]()
