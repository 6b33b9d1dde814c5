"""The cost of a full-batch gradient-descent step on Dask, and the two designs for it, measured.

    python benchmarks/dask_step.py [--steps 10] [--chunk-rows 10000] [--workers 2]

The seeds' net (784-32-32-10 sigmoid), float32, full batch of the 60,000 MNIST training images (or
``--rows``), one step = forward, backward and the SGD update over every row:

- ``numpy``: xpnet's NumPy backend, the reference;
- ``dask graph``: xpnet's Dask backend -- the very kernels run on dask arrays split into chunks of
  ``--chunk-rows`` rows, one task graph per step, persisted after it (what ``backend="dask"`` does);
- ``dask per-chunk``: the design dask_glm uses for its gradients: the weights (small) go to every chunk
  as NumPy arrays, the same kernels compute each chunk's summed gradient with ``dask.delayed``, and the
  chunk gradients are added up;

each first with Dask's threaded scheduler in this process, then on a ``LocalCluster`` of ``--workers``
worker processes (the data scattered to them once). Reported: the median seconds per step over
``--steps`` steps after one warm-up step, and the overhead over NumPy's step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import xpnet
from xpnet import bench, kernels, optim, spec, train
from xpnet.session import Session

SGD = optim.SGD()


def sgd_step(xp, net, params, X, T, lr, inplace=False):
    """One SGD step: the kernels' gradients (and the summed loss), then the update."""
    loss, grads = kernels.gradients(xp, net, params, X, T, lr)
    params, _ = SGD.update(xp, params, grads, SGD.init_state(xp, params), {"lr": lr}, inplace)
    return params, loss


def numpy_step(net, X, T, lr):
    def step():
        net.params, _ = sgd_step(np, net.network, net.params, X, T, lr, inplace=True)
    return step


def graph_step(net, X, T, lr, wait):
    """The kernels on dask arrays as a whole: one graph per step, persisted after it."""
    import dask

    params = [tuple(net.xp.asarray(a) for a in pair) for pair in net.params]

    def step():
        nonlocal params
        new, loss = sgd_step(net.xp, net.network, params, X, T, lr)
        *flat, _ = dask.persist(*[a for pair in new for a in pair], loss)
        wait(flat)  # on a cluster, persist returns before the work is done
        params = list(zip(flat[::2], flat[1::2]))
    return step


def backend_step(net, X, T, lr):
    """xpnet's Dask backend as fit runs it: one full-batch epoch is one step -- the weights to the chunks,
    the kernels per chunk on NumPy, the gradients added up -- plus the epoch's checks."""
    run = spec.Run(training=spec.Training(epochs=1, batch_size=X.shape[0]), optimizer=spec.Optimizer(lr=lr),
                   seed=net.seeds[0])
    trainer = Session(net, train.Sets(X, T), [run]).trainer
    return lambda: trainer.run(range(1, 2), rows=(0, X.shape[0]))


def timed(step, steps) -> float:
    step()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--chunk-rows", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    import dask
    from dask.distributed import Client, LocalCluster, wait

    from xpnet.backends import DaskBackend

    data = bench.load_training_set()
    X, y = data.X[: args.rows].astype(np.float32), data.y[: args.rows]
    lr, small = 0.5, bench.case("small")
    ref = xpnet.MLP.from_spec(small)
    Xn, Tn = ref.inputs(X), ref.targets(y).astype(np.float32)
    DaskBackend.chunk_rows = args.chunk_rows

    def dask_cases(wait_for):
        net = xpnet.MLP.from_spec(small.replace(backend="dask"))
        Xd, Td = dask.persist(net.inputs(X), net.backend.asarray(Tn, "float32"))
        yield "one graph per step (the kernels on dask arrays)", timed(graph_step(net, Xd, Td, lr, wait_for), args.steps)
        yield "per chunk (xpnet's Dask backend, a fit epoch)", timed(backend_step(net, Xd, Td, lr), args.steps)

    base = timed(numpy_step(ref, Xn, Tn, lr), args.steps)
    print(f"{args.rows} rows in chunks of {args.chunk_rows}, seeds' net, float32; median seconds per full-batch step")
    print(f"| design | where | s/step | over NumPy |\n|---|---|---|---|\n| numpy | this process | {base:.4f} | — |")
    for name, seconds in dask_cases(lambda arrays: None):
        print(f"| {name} | threaded scheduler | {seconds:.4f} | {seconds - base:+.4f} |", flush=True)
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster):
        for name, seconds in dask_cases(wait):
            print(f"| {name} | {args.workers} worker processes | {seconds:.4f} | {seconds - base:+.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
