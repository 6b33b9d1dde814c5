"""pytest-benchmark suite: run with `python -m pytest benchmarks --benchmark-json=bench.json` (see
docs/benchmarks.md). Not part of the test run: pytest's testpaths name tests/ only."""

import pytest

from xpnet import bench


@pytest.fixture(scope="session")
def mnist():
    return bench.load_training_set()


def pytest_report_header(config):
    return ("xpnet throughput suite: each case trains on the first N MNIST training samples, N chosen so a "
            "timed round lasts about 0.25 s (batch 1 cases time such a fixed slice, not a whole epoch); "
            "samples/s is N / round time; see extra_info")
