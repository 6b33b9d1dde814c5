"""Training throughput (samples/s) on MNIST per implementation, network, dtype and batch size.

Every case uses the measurement core of `xpnet bench` (xpnet.bench and xpnet.workers): each
implementation runs in a worker process of its own, started on first use (in one process, one library's
thread pools and workers slowed the next library's cases down 50-140x); there the learner is warmed up
and calibrated outside the clock (which also compiles for the chosen size where the implementation
compiles), then pytest-benchmark times ROUNDS passes over the same samples, the worker waiting before each
until its threads are quiet (off the clock). xpnet-jax-eager (JAX without the compiled epoch) is left to
`xpnet bench --impl xpnet-jax-eager` to keep the suite under 10 minutes.
"""

import os

import pytest

from xpnet import bench

ROUNDS = 5
IMPLEMENTATIONS = [i for i in bench.implementations(devices=("cpu", "cuda"))
                   if i not in ("xpnet-jax-eager", "hand-tuned-numpy") and bench.parse(i).kind not in bench.STACKING_PEERS]
STACKS = ["xpnet-numpy", "xpnet-torch", "xpnet-jax", "torch-func", "jax-vmap", "xpnet-cupy@cuda", "xpnet-torch@cuda",
          "torch-func@cuda", "jax-vmap@cuda"]


@pytest.mark.parametrize("batch_size", bench.BATCH_SIZES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("net", list(bench.NETS))
def test_training_throughput(benchmark, workers, net, dtype, implementation, batch_size):
    benchmark.group = f"{net} {dtype} batch {batch_size}"
    _time(benchmark, workers, bench.Case(implementation, net, dtype, batch_size),
          {"implementation": implementation, "net": net, "dtype": dtype, "batch_size": batch_size})


@pytest.mark.parametrize("models", [1, 4, 16, 64, 256], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("batch_size", [1, 64], ids=lambda b: f"b{b}")
@pytest.mark.parametrize("implementation", STACKS)
def test_stacked_training_throughput(benchmark, workers, implementation, batch_size, models):
    """Stacks of K networks trained at once (xpnet by the same operations, the peers by their own
    ensembling); extra_info's samples_per_second is per network, so model-samples/s is models x
    samples_per_second. The peers stop at K = 64 (K = 256 per-sample would take minutes a round)."""
    if bench.parse(implementation).kind in bench.STACKING_PEERS and models > 64:
        pytest.skip("the peers' stacks are timed up to K = 64")
    benchmark.group = f"stacks, small float32 batch {batch_size}"
    _time(benchmark, workers, bench.Case(implementation, "small", "float32", batch_size, models),
          {"implementation": implementation, "net": "small", "dtype": "float32", "batch_size": batch_size,
           "models": models})


def _time(benchmark, workers, case, base):
    """Prepare the case in its implementation's worker, time ROUNDS passes with pytest-benchmark, and
    keep the record `xpnet bench --json` gives (its rates from the seconds the worker measured)."""
    info = workers.prepare(case)
    if "skipped" in info:
        pytest.skip(info["skipped"])
    seconds = []

    def one_round():
        seconds.append(workers.round(case.implementation, quiet=False)["seconds"])

    try:
        benchmark.pedantic(one_round, setup=lambda: workers.settle(case.implementation) and None, rounds=ROUNDS,
                           iterations=1, warmup_rounds=0)
    finally:
        workers.release(case.implementation)
    stats = bench.summary([info["samples_per_round"] / t for t in seconds])
    benchmark.extra_info.update({**base, **stats, **info, "passes": info["passes"] + len(seconds), "isolated": True,
                                 "busy_cores": int(os.environ.get("XPNET_BUSY_CORES", 0)), **bench.environment()})
