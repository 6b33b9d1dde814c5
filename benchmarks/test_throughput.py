"""Training throughput (samples/s) on MNIST per implementation, network, dtype and batch size.

Every case uses xpnet.bench, the same measurement core as `xpnet bench`: the learner is warmed up and
calibrated outside the clock (which also compiles for the chosen size where the implementation compiles),
then pytest-benchmark times ROUNDS passes over the same samples. xpnet-jax-eager (JAX without the
compiled epoch) is left to `xpnet bench --impl xpnet-jax-eager` to keep the suite under 10 minutes.
"""

import os

import pytest

from xpnet import bench
from xpnet.errors import Unavailable

ROUNDS = 5
IMPLEMENTATIONS = [i for i in bench.implementations(devices=("cpu", "cuda"))
                   if i not in ("xpnet-jax-eager", "hand-tuned-numpy") and bench.parse(i).kind not in bench.STACKING_PEERS]
STACKS = ["xpnet-numpy", "xpnet-torch", "xpnet-jax", "torch-func", "jax-vmap", "xpnet-cupy@cuda", "xpnet-torch@cuda",
          "torch-func@cuda", "jax-vmap@cuda"]


@pytest.mark.parametrize("batch_size", bench.BATCH_SIZES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("net", list(bench.NETS))
def test_training_throughput(benchmark, mnist, net, dtype, implementation, batch_size):
    batch = bench.resolve_batch(batch_size, len(mnist.y))
    benchmark.group = f"{net} {dtype} batch {batch_size}"
    _time(benchmark, mnist, implementation, bench.case(net, dtype, batch), None,
          {"implementation": implementation, "net": net, "dtype": dtype, "batch_size": batch_size})


@pytest.mark.parametrize("models", [1, 4, 16, 64, 256], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("batch_size", [1, 64], ids=lambda b: f"b{b}")
@pytest.mark.parametrize("implementation", STACKS)
def test_stacked_training_throughput(benchmark, mnist, implementation, batch_size, models):
    """Stacks of K networks trained at once (xpnet by the same operations, the peers by their own
    ensembling); extra_info's samples_per_second is per network, so model-samples/s is models x
    samples_per_second. The peers stop at K = 64 (K = 256 per-sample would take minutes a round)."""
    if bench.parse(implementation).kind in bench.STACKING_PEERS and models > 64:
        pytest.skip("the peers' stacks are timed up to K = 64")
    benchmark.group = f"stacks, small float32 batch {batch_size}"
    _time(benchmark, mnist, implementation, bench.case("small", "float32", batch_size), models,
          {"implementation": implementation, "net": "small", "dtype": "float32", "batch_size": batch_size,
           "models": models})


def _time(benchmark, data, implementation, run, models, base):
    """Calibrate the learner, time ROUNDS passes with pytest-benchmark, and keep xpnet.bench's record."""
    try:
        learner = bench.make_learner(implementation, run, data, models)
    except Unavailable as exc:
        pytest.skip(str(exc))
    batch = run.training.batch_size
    with bench.learner_threads(learner) as threads:
        n = bench.calibrate(learner, batch, len(data.y))
        benchmark.pedantic(lambda: learner.train(0, n), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    rates = [n / t for t in benchmark.stats.stats.data]
    benchmark.extra_info.update({**bench.record(base, learner, n, bench.summary(rates)), "threads": threads,
                                 "busy_cores": int(os.environ.get("XPNET_BUSY_CORES", 0)), **bench.environment()})
