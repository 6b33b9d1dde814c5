"""Stacks of networks: each network ends as it ends trained alone, on every backend; a diverging one is
frozen and leaves the others untouched; sweeps group, record, save and refuse bad grids."""

import json
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet import spec
from xpnet import sweep as sw
from xpnet.cli import main
from xpnet.errors import DivergenceError, ValidationError

from helpers import CPU, GPU, TOLERANCE, assert_same_weights, random_problem, sample_chunk

#: Per network: learning rate, seed (initial weights and shuffling), initialisation, initial scale.
NETWORKS = [(0.5, 7, "normal-max", 1.0), (0.2, 3, "xavier", 0.5), (0.8, 7, "he", 2.0)]


@pytest.fixture(scope="module")
def problem():
    return random_problem(30, 4, n=800, seed=5)


def _alone(backend, dtype, batch_size, X, y, lr, seed, init, scale):
    net = xpnet.MLP([30, 16, 16, 4], activation="sigmoid", init=init, seed=seed, init_scale=scale,
                    backend=backend, dtype=dtype)
    net.fit(X, y, epochs=2, lr=lr, batch_size=batch_size, progress=False, sample_chunk=sample_chunk(backend))
    return net.get_weights()


@pytest.mark.parametrize("batch_size", [1, 16])
@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("backend", CPU + GPU, indirect=True)
def test_every_network_of_a_stack_ends_as_it_ends_alone(backend, dtype, batch_size, problem):
    """Per-sample (in chunks, across a chunk boundary) and shuffled minibatch SGD, two epochs; the
    networks differ in learning rate, seed, initialisation and scale, and two share a seed."""
    X, y = problem
    n = 50 * batch_size if batch_size > 1 else 70
    X, y = X[:n], y[:n]
    stack = xpnet.Stack([30, 16, 16, 4], seeds=[s for _, s, _, _ in NETWORKS], init=[i for _, _, i, _ in NETWORKS],
                        init_scale=[c for _, _, _, c in NETWORKS], backend=backend, dtype=dtype)
    histories = stack.fit(X, y, epochs=2, lr=[lr for lr, _, _, _ in NETWORKS], batch_size=batch_size, progress=False,
                          sample_chunk=sample_chunk(backend))
    assert len(histories) == 3 and all(len(h) == 2 for h in histories)
    for k, (lr, seed, init, scale) in enumerate(NETWORKS):
        got = stack.model(k).get_weights()
        assert got[0][0].dtype == np.dtype(dtype)
        alone = _alone(backend, dtype, batch_size, X, y, lr, seed, init, scale)
        if backend.name == "numpy":  # bit for bit (docs/math.md): the same operations, row for row
            for (W, b), (eW, eb) in zip(got, alone):
                np.testing.assert_array_equal(W, eW)
                np.testing.assert_array_equal(b, eb)
        assert_same_weights(got, alone, dtype)


def test_a_stack_reports_what_each_network_reports_alone(problem):
    X, y = problem
    stack = xpnet.Stack("30-8-4", seeds=[0, 1], backend="numpy", dtype="float64")
    histories = stack.fit(X[:200], y[:200], epochs=2, lr=[0.1, 0.3], batch_size=8, X_test=X[200:], y_test=y[200:],
                          progress=False)
    scores = stack.evaluate(X[200:], y[200:])
    for k, lr in enumerate((0.1, 0.3)):
        net = xpnet.MLP("30-8-4", seed=k, dtype="float64")
        alone = net.fit(X[:200], y[:200], epochs=2, lr=lr, batch_size=8, X_test=X[200:], y_test=y[200:], progress=False)
        for a, b in zip(histories[k], alone):
            for key in ("train_loss", "test_loss", "test_accuracy"):
                assert a[key] == pytest.approx(b[key], rel=1e-12)
            np.testing.assert_allclose(a["weight_change"], b["weight_change"], rtol=1e-12)
        assert scores[k]["accuracy"] == net.evaluate(X[200:], y[200:])["accuracy"]
        np.testing.assert_array_equal(stack.predict(X[200:])[k], net.predict(X[200:]))
    assert stack.predict_proba(X[:5]).shape == (2, 5, 4)


def _diverging_problem():
    X, y = random_problem(8, 3, n=300)
    X[70:] *= 100  # the large lr diverges in the third chunk of 32 samples (the ninth of 8 on JAX)
    return X, y


@pytest.mark.parametrize("backend", ["numpy", "jax"], indirect=True)
def test_a_diverging_network_is_frozen_and_the_others_train_on(backend):
    X, y = _diverging_problem()
    kwargs = dict(activation="identity", loss="squared", dtype="float32", backend=backend)
    chunk = sample_chunk(backend)
    stack = xpnet.Stack("8-16-16-3", seeds=[0, 1, 0], **kwargs)
    histories = stack.fit(X, y, epochs=3, lr=[1e-5, 0.1, 1e-6], batch_size=1, progress=False, sample_chunk=chunk)
    assert stack.diverged[0] is None and stack.diverged[2] is None
    where = stack.diverged[1]
    with pytest.raises(DivergenceError) as alone:  # the same network alone: where and what it keeps
        lone = xpnet.MLP("8-16-16-3", seed=1, **kwargs)
        lone.fit(X, y, epochs=3, lr=0.1, batch_size=1, progress=False, sample_chunk=chunk)
    assert (where["epoch"], where["step"]) == (alone.value.epoch, alone.value.step) and where["step"] > 70
    assert where["at"] in str(alone.value)
    assert histories[1] == [] and len(histories[0]) == len(histories[2]) == 3
    assert_same_weights(stack.model(1).get_weights(), lone.get_weights(), "float32")
    # the others end as if the diverging network had never been in their stack
    rest = xpnet.Stack("8-16-16-3", seeds=[0, 0], **kwargs)
    rest.fit(X, y, epochs=3, lr=[1e-5, 1e-6], batch_size=1, progress=False, sample_chunk=chunk)
    for k, j in ((0, 0), (2, 1)):
        assert_same_weights(stack.model(k).get_weights(), rest.model(j).get_weights(), "float32")
    # a frozen network stays frozen in a later fit
    stack.fit(X[:70], y[:70], epochs=1, lr=0.1, batch_size=1, progress=False, sample_chunk=chunk)
    assert_same_weights(stack.model(1).get_weights(), lone.get_weights(), "float32")


def test_stack_arguments_are_checked():
    with pytest.raises(ValidationError, match="at least one network"):
        xpnet.Stack("4-3", seeds=[])
    with pytest.raises(ValidationError, match="one per network"):
        xpnet.Stack("4-3", seeds=[0, 1], init=["he", "he", "he"])
    stack = xpnet.Stack("4-3", seeds=[0, 1])
    X, y = random_problem(4, 3, n=10)
    with pytest.raises(ValidationError, match="lr takes one value or one per network"):
        stack.fit(X, y, lr=[0.1, 0.1, 0.1])
    with pytest.raises(ValidationError, match="lr must be > 0"):
        stack.fit(X, y, lr=[0.1, -1.0])
    with pytest.raises(ValidationError, match="network index"):
        stack.model(2)


# -- sweeps --------------------------------------------------------------------------------------
def test_grid_is_the_product_and_plan_groups_by_architecture():
    configs = spec.expand(spec.grid(lr=[0.1, 0.01], seed=range(3), layers=["784-32-10", "784-16-10"], batch_size=[1, 64]))
    assert len(configs) == 2 * 3 * 2 * 2
    stacks = sw.plan(configs, n_samples=60000)
    assert len(stacks) == 4 and all(len(s) == 6 for s in stacks)
    assert all(len({c.stack_key() for c in s}) == 1 for s in stacks)
    assert [len(s) for s in sw.plan(configs, 60000, stack_size=4)] == [4, 2] * 4


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": []}, "lr is an empty list"),
        ({"lr": [0.1, 0.1]}, "lr lists 0.1 twice"),
        ({"seed": [1, 1]}, "seed lists 1 twice"),
        ({"init": ["he", "glorot"]}, "init must be one of"),
        ({"activation": ["relu/tanh/relu"], "layers": ["784-32-10"]}, "names 3 layers"),
        ({"lr": [0.0]}, "lr must be > 0"),
    ],
)
def test_bad_grids_are_refused(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        spec.expand(spec.grid(**kwargs))


def test_a_stack_that_does_not_fit_is_refused():
    configs = spec.expand(spec.grid(lr=[0.1], seed=range(64), layers=["784-256-10"], batch_size=[64]))
    with pytest.raises(ValidationError, match=r"a stack of 64 networks .* more than the memory budget of 10 MiB; "
                                              r"use --stack-size \d+ or less"):
        sw.plan(configs, 60000, stack_size=64, memory=10 * 2**20)
    with pytest.raises(ValidationError, match="one network of layers 784-256-10 needs"):
        sw.plan(configs, 60000, memory=2**20)


def test_the_python_sweep_returns_records_in_grid_order(mnist):
    X, y, X_test, y_test = mnist
    grid = spec.grid(lr=[0.5, 0.05], seed=[0, 1], layers="784-8-10", batch_size=[1, 32], epochs=2, dtype="float64")
    records = sw.sweep(grid, (X[:600], y[:600], X_test[:300], y_test[:300]), progress=False)
    assert [(r["lr"], r["seed"], r["batch_size"]) for r in records] == [
        (lr, s, b) for lr in (0.5, 0.05) for s in (0, 1) for b in (1, 32)]
    best = sw.best_first(records)[0]
    net = xpnet.MLP("784-8-10", seed=best["seed"], dtype="float64")
    net.fit(X[:600], y[:600], epochs=2, lr=best["lr"], batch_size=best["batch_size"], progress=False)
    assert net.evaluate(X_test[:300], y_test[:300])["accuracy"] == best["test_accuracy"]
    assert all(len(r["history"]) == 2 and r["diverged"] is None for r in records)
    rows = sw.summary_over_seeds(records)
    assert len(rows) == 4 and all(r["seeds"] == 2 for r in rows)


SWEEP = ["sweep", "--digits", "1,5", "--layers", "784-8-1", "--loss", "logistic", "--activation", "tanh",
         "--dtype", "float64", "--epochs", "1", "--no-progress"]


def test_cli_sweep_equals_xpnet_train_for_each_configuration(capsys, tmp_path):
    """The weights each configuration of a sweep ends with are those `xpnet train` gives it alone."""
    code = main([*SWEEP, "--lr", "0.01,0.05", "--seed", "0-1", "--batch-size", "1,16", "--init", "xavier",
                 "--save-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r.jsonl"), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    printed = [json.loads(line) for line in out.splitlines()]
    saved = sw.load_records(tmp_path / "r.jsonl")
    assert len(printed) == 8 and sorted(map(json.dumps, printed)) == sorted(map(json.dumps, saved))
    for record in (r for r in saved if r["seed"] == 1 and r["lr"] == 0.05):
        path = tmp_path / f"alone{record['batch_size']}.npz"
        assert main(["train", *SWEEP[1:], "--lr", "0.05", "--seed", "1", "--init", "xavier", "--batch-size",
                     str(record["batch_size"]), "--save", str(path), "--json"]) == 0
        alone = json.loads(capsys.readouterr().out)
        assert alone["test_accuracy"] == pytest.approx(record["test_accuracy"], abs=1e-12)
        assert [h["train_loss"] for h in alone["history"]] == pytest.approx([h["train_loss"] for h in record["history"]],
                                                                            rel=1e-10)
        assert_same_weights(xpnet.MLP.load(record["weights"]).get_weights(), xpnet.MLP.load(path).get_weights(),
                            "float64")
    assert main(["evaluate", "--weights", saved[0]["weights"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == saved[0]["test_accuracy"]


def test_cli_sweep_equals_xpnet_train_with_validation_and_a_seed(capsys, tmp_path):
    """The same flags mean the same data: --validation holds out the rows --split-seed chooses in both
    commands, whatever --seed is (once, train split with --seed and sweep with 0)."""
    shared = [*SWEEP[1:], "--validation", "0.2", "--split-seed", "2", "--lr", "0.05", "--seed", "3"]
    assert main(["sweep", *shared, "--batch-size", "1,16", "--save-dir", str(tmp_path / "w"), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 2 and all(r["validation"] == 0.2 and r["split_seed"] == 2 for r in records)
    for record in records:
        path = tmp_path / f"alone{record['batch_size']}.npz"
        assert main(["train", *shared, "--batch-size", str(record["batch_size"]), "--save", str(path), "--json"]) == 0
        alone = json.loads(capsys.readouterr().out)
        for key in ("val_loss", "val_accuracy", "test_loss", "train_loss"):
            assert [h[key] for h in alone["history"]] == pytest.approx([h[key] for h in record["history"]], rel=1e-10)
        assert alone["test_accuracy"] == pytest.approx(record["test_accuracy"], abs=1e-12)
        assert_same_weights(xpnet.MLP.load(record["weights"]).get_weights(), xpnet.MLP.load(path).get_weights(),
                            "float64")
    n = records[0]["history"][0]
    assert 0.5 < n["val_accuracy"] <= 1.0


def test_the_python_sweep_resumes_and_saves_what_the_command_does(mnist, tmp_path):
    """xpnet.sweep.Sweep does what xpnet sweep does: records to a file, resumed after a first part, one
    weights file per configuration."""
    X, y, X_test, y_test = mnist
    data = (X[:400], y[:400], X_test[:200], y_test[:200])
    out = tmp_path / "r.jsonl"
    first = sw.sweep(spec.grid(lr=[0.1, 0.3], layers="784-8-10", epochs=1, dtype="float64"), data, out=out,
                     save_dir=tmp_path / "w", progress=False)
    grid = spec.grid(lr=[0.1, 0.3, 1.0], layers="784-8-10", epochs=1, dtype="float64")
    resumed = sw.Sweep(grid, data, out=out, resume=True, save_dir=tmp_path / "w")
    assert len(resumed.done) == 2 and [r.optimizer.lr for r in resumed.todo] == [1.0]
    records = resumed.run(progress=False)
    assert [r["lr"] for r in records] == [0.1, 0.3, 1.0] and records[:2] == first
    assert sw.load_records(out) == records
    for r in records:
        net = xpnet.MLP.load(r["weights"])
        assert net.evaluate(X_test[:200], y_test[:200])["accuracy"] == r["test_accuracy"]
        assert spec.from_meta(net.meta).optimizer.lr == r["lr"]


def test_cli_sweep_marks_a_diverged_configuration(capsys):
    code = main(["sweep", "--digits", "1,5", "--layers", "784-8-1", "--loss", "squared", "--activation", "identity",
                 "--lr", "0.001,10", "--epochs", "1", "--no-progress", "--json"])
    records = {r["lr"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert code == 0 and records[0.001]["diverged"] is None
    assert records[10]["diverged"]["epoch"] == 1 and records[10]["diverged"]["at"].startswith("epoch 1, step")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--lr", "0.1,"], "--lr has an empty item"),
        (["--lr", "0.1,0.1"], "lr lists 0.1 twice"),
        (["--seed", "0-3,2"], "seed lists 2 twice"),
        (["--seed", "3-1"], "--seed range '3-1' is empty"),
        (["--loss", "logistic,squared"], "takes one value in a sweep"),
        (["--epochs", "1,2"], "takes one value in a sweep"),
        (["--layers", "784-8-1,784-8-9"], "--layers must end with the class count 2 or 1; got 9"),
        (["--layers", "784-256-1", "--batch-size", "64", "--seed", "0-63", "--stack-size", "64", "--memory", "8"],
         "more than the memory budget of 8 MiB"),
        (["--loss", "cross-entropy"], "softmax + cross-entropy needs at least 2 output units"),
        (["--save-dir", "/proc/xpnet-nowhere"], "--save-dir /proc/xpnet-nowhere cannot be written"),
    ],
)
def test_cli_sweep_mistakes_are_one_line_before_training(capsys, argv, message):
    try:
        code = main([*SWEEP, *argv])
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and message in err and err.count("\n") == 1
    assert out == "" and "configurations in" not in err  # nothing trained


def test_plot_sweep_writes_both_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main([*SWEEP, "--lr", "0.01,0.1", "--seed", "0-1", "--out", str(tmp_path / "r.jsonl")]) == 0
    assert main(["plot", "--sweep", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "plots")]) == 0
    for name in ("sweep-accuracy.png", "sweep-curves.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.jsonl").write_text('{"lr": 0.1}\n')
    capsys.readouterr()
    assert main(["plot", "--sweep", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "plots")]) == 2
    assert "not an xpnet sweep record" in capsys.readouterr().err


def test_a_sweep_saves_every_configuration_whatever_values_print_alike(capsys, tmp_path):
    """Learning rates that %g prints alike get files of their own (a digest of the whole configuration ends
    each name), each the weights of its own configuration; a file of another configuration where one
    would be written is refused before any training and left as it was."""
    out = tmp_path / "w"
    assert main([*SWEEP, "--lr", "0.1,0.1000001", "--batch-size", "64", "--save-dir", str(out), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    files = sorted(out.glob("*.npz"))
    assert len(records) == len(files) == 2 and len({r["weights"] for r in records}) == 2
    for r in records:
        assert xpnet.MLP.load(r["weights"]).meta["identity"]["lr"] == r["lr"]
    first, second = (Path(r["weights"]) for r in records)
    second.write_bytes(first.read_bytes())  # another configuration's weights under this one's name
    before = second.read_bytes()
    assert main([*SWEEP, "--lr", "0.1000001", "--batch-size", "64", "--save-dir", str(out)]) == 2
    out_, err = capsys.readouterr()
    assert err == f"xpnet sweep: error: --save-dir: {second} holds the weights of another configuration; move it " \
        "away or use another --save-dir\n" and "configurations in" not in err
    assert second.read_bytes() == before


def test_the_weights_file_name_docs_cli_shows_is_the_one_written():
    from helpers import ROOT

    name = sw.weights_name(spec.expand(spec.grid(lr=[0.1]).fitted(784, 10, 60000))[0].record())  # MNIST's ends
    assert f"`{name}` for `xpnet sweep --lr 0.1`" in (ROOT / "docs" / "cli.md").read_text()
