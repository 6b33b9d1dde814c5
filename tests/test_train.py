"""Training on real MNIST, history, divergence, evaluation, saving and loading."""

import numpy as np
import pytest

import xpnet
from xpnet import datasets
from xpnet.errors import DataError, DivergenceError, ValidationError
from xpnet.io import load_weights

from helpers import random_problem


@pytest.fixture(scope="module")
def mnist():
    return datasets.prepare(datasets.load_mnist())


def test_minibatch_sgd_learns_mnist(mnist):
    X, y, X_test, y_test = mnist
    net = xpnet.MLP("784-32-32-10", activation="sigmoid", init="normal-max", seed=0)
    history = net.fit(X, y, epochs=2, lr=0.5, batch_size=32, X_test=X_test, y_test=y_test, progress=False)
    assert history[-1]["test_accuracy"] >= 0.935  # 94.33 % measured (2026-12-02)
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert set(history[0]) >= {"epoch", "train_loss", "test_loss", "test_accuracy", "samples_per_second", "weight_change"}
    assert len(history[0]["weight_change"]) == 3 and all(c > 0 for c in history[0]["weight_change"])
    result = net.evaluate(X_test, y_test)
    assert result["accuracy"] == pytest.approx(history[-1]["test_accuracy"])
    assert result["confusion"].sum() == 10000 and np.trace(result["confusion"]) == round(10000 * result["accuracy"])


def test_per_sample_sgd_learns_mnist(mnist):
    X, y, X_test, y_test = mnist
    net = xpnet.MLP("784-32-10", activation="tanh", init="xavier", seed=1)
    assert net.evaluate(X_test, y_test)["accuracy"] < 0.2
    net.fit(X[:6000], y[:6000], epochs=1, lr=0.05, batch_size=1, progress=False)
    # Per-sample SGD is chaotic: this run gave 88.95 % on one CPU and 86.68 % on another (2026-12-02), and
    # 87.44-89.16 % over 8 random relative perturbations of 1e-7 of its initial weights (as another rounding does).
    assert net.evaluate(X_test, y_test)["accuracy"] >= 0.86


def test_shuffling_is_seeded_and_per_epoch():
    X, y = random_problem(8, 3, n=40)
    runs = []
    for seed in (0, 0, 1):
        net = xpnet.MLP("8-6-3", seed=0, dtype="float64")
        net.fit(X, y, epochs=2, lr=0.3, batch_size=4, shuffle=True, seed=seed, progress=False)
        runs.append(net.get_weights()[0][0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


@pytest.mark.parametrize("first_big,lr", [(0, 10.0), (70, 0.1)])  # diverging in the 1st / 3rd chunk
def test_divergence_stops_and_keeps_the_last_finite_weights(first_big, lr):
    X, y = random_problem(8, 3, n=300)
    X[first_big:] *= 100
    net = xpnet.MLP("8-16-16-3", activation="identity", loss="squared", dtype="float32", seed=0)
    with pytest.raises(DivergenceError, match=rf"diverged at epoch 1, step \d+ of 300 \(lr={lr:g}\)") as info:
        net.fit(X, y, epochs=3, lr=lr, batch_size=1, progress=False)
    assert info.value.epoch == 1 and info.value.history == []
    assert info.value.step > first_big
    kept = net.get_weights()
    assert all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in kept)
    # the kept weights are those after step - 1: replaying that many steps from the start gives them
    again = xpnet.MLP("8-16-16-3", activation="identity", loss="squared", dtype="float32", seed=0)
    again.fit(X[: info.value.step - 1], y[: info.value.step - 1], epochs=1, lr=lr, batch_size=1, progress=False)
    for (W, b), (W2, b2) in zip(kept, again.get_weights()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": 41}, "batch_size must be at most the number of samples"),
        ({"epochs": -1}, "epochs must be an integer >= 0"),
        ({"X_test": np.zeros((2, 8))}, "X_test and y_test must be given together"),
    ],
)
def test_bad_training_arguments(kwargs, match):
    X, y = random_problem(8, 3, n=40)
    with pytest.raises(ValidationError, match=match):
        xpnet.MLP("8-3").fit(X, y, **kwargs)


def test_bad_data_is_refused():
    X, y = random_problem(8, 3, n=10)
    net = xpnet.MLP("8-3")
    with pytest.raises(ValidationError, match=r"X must have shape \(n_samples, 8\)"):
        net.fit(X[:, :5], y)
    with pytest.raises(ValidationError, match="same number of samples"):
        net.fit(X, y[:5])
    with pytest.raises(ValidationError, match=r"labels must lie in 0..2"):
        net.fit(X, y + 3)
    with pytest.raises(ValidationError, match="labels must be integers"):
        net.fit(X, y + 0.5)
    X[0, 0] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        net.fit(X, y)


def test_save_and_load_round_trip(tmp_path):
    X, y = random_problem(8, 3, n=20)
    net = xpnet.MLP("8-5-3", activation="relu", dtype="float64", seed=4)
    net.fit(X, y, epochs=1, lr=0.1, progress=False)
    path = tmp_path / "w.npz"
    net.save(path, dataset="random")
    again = xpnet.MLP.load(path)
    assert again.config() == net.config() and again.meta["dataset"] == "random"
    np.testing.assert_array_equal(again.predict_proba(X), net.predict_proba(X))
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["W0", "W1", "b0", "b1", "meta"]
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left behind


def test_damaged_weights_files_are_refused(tmp_path):
    good = tmp_path / "good.npz"
    xpnet.MLP("8-5-3").save(good)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="not a readable xpnet weights file"):
        load_weights(cut)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, W0=np.zeros((8, 4)), b0=np.zeros(5), meta=np.array('{"sizes": [8, 5]}'))
    with pytest.raises(DataError, match="layer 0 should be float W"):
        load_weights(wrong)
    bare = tmp_path / "bare.npz"
    np.savez(bare, W0=np.zeros((8, 5)), b0=np.zeros(5), meta=np.array('{"sizes": [8, 5]}'))
    with pytest.raises(DataError, match="lacks activations, loss, output"):
        xpnet.MLP.load(bare)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"sizes": [1, 1]}], dtype=object))
    with pytest.raises(DataError):
        load_weights(pickled)


def test_predict_for_one_output_unit_thresholds_at_half():
    net = xpnet.MLP("4-1", loss="logistic")
    net.set_weights([(np.array([[1.0], [0], [0], [0]]), np.zeros(1))])
    assert net.predict([[2.0, 0, 0, 0], [-2.0, 0, 0, 0]]).tolist() == [1, 0]
    assert net.n_classes == 2
