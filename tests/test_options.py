"""Every documented option does what the docs say: each test fails when its option is ignored (the
command's result is set against the Python API given the option's meaning, or against the run without
it). The options of xpnet train, sweep, evaluate, gradcheck; the initialisers' variances; fit's
validation and on_epoch; exit status 130 on Ctrl-C; the progress bar."""

import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import xpnet
from xpnet import datasets, init, train
from xpnet import sweep as sw
from xpnet.cli import main
from xpnet.progress import Progress

PAIR = ["--digits", "1,5", "--layers", "784-8-1", "--loss", "logistic", "--activation", "tanh", "--lr", "0.05",
        "--epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def pair():
    """The 1-vs-5 pair as xpnet train loads it by default (float32, /255)."""
    return datasets.prepare(datasets.load_mnist(), digits="1,5", dtype=np.float32)


def _json(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _trained(capsys, tmp_path, *argv, name="w.npz"):
    """Train with the command line, return (its JSON result, its saved weights)."""
    path = tmp_path / name
    result = _json(capsys, "train", *PAIR, "--json", "--save", str(path), *argv)
    return result, xpnet.MLP.load(path).get_weights()


def _fit(X, y, **options):
    """The same network trained through the Python API."""
    net = xpnet.MLP("784-8-1", activation="tanh", loss="logistic", seed=0,
                    **{k: options.pop(k) for k in ("backend", "device", "dtype", "init_scale") if k in options})
    history = net.fit(X, y, epochs=1, lr=0.05, progress=False, **options)
    return history, net.get_weights()


def _equal(a, b):
    for (W, c), (W2, c2) in zip(a, b):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(c, c2)


def _differ(a, b):
    assert any(not np.array_equal(W, W2) for (W, _), (W2, _) in zip(a, b))


# -- xpnet train ----------------------------------------------------------------------------------
def test_train_validation_holds_out_the_fraction_and_reports_it(capsys, tmp_path, pair):
    X, y, X_test, y_test = pair
    result, weights = _trained(capsys, tmp_path, "--validation", "0.1", "--batch-size", "32")
    Xt, yt, Xv, yv = datasets.validation_split(X, y, 0.1, 0)
    assert len(yv) == round(0.1 * len(y)) and len(yt) + len(yv) == len(y)
    history, expected = _fit(Xt, yt, batch_size=32, validation=(Xv, yv), X_test=X_test, y_test=y_test)
    _equal(weights, expected)  # trained on the 90 %, not the whole set
    record = result["history"][0]
    assert record["val_loss"] == pytest.approx(history[0]["val_loss"], rel=1e-6)
    assert record["val_accuracy"] == history[0]["val_accuracy"] > 0.95
    _differ(weights, _fit(X, y, batch_size=32)[1])


def test_train_scale_standardize_gives_zero_mean_unit_deviation_pixels(capsys, tmp_path):
    everything = datasets.prepare(datasets.load_mnist(), scaling="standardize")[0]  # one mean, one deviation
    assert abs(everything.mean(dtype=np.float64)) < 1e-6 and everything.std(dtype=np.float64) == pytest.approx(1, abs=1e-6)
    X, y, _, _ = datasets.prepare(datasets.load_mnist(), scaling="standardize", digits="1,5", dtype=np.float32)
    _, weights = _trained(capsys, tmp_path, "--scale", "standardize", "--batch-size", "32")
    _equal(weights, _fit(X, y, batch_size=32)[1])
    _, default = _trained(capsys, tmp_path, "--batch-size", "32", name="d.npz")
    _differ(weights, default)


def test_train_shuffle_and_no_shuffle(capsys, tmp_path, pair):
    X, y, _, _ = pair
    _, kept = _trained(capsys, tmp_path, "--batch-size", "32", "--no-shuffle", name="kept.npz")
    _, shuffled = _trained(capsys, tmp_path, "--batch-size", "32", "--shuffle", name="shuffled.npz")
    _equal(kept, _fit(X, y, batch_size=32, shuffle=False)[1])  # the dataset's order
    _equal(shuffled, _fit(X, y, batch_size=32, shuffle=True)[1])
    _differ(kept, shuffled)
    _, per_sample = _trained(capsys, tmp_path, "--batch-size", "1", "--shuffle", name="p.npz")
    _differ(per_sample, _fit(X, y, batch_size=1)[1])  # per-sample's default is the dataset's order


def test_train_compile_and_no_compile_on_jax(capsys, tmp_path, monkeypatch):
    pytest.importorskip("jax")
    calls = []
    original = train.CompiledStepper.run
    monkeypatch.setattr(train.CompiledStepper, "run", lambda self, *a: calls.append(1) or original(self, *a))
    _, compiled = _trained(capsys, tmp_path, "--backend", "jax", "--batch-size", "32", "--compile", name="c.npz")
    assert calls
    calls.clear()
    _, eager = _trained(capsys, tmp_path, "--backend", "jax", "--batch-size", "32", "--no-compile", name="e.npz")
    assert not calls  # stepped in Python
    for (W, b), (W2, b2) in zip(compiled, eager):  # the same steps, up to float32 rounding
        np.testing.assert_allclose(W, W2, rtol=1e-4, atol=1e-5)
    assert main(["train", *PAIR, "--compile"]) == 2  # numpy has no compiler: said, not ignored
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--compile needs a backend with a compiler (jax); 'numpy' has none" in err


def test_train_init_scale_multiplies_the_initial_weights(capsys, tmp_path):
    _, one = _trained(capsys, tmp_path, "--epochs", "0", name="one.npz")
    _, two = _trained(capsys, tmp_path, "--epochs", "0", "--init-scale", "2", name="two.npz")
    for (W, b), (W2, b2) in zip(one, two):
        np.testing.assert_array_equal(W2, 2 * W)
        np.testing.assert_array_equal(b2, b)


def test_train_backend_and_device(capsys, tmp_path, pair):
    pytest.importorskip("torch")
    X, y, _, _ = pair
    result, weights = _trained(capsys, tmp_path, "--backend", "torch", "--device", "cpu", "--batch-size", "32")
    assert result["backend"] == "torch" and result["device"] == "cpu"
    np.testing.assert_allclose(weights[0][0], _fit(X, y, batch_size=32)[1][0][0], rtol=1e-4, atol=1e-5)
    assert main(["train", *PAIR, "--backend", "torch", "--device", "cuda:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no CUDA device 0" in err


# -- xpnet sweep ----------------------------------------------------------------------------------
def test_sweep_validation_init_scale_scale_on_torch(capsys, tmp_path):
    """A sweep on torch with --validation, --init-scale and --scale: each record equals xpnet train with
    the same options, and the table ranks by validation accuracy."""
    pytest.importorskip("torch")
    options = ["--backend", "torch", "--dtype", "float64", "--scale", "max", "--validation", "0.2",
               "--batch-size", "32"]
    out = tmp_path / "r.jsonl"
    assert main(["sweep", *PAIR, *options, "--init-scale", "0.5,3", "--save-dir", str(tmp_path / "w"),
                 "--out", str(out)]) == 0
    table = capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["init_scale"] for r in records] == [0.5, 3.0]
    for r in records:
        assert r["backend"] == "torch" and r["scaling"] == "max" and r["validation"] == 0.2
        _, weights = _trained(capsys, tmp_path, *options, "--init-scale", str(r["init_scale"]), name="t.npz")
        for (W, b), (eW, eb) in zip(xpnet.MLP.load(r["weights"]).get_weights(), weights):  # a stack of 2 on torch
            np.testing.assert_allclose(W, eW, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(b, eb, rtol=1e-12, atol=1e-15)
    assert sw.selection_metric(records) == "val_accuracy" and "| val accuracy |" in table
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == [f"{r['init_scale']:g}" for r in sw.best_first(records)]  # ranked by validation accuracy


# -- xpnet evaluate -------------------------------------------------------------------------------
def test_evaluate_backend_device_dtype_dataset_digits_scale(capsys, tmp_path):
    """Each option set to something else than what the weights file says (1 vs 5, scaled by the maximum,
    float32, numpy): the result is the Python API's on that data, there."""
    pytest.importorskip("torch")
    _trained(capsys, tmp_path, "--scale", "max")
    weights = str(tmp_path / "w.npz")
    result = _json(capsys, "evaluate", "--weights", weights, "--backend", "torch", "--device", "cpu", "--dtype",
                   "float64", "--dataset", "mnist", "--digits", "1,7", "--scale", "standardize", "--json")
    _, _, X_test, y_test = datasets.prepare(datasets.load_mnist(), scaling="standardize", digits="1,7")
    expected = xpnet.MLP.load(weights, backend="torch", dtype="float64").evaluate(X_test, y_test)
    assert result["n"] == len(y_test) == 2163 and result["test_accuracy"] == expected["accuracy"]
    assert result["test_loss"] == pytest.approx(expected["loss"], rel=1e-12)
    said = (result["backend"], result["dtype"], result["dataset"], result["digits"], result["scaling"])
    assert said == ("torch:cpu", "float64", "mnist", "1,7", "standardize")
    for option, message in ((["--device", "cuda:0"], "has no CUDA device 0"),
                            (["--dataset", "fashion-mnist", "--data-dir", str(tmp_path)], "fashion-mnist files not found")):
        assert main(["evaluate", "--weights", weights, "--backend", "torch", *option]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


# -- xpnet gradcheck ------------------------------------------------------------------------------
def test_gradcheck_samples_eps_init_backend(capsys):
    """Each option changes what is checked: the errors differ from the defaults' (8 samples, eps 1e-6,
    normal-max, numpy), and the check passes either way."""
    pytest.importorskip("torch")
    base = ["gradcheck", "--layers", "6-5-3", "--json"]
    default = _json(capsys, *base)
    for option in (["--samples", "3"], ["--eps", "1e-5"], ["--init", "xavier"], ["--backend", "torch"]):
        result = _json(capsys, *base, *option)
        assert result["passed"] and result["max_rel_error"] < 1e-6
        if option[0] == "--backend":
            assert result["backend"] == "torch:cpu" and default["backend"] == "numpy:cpu"
        else:
            assert result["arrays"] != default["arrays"], option


def test_gradcheck_exits_1_on_a_broken_gradient(capsys, monkeypatch):
    from xpnet import functions

    tanh = functions.ACTIVATIONS["tanh"]
    monkeypatch.setitem(functions.ACTIVATIONS, "tanh", functions.Activation(
        tanh.name, tanh.forward, lambda xp, a: 1.1 * tanh.derivative(xp, a)))  # 10 % off
    assert main(["gradcheck", "--layers", "6-5-3", "--activation", "tanh"]) == 1
    assert "FAILED" in capsys.readouterr().out


# -- initialisers, fit's hooks, Ctrl-C, the progress bar -----------------------------------------
@pytest.mark.parametrize("name,variance", [
    ("normal-max", lambda i, o: 1 / max(i, o)), ("xavier", lambda i, o: 2 / (i + o)),
    ("xavier-uniform", lambda i, o: 2 / (i + o)), ("he", lambda i, o: 2 / i), ("lecun", lambda i, o: 1 / i),
    ("uniform", lambda i, o: 1 / 3)])
def test_each_initialiser_has_its_variance(name, variance):
    (W, b), = init.initial_weights([784, 512], name, seed=0)
    assert W.var() == pytest.approx(variance(784, 512), rel=0.02) and abs(W.mean()) < 0.02 * W.std()
    assert not b.any()
    # and its shape: a uniform draw stays inside ±sqrt(3 var); a normal one leaves it (8 % of its draws)
    assert (np.abs(W).max() <= np.sqrt(3 * variance(784, 512))) == name.endswith("uniform")


def test_fit_calls_on_epoch_with_each_epochs_record(pair):
    X, y, X_test, y_test = pair
    seen = []
    net = xpnet.MLP("784-8-1", activation="tanh", loss="logistic")
    history = net.fit(X[:2000], y[:2000], epochs=3, lr=0.05, batch_size=32, X_test=X_test, y_test=y_test,
                      on_epoch=seen.append, progress=False)
    assert [record["epoch"] for record in seen] == [1, 2, 3] and seen == history


#: Interrupts per backend (XPNET_INTERRUPTS; docs/reliability.md reports a larger run).
INTERRUPTS = int(os.environ.get("XPNET_INTERRUPTS", 1))


@pytest.mark.parametrize("backend", ["numpy", "jax", *filter(None, os.environ.get("XPNET_INTERRUPT_BACKENDS", "").split(","))])
def test_ctrl_c_exits_130_in_one_line_at_any_moment(tmp_path, backend):
    """SIGINT to a real ``xpnet train`` at seeded random moments of its training (checkpointing every
    epoch): exit status 130 every time, one line, and the checkpoint on disk whole. JAX crashed after the
    line (exit 139) in 4 of 10 tries when its threads were torn down with the interpreter."""
    pytest.importorskip(backend)
    rng, path = random.Random(backend), tmp_path / "w.npz"
    for _ in range(INTERRUPTS):
        proc = subprocess.Popen([sys.executable, "-m", "xpnet.cli", "train", *PAIR, "--epochs", "40", "--backend",
                                 backend, "--checkpoint-every", "1", "--save", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "test accuracy" in proc.stdout.readline() + proc.stdout.readline()  # training has begun
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and err == "xpnet train: interrupted\n", err[-500:]
        if path.exists():
            assert xpnet.MLP.load(path).state.epochs_done >= 1
        assert not list(tmp_path.glob(".w.npz.*.tmp"))  # a write cut short took its temporary file away


def test_the_progress_bar_draws_fraction_count_and_rate(capsys, pair):
    X, y, _, _ = pair
    xpnet.MLP("784-8-1", loss="logistic").fit(X[:512], y[:512], epochs=2, batch_size=8, progress=True)
    drawn = capsys.readouterr().err  # fit's bar, on stderr, though not a terminal: asked for
    assert "\repoch 2/2 [" in drawn and "100% 512/512" in drawn
    xpnet.MLP("784-8-1", loss="logistic").fit(X[:512], y[:512], epochs=2, batch_size=8, progress=False)
    assert capsys.readouterr().err == ""
    stream = io.StringIO()
    with Progress(200, "epoch 1/3", enabled=True, stream=stream) as bar:
        bar.update(50)
        bar.update(150)
    drawn = stream.getvalue()
    assert "\repoch 1/3 [" in drawn and "100% 200/200" in drawn and "samples/s" in drawn
    assert "25%" not in drawn  # at most ten drawings a second: the quick first update is not drawn
    quiet = io.StringIO()
    with Progress(10, "x", stream=quiet) as bar:  # not a terminal: nothing drawn
        bar.update(10)
    assert quiet.getvalue() == ""


def test_a_rising_test_loss_is_warned_of_once(capsys):
    """docs/reliability.md and experiments.md: a test loss over 1.5x the untrained one is said, once."""
    assert main(["train", *PAIR, "--lr", "20", "--batch-size", "32", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "xpnet train: warning: the test loss rose from 0.803 before training to " \
        in err and "the learning rate 20 is probably too high" in err
    assert main(["train", *PAIR, "--lr", "0.05", "--batch-size", "32"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_threads_are_chosen_for_the_work_and_restored_after(pair, backend):
    """One math-library thread for per-sample training and small batches, the library's own setting for
    large ones, what ``threads=`` says where given -- read inside training (on_epoch) -- and the setting
    as it was once training ends."""
    X, y, _, _ = pair
    net = xpnet.MLP("784-8-1", activation="tanh", loss="logistic", backend=backend)
    before = net.backend.thread_count()
    assert before is not None and before >= 1
    seen = []
    for batch, threads, expected in ((1, None, 1), (64, None, 1), (256, None, before), (1, 0, before), (256, 1, 1)):
        net.fit(X[:512], y[:512], epochs=1, batch_size=batch, threads=threads, progress=False,
                on_epoch=lambda record: seen.append(net.backend.thread_count()))
        assert seen[-1] == expected, (batch, threads)
        assert net.backend.thread_count() == before


def test_train_threads_is_what_the_run_trains_with(capsys, tmp_path):
    auto = _json(capsys, "train", *PAIR, "--json")
    assert auto["threads"] is None and auto["trained_with_threads"] == 1
    two = _json(capsys, "train", *PAIR, "--json", "--threads", "2")
    assert two["threads"] == 2 and two["trained_with_threads"] == 2
    assert main(["train", *PAIR, "--threads", "-1"]) == 2
    assert "threads must be an integer >= 0; got -1" in capsys.readouterr().err
