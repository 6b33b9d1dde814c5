"""Training throughput (samples/s) on MNIST per implementation, network, dtype and batch size.

Every case uses xpnet.bench, the same measurement core as `xpnet bench`: the runner is warmed up and
calibrated outside the clock (which also compiles for the chosen size where the implementation compiles),
then pytest-benchmark times ROUNDS passes over the same samples. xpnet-jax-eager (JAX without the
compiled epoch) is left to `xpnet bench --impl xpnet-jax-eager` to keep the suite under 10 minutes.
"""

import peers
import pytest

from xpnet import bench

ROUNDS = 5
IMPLEMENTATIONS = [i for i in bench.implementations(devices=("cpu", "cuda"))
                   if i not in ("xpnet-jax-eager", "hand-tuned-numpy")]


@pytest.mark.parametrize("batch_size", bench.BATCH_SIZES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("net", list(bench.NETS))
def test_training_throughput(benchmark, mnist, net, dtype, implementation, batch_size):
    X, y = mnist
    batch = bench.resolve_batch(batch_size, len(y))
    try:
        runner = bench.make_runner(implementation, net, dtype, batch, X, y, peers)
    except bench.Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = f"{net} {dtype} batch {batch_size}"
    _time(benchmark, runner, batch, len(y),
          {"implementation": implementation, "net": net, "dtype": dtype, "batch_size": batch_size})


def _time(benchmark, runner, batch, n_total, base):
    """Calibrate ``runner``, time ROUNDS passes with pytest-benchmark, and keep xpnet.bench's record."""
    n = bench.calibrate(runner, batch, n_total)
    runner.setup(n)
    benchmark.pedantic(runner.run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    rates = [n / t for t in benchmark.stats.stats.data]
    benchmark.extra_info.update({**bench.record(base, runner, n, bench.summary(rates)), **bench.environment()})


@pytest.mark.parametrize("models", [1, 4, 16, 64, 256], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("batch_size", [1, 64], ids=lambda b: f"b{b}")
@pytest.mark.parametrize("implementation", ["xpnet-numpy", "xpnet-torch", "xpnet-jax", "xpnet-cupy@cuda",
                                            "xpnet-torch@cuda"])
def test_stacked_training_throughput(benchmark, mnist, implementation, batch_size, models):
    """Stacks of K networks trained by the same operations; extra_info's samples_per_second is per
    network, so model-samples/s is models x samples_per_second."""
    X, y = mnist
    try:
        runner = bench.make_runner(implementation, "small", "float32", batch_size, X, y, models=models)
    except bench.Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = f"stacks, small float32 batch {batch_size}"
    _time(benchmark, runner, batch_size, len(y), {"implementation": implementation, "net": "small", "dtype": "float32",
                                                 "batch_size": batch_size, "models": models})
