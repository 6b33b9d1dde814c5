"""Training throughput (samples/s) on MNIST per implementation, network, dtype and batch size.

Every case uses xpnet.bench, the same measurement core as `xpnet bench`: the runner is warmed up and
calibrated outside the clock, then pytest-benchmark times ROUNDS passes over the same samples after one
untimed pass (which compiles for that size where the implementation compiles).
"""

import pytest

from xpnet import bench

ROUNDS = 5
IMPLEMENTATIONS = bench.implementations(devices=("cpu", "cuda"))


@pytest.mark.parametrize("batch_size", bench.BATCH_SIZES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("net", list(bench.NETS))
def test_training_throughput(benchmark, mnist, net, dtype, implementation, batch_size):
    X, y = mnist
    batch = bench.resolve_batch(batch_size, len(y))
    try:
        runner = bench.make_runner(implementation, net, dtype, batch, X, y)
    except bench.Unavailable as exc:
        pytest.skip(str(exc))
    n = bench.calibrate(runner, batch, len(y))
    runner.setup(n)
    benchmark.group = f"{net} {dtype} batch {batch_size}"
    benchmark.pedantic(runner.run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    times = benchmark.stats.stats.data
    rates = [n / t for t in times]
    info = bench.record({"implementation": implementation, "net": net, "dtype": dtype, "batch_size": batch_size},
                        runner, n, bench.summary(rates))
    info.update(bench.environment())
    benchmark.extra_info.update(info)
