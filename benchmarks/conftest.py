"""pytest-benchmark suite: run with `python -m pytest benchmarks --benchmark-json=bench.json` (see
docs/benchmarks.md). Not part of the test run: pytest's testpaths name tests/ only. `XPNET_BUSY_CORES=N`
keeps N cores busy for the whole session (a shared CPU), as `xpnet bench --busy-cores N` does."""

import os

import pytest

from xpnet import bench
from xpnet import workers as worker_processes


@pytest.fixture(scope="session")
def workers():
    """A worker process per implementation (xpnet.workers), each loading the MNIST training set."""
    with worker_processes.pool(bench.load_training_set) as pool:
        yield pool


@pytest.fixture(scope="session", autouse=True)
def busy_cores():
    count = int(os.environ.get("XPNET_BUSY_CORES", 0))
    with bench.busy_cores(count):
        yield count


def pytest_report_header(config):
    return ("xpnet throughput suite: each case trains on the first N MNIST training samples, N chosen so a "
            "timed round lasts about 0.25 s (batch 1 cases time such a fixed slice, not a whole epoch); "
            "samples/s is N / round time; see extra_info")
