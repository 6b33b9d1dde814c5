"""The benchmark core: runners train correctly, calibration and tables behave. No timings asserted."""

import json

import numpy as np
import pytest

import xpnet
from xpnet import bench
from xpnet.cli import main

from helpers import ROOT, random_problem


@pytest.fixture(scope="module")
def data():
    X, y = random_problem(784, 10, n=512, seed=2)
    return np.abs(X) / 4, y


@pytest.mark.parametrize("implementation", ["xpnet-numpy", "torch-eager", "sklearn", "seeds-loop"])
def test_every_runner_trains_the_same_kind_of_network(implementation, data, peers):
    X, y = data
    try:
        runner = bench.make_runner(implementation, "small", "float64", 1, X, y, peers)
    except bench.Unavailable as exc:
        pytest.skip(str(exc))
    runner.setup(64)
    runner.run()  # must not raise; the xpnet runner's weights must have moved
    if implementation == "xpnet-numpy":
        assert not np.allclose(runner.model.get_weights()[0][0], xpnet.MLP(**bench.NETS["small"]).get_weights()[0][0])


def test_seeds_loop_matches_xpnet_per_sample_training(data, peers):
    """The baseline is the same algorithm: same init, same per-sample steps, same weights."""
    X, y = data
    seeds = bench.make_runner("seeds-loop", "small", "float64", 1, X, y, peers)
    ours = bench.make_runner("xpnet-numpy", "small", "float64", 1, X, y)
    for r in (seeds, ours):
        r.setup(200)
        r.run()
    for (W, b), W_seeds, b_seeds in zip(ours.model.get_weights(), seeds.net.weights, seeds.net.biases):
        np.testing.assert_allclose(W, W_seeds.T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b, b_seeds[:, 0], rtol=1e-9, atol=1e-12)


def test_unavailable_cases_say_why(data, peers):
    X, y = data
    with pytest.raises(bench.Unavailable, match="per-sample, float64"):
        bench.make_runner("seeds-loop", "small", "float32", 1, X, y, peers)
    with pytest.raises(bench.Unavailable, match="benchmarks/peers.py of a source checkout"):
        bench.make_runner("torch-eager", "small", "float32", 1, X, y)
    with pytest.raises(xpnet.ValidationError, match="unknown implementation"):
        bench.make_runner("tensorflow", "small", "float32", 1, X, y)


def test_calibrate_returns_whole_batches_within_the_data(data):
    X, y = data
    runner = bench.make_runner("xpnet-numpy", "small", "float32", 16, X, y)
    n = bench.calibrate(runner, 16, 500, target=0.01)
    assert n % 16 == 0 and 16 <= n <= 496


def test_markdown_table_shows_ratios_to_batch_one():
    results = [{"implementation": "a", "net": "small", "dtype": "float32", "batch_size": b, "samples_per_second": s}
               for b, s in ((1, 1000.0), (64, 32000.0))]
    table = bench.markdown_table(results, "small", "float32")
    assert "| a | 1e+03 | 32k (×32.0) |" in table.replace("1k", "1e+03")


def test_cli_bench_json(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # where ./benchmarks/peers.py is found
    code = main(["bench", "--impl", "xpnet-numpy,seeds-loop", "--batch-sizes", "16", "--rounds", "2",
                 "--target", "0.01", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["environment"]["versions"]["numpy"] == np.__version__
    measured, skipped = out["results"]
    assert measured["samples_per_second"] > 0 and len(measured["rounds"]) == 2
    assert "per-sample" in skipped["skipped"]


def test_hand_tuned_yardstick_trains_like_xpnet(data, peers):
    """benchmarks/hand_tuned.py (the per-sample speed yardstick) runs the same algorithm as xpnet."""
    X, y = data
    hand = bench.make_runner("hand-tuned-numpy", "small", "float32", 1, X, y, peers)
    ours = bench.make_runner("xpnet-numpy", "small", "float32", 1, X, y)
    for r in (hand, ours):
        r.setup(200)
        r.run()
    (W0, b0), (W1, b1), (W2, b2) = ours.model.get_weights()
    for got, expected in ((hand.WT0.T, W0), (hand.W1, W1), (hand.W2, W2), (hand.b0, b0), (hand.b1, b1), (hand.b2, b2)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(W2, xpnet.MLP(**bench.NETS["small"]).get_weights()[2][0])


def test_bench_runs_from_an_installed_package_without_the_checkout(tmp_path):
    """Away from a source checkout (no ./benchmarks/peers.py) xpnet's own backends are timed and the peers
    are listed as skipped, with where to find them."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "xpnet.cli", "bench", "--impl", "xpnet-numpy,torch-eager",
                           "--batch-sizes", "64", "--rounds", "1", "--target", "0.01", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ours, peer = json.loads(proc.stdout)["results"]
    assert ours["samples_per_second"] > 0
    assert "benchmarks/peers.py of a source checkout" in peer["skipped"]
    missing = subprocess.run([sys.executable, "-m", "xpnet.cli", "bench", "--peers", "nowhere/peers.py"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "no such file" in missing.stderr and missing.stderr.count("\n") == 1


def test_stacked_runner_reports_model_samples(data):
    X, y = data
    runner = bench.make_runner("xpnet-numpy", "small", "float32", 1, X, y, models=3)
    runner.setup(64)
    runner.run()
    results = [{"implementation": "xpnet-numpy", "net": "small", "dtype": "float32", "batch_size": 1, "models": k,
                "samples_per_second": s} for k, s in ((1, 1000.0), (4, 500.0))]
    assert "| xpnet-numpy | 4 | 2k (×2.0) |" in bench.models_table(results, "small", "float32")


@pytest.mark.parametrize("batch_size", [1, 64])
def test_time_to_accuracy_trains_exactly_as_fit_does(mnist, batch_size):
    """The learner trains in segments of 4,096 samples with the accuracy read between them; the batches,
    and so the weights, must be those of one uninterrupted fit (shuffled per epoch at batch 64)."""
    X, y, X_test, y_test = mnist
    data = (X[:10000].astype(np.float32), y[:10000], X_test[:1000].astype(np.float32), y_test[:1000])
    learner = bench.make_learner("xpnet-numpy", "small", "float32", batch_size, 0.1, 3, data)
    result = bench.time_to_accuracy(learner, [0.999], 10000, max_epochs=2)
    assert result["reached"] == {"0.999": None} and result["trained_samples"] == 20000
    assert [s for _, s, _ in result["curve"]][:4] == [0, 4096, 8192, 10000]
    alone = xpnet.MLP(**bench.NETS["small"], seed=3)
    alone.fit(data[0], data[1], epochs=2, lr=0.1, batch_size=batch_size, progress=False)
    for (W, b), (W2, b2) in zip(learner.model.get_weights(), alone.get_weights()):
        np.testing.assert_allclose(W, W2, rtol=1e-5, atol=1e-7)
    assert result["curve"][-1][2] == alone.evaluate(data[2], data[3])["accuracy"]


def test_cli_bench_to_accuracy(capsys):
    code = main(["bench", "--to-accuracy", "0.5", "--batch-sizes", "1024", "--max-seconds", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    (result,) = out["results"]
    assert code == 0 and out["targets"] == [0.5] and result["lr"] in bench.LR_GRID
    assert result["reached"]["0.5"]["samples"] > 0 and result["reached"]["0.5"]["seconds"] > 0
    for argv, message in ((["--to-accuracy", "1.5"], "accuracies between 0 and 1"),
                          (["--to-accuracy", "0.9", "--batch-sizes", "full"], "--batch-sizes from 1, 16")):
        assert main(["bench", *argv]) == 2
        assert message in capsys.readouterr().err
