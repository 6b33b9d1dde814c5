"""Optimizers and schedules against torch.optim and torch.optim.lr_scheduler, early stopping against Keras,
from the same initial weights on the same batches (float64, >= 50 steps); stacks mixing hyperparameters;
resuming with the optimizer's state; bad options refused in one line."""

import numpy as np
import pytest

import xpnet
from xpnet import optim, spec
from xpnet.cli import main

from helpers import assert_same_weights, random_problem

torch = pytest.importorskip("torch", reason="torch.optim is the oracle")

LAYERS = [12, 10, 8, 4]
#: (optimizer, its options, the schedule's options, batch size): a sampled grid, not the product.
CASES = [
    ("sgd", {}, {}, 1),
    ("sgd", {"weight_decay": 0.01}, {"schedule": "step", "step_size": 1, "gamma": 0.7}, 5),
    ("sgd", {"momentum": 0.9}, {}, 1),
    ("sgd", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05}, {"schedule": "cosine"}, 5),
    ("adam", {}, {}, 5),
    ("adam", {"weight_decay": 0.02, "beta1": 0.8}, {"schedule": "exponential", "gamma": 0.8}, 1),
    ("adamw", {}, {"schedule": "plateau", "patience": 1, "gamma": 0.5, "min_delta": 0.5}, 5),
    ("adamw", {"weight_decay": 0.1, "beta2": 0.99, "eps": 1e-6}, {"schedule": "invscaling", "power_t": 0.3}, 1),
    ("rmsprop", {}, {}, 5),
    ("rmsprop", {"alpha": 0.9, "momentum": 0.8, "centered": True, "weight_decay": 0.02}, {"schedule": "cosine"}, 1),
    ("rmsprop", {"centered": True, "eps": 1e-6, "weight_decay": 0.05}, {"schedule": "step", "step_size": 2,
                                                                         "gamma": 0.5}, 5),
    ("adagrad", {}, {}, 1),
    ("adagrad", {"lr_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 1e-6, "weight_decay": 0.02},
     {"schedule": "exponential", "gamma": 0.8}, 5),
    ("adagrad", {"lr_decay": 0.001, "weight_decay": 0.05}, {}, 1),
]
LR = {"sgd": 0.1, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.003, "adagrad": 0.05}


def _epochs(batch_size):
    return 3 if batch_size == 1 else 6  # 135 and 54 steps on 45 samples (the last batch of 5 is whole)


def torch_oracle(weights, X, y, optimizer, options, schedule, batch_size, epochs):
    """The same network in PyTorch (tanh, softmax + cross-entropy, float64), torch.optim with the weights
    in a group with weight decay and the biases in one without, the scheduler stepped at each epoch's end."""
    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in weights]
    o = spec.Optimizer(optimizer=optimizer, lr=LR[optimizer], **options).resolved()
    groups = [{"params": [W for W, _ in params], "weight_decay": o["weight_decay"]},
              {"params": [b for _, b in params], "weight_decay": 0.0}]
    opt = optim.get(optimizer).build([o]).torch(torch, groups, o)  # the rule's own reference (test_rules checks it)
    kind = schedule.get("schedule", "constant")
    scheduler = {
        "constant": lambda: None,
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, schedule["step_size"], schedule["gamma"]),
        "exponential": lambda: torch.optim.lr_scheduler.ExponentialLR(opt, schedule["gamma"]),
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
        "plateau": lambda: torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=schedule["gamma"], patience=schedule["patience"], threshold=schedule["min_delta"],
            threshold_mode="abs", cooldown=0),
        "invscaling": lambda: torch.optim.lr_scheduler.LambdaLR(
            opt, lambda e: 1.0 / (e * len(y) + 1) ** schedule["power_t"]),
    }[kind]()
    Xt, yt = torch.tensor(X), torch.tensor(y)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        total = 0.0
        for i in range(0, len(y), batch_size):
            a = Xt[i : i + batch_size]
            for W, b in params[:-1]:
                a = torch.tanh(a @ W + b)
            loss = torch.nn.functional.cross_entropy(a @ params[-1][0] + params[-1][1], yt[i : i + batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(a)
        if kind == "plateau":
            scheduler.step(total / len(y))
        elif scheduler is not None:
            scheduler.step()
    return [(W.detach().numpy(), b.detach().numpy()) for W, b in params], lrs


def _problem():
    X, y = random_problem(12, 4, n=45, seed=11)
    return X / 2, y


def _xpnet(backend, optimizer, options, schedule, batch_size, seed=3, **extra):
    X, y = _problem()
    net = xpnet.MLP(LAYERS, activation="tanh", seed=seed, backend=backend, dtype="float64")
    start = net.get_weights()
    history = net.fit(X, y, epochs=_epochs(batch_size), lr=LR[optimizer], batch_size=batch_size, shuffle=False,
                      optimizer=optimizer, **options, **schedule, **extra)
    return net, start, history


def _case_params():
    params = []
    for backend in ("numpy", "array_api_strict", "torch", "jax"):
        for i, case in enumerate(CASES):
            if backend == "numpy" or i % 3 == ("array_api_strict", "torch", "jax").index(backend):
                params.append(pytest.param(backend, case, id=f"{backend}-{case[0]}-{i}"))
    return params


@pytest.mark.parametrize("backend,case", [(p.values[0], p.values[1]) for p in _case_params()],
                         ids=[p.id for p in _case_params()], indirect=["backend"])
def test_optimizers_and_schedules_equal_torch_optim(backend, case):
    """Per-sample and minibatch, every optimizer with and without weight decay, every schedule: the
    weights after every step of every epoch equal torch.optim's to 1e-9, and each epoch's rate too."""
    optimizer, options, schedule, batch_size = case
    net, start, history = _xpnet(backend, optimizer, options, schedule, batch_size)
    X, y = _problem()
    expected, lrs = torch_oracle(start, X, y, optimizer, options, schedule, batch_size, _epochs(batch_size))
    assert [h["lr"] for h in history] == pytest.approx(lrs, rel=1e-12)
    for (W, b), (eW, eb) in zip(net.get_weights(), expected):
        np.testing.assert_allclose(W, eW, rtol=1e-9, atol=1e-9 * np.abs(eW).max())
        np.testing.assert_allclose(b, eb, rtol=1e-9, atol=1e-9 * np.abs(eW).max())
    assert not np.allclose(net.get_weights()[0][0], start[0][0])
    if schedule.get("schedule") in ("step", "plateau", "cosine"):
        assert len(set(lrs)) > 1  # the schedule moved the rate


@pytest.mark.parametrize("optimizer,options", [
    ("sgd", {"momentum": [0.0, 0.9, 0.5], "weight_decay": [0.0, 0.01, 0.1]}),
    ("adam", {"beta1": [0.9, 0.8, 0.95], "weight_decay": [0.0, 0.01, 0.1], "schedule": "step", "step_size": 2,
              "gamma": [0.5, 0.9, 0.7]}),
    ("rmsprop", {"alpha": [0.99, 0.9, 0.95], "momentum": [0.0, 0.9, 0.5], "weight_decay": [0.0, 0.01, 0.1],
                 "eps": [1e-8, 1e-6, 1e-4], "centered": True}),
    ("adagrad", {"lr_decay": [0.0, 0.01, 0.1], "weight_decay": [0.0, 0.01, 0.1], "eps": [1e-10, 1e-6, 1e-4],
                 "initial_accumulator_value": 0.1}),
])
@pytest.mark.parametrize("batch_size", [1, 5])
def test_a_stack_mixing_hyperparameters_equals_each_network_alone(optimizer, options, batch_size):
    X, y = _problem()
    lrs = [LR[optimizer], LR[optimizer] / 2, LR[optimizer] * 2]
    stack = xpnet.Stack(LAYERS, activation="tanh", seeds=[3, 4, 5], dtype="float64")
    histories = stack.fit(X, y, epochs=4, lr=lrs, batch_size=batch_size, optimizer=optimizer, **options)
    for k in range(3):
        alone = {name: value[k] if isinstance(value, list) else value for name, value in options.items()}
        net = xpnet.MLP(LAYERS, activation="tanh", seed=3 + k, dtype="float64")
        history = net.fit(X, y, epochs=4, lr=lrs[k], batch_size=batch_size, optimizer=optimizer, **alone)
        assert_same_weights(stack.model(k).get_weights(), net.get_weights(), "float64")
        assert [h["lr"] for h in histories[k]] == [h["lr"] for h in history]


@pytest.mark.parametrize("optimizer,options", [("adam", {"schedule": "plateau", "patience": 1, "min_delta": 0.05}),
                                               ("sgd", {"momentum": 0.9, "early_stopping": 2, "min_delta": 0.01})])
def test_resuming_with_the_optimizers_state_equals_an_uninterrupted_run(tmp_path, optimizer, options):
    """Two epochs, saved (weights, moments, step counts, the plateau's and early stopping's counters),
    loaded and continued: bit for bit the weights of four epochs in one go."""
    X, y = _problem()
    whole = xpnet.MLP(LAYERS, activation="tanh", seed=3, dtype="float64")
    expected = whole.fit(X, y, epochs=6, lr=LR[optimizer], batch_size=5, optimizer=optimizer, **options)
    half = xpnet.MLP(LAYERS, activation="tanh", seed=3, dtype="float64")
    half.fit(X, y, epochs=3, lr=LR[optimizer], batch_size=5, optimizer=optimizer, **options)
    half.save(tmp_path / "half.npz")
    resumed = xpnet.MLP.load(tmp_path / "half.npz")
    rest = resumed.fit(X, y, epochs=6, initial_epoch=3, lr=LR[optimizer], batch_size=5, optimizer=optimizer, **options)
    assert [h["lr"] for h in rest] == [h["lr"] for h in expected[3:]]
    for (W, b), (eW, eb) in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(W, eW)
        np.testing.assert_array_equal(b, eb)


def test_the_optimizers_state_survives_successive_fits():
    """Two fits of two epochs each continue the moments: the weights of one fit of four epochs."""
    X, y = _problem()
    once = xpnet.MLP(LAYERS, activation="tanh", seed=3, dtype="float64")
    once.fit(X, y, epochs=4, lr=0.01, batch_size=5, optimizer="adam")
    twice = xpnet.MLP(LAYERS, activation="tanh", seed=3, dtype="float64")
    twice.fit(X, y, epochs=2, lr=0.01, batch_size=5, optimizer="adam")
    twice.fit(X, y, epochs=4, initial_epoch=2, lr=0.01, batch_size=5, optimizer="adam")
    assert_same_weights(twice.get_weights(), once.get_weights(), "float64")


# -- early stopping against Keras ---------------------------------------------------------------------
class _Model:
    """What Keras' EarlyStopping needs of a model: weights (here, the epoch they are from) and a flag."""

    stop_training = False

    def __init__(self):
        self.weights = None

    def get_weights(self):
        return [self.weights]

    def set_weights(self, weights):
        self.weights = weights[0]


def keras_oracle(losses, patience, min_delta, restore):
    """Keras' own EarlyStopping fed the monitored losses: the epoch it stops after (1-based, or None)
    and the epoch whose weights it leaves (1-based)."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "numpy")
    keras = pytest.importorskip("keras")
    callback = keras.callbacks.EarlyStopping(monitor="loss", patience=patience, min_delta=min_delta,
                                             restore_best_weights=restore)
    model = _Model()
    callback.set_model(model)
    callback.on_train_begin()
    stopped = None
    for epoch, loss in enumerate(losses):
        model.weights = epoch + 1
        callback.on_epoch_end(epoch, {"loss": loss})
        if model.stop_training:
            stopped = epoch + 1
            break
    callback.on_train_end()
    return stopped, model.weights


@pytest.mark.parametrize("patience,min_delta,restore,validation", [(1, 0.0, True, False), (2, 0.005, True, True),
                                                                  (3, 0.02, False, True)])
def test_early_stopping_is_keras_early_stopping(patience, min_delta, restore, validation):
    """The epoch it stops after and the weights it ends with are Keras' for the same monitored losses
    (the validation loss with a validation set, else the training loss); the best epoch's weights are
    those of a run of that many epochs."""
    X, y = random_problem(12, 4, n=120, seed=4)
    val = random_problem(12, 4, n=60, seed=5) if validation else None
    kwargs = dict(epochs=30, lr=0.3, batch_size=4, optimizer="sgd", momentum=0.9, validation=val)
    net = xpnet.MLP(LAYERS, activation="tanh", seed=2, dtype="float64")
    history = net.fit(X, y, early_stopping=patience, min_delta=min_delta, restore_best=restore, **kwargs)
    losses = [h["val_loss" if validation else "train_loss"] for h in history]
    stopped, kept = keras_oracle(losses, patience, min_delta, restore)
    assert stopped is not None and len(history) == stopped and history[-1].get("stopped")
    assert all("stopped" not in h for h in history[:-1])
    reference = xpnet.MLP(LAYERS, activation="tanh", seed=2, dtype="float64")
    reference.fit(X, y, **{**kwargs, "epochs": kept})
    for (W, b), (eW, eb) in zip(net.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(W, eW)
        np.testing.assert_array_equal(b, eb)


def test_a_stopped_network_of_a_stack_freezes_while_the_others_train_on():
    X, y = random_problem(12, 4, n=120, seed=4)
    kwargs = dict(epochs=25, batch_size=4, optimizer="sgd", momentum=0.9, min_delta=0.002)
    stack = xpnet.Stack(LAYERS, activation="tanh", seeds=[2, 2], dtype="float64")
    histories = stack.fit(X, y, lr=[0.3, 0.01], early_stopping=[1, 30], **kwargs)
    alone = xpnet.MLP(LAYERS, activation="tanh", seed=2, dtype="float64")
    first = alone.fit(X, y, lr=0.3, early_stopping=1, **kwargs)
    assert stack.stopped[0] == {"stopped": len(first)} and stack.stopped[1] is None
    assert len(histories[0]) == len(first) < 25 and len(histories[1]) == 25
    assert_same_weights(stack.model(0).get_weights(), alone.get_weights(), "float64")
    slow = xpnet.MLP(LAYERS, activation="tanh", seed=2, dtype="float64")
    slow.fit(X, y, lr=0.01, early_stopping=30, **kwargs)
    assert_same_weights(stack.model(1).get_weights(), slow.get_weights(), "float64")


# -- bad options -----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["--momentum", "-0.5"], "momentum must be a finite number >= 0; got -0.5"),
    (["--nesterov"], "--nesterov needs --momentum > 0"),
    (["--optimizer", "adam", "--beta1", "1.0"], "beta1 must lie in [0, 1); got 1.0"),
    (["--optimizer", "adam", "--beta2", "-0.1"], "beta2 must be a finite number >= 0; got -0.1"),
    (["--optimizer", "adam", "--eps", "0"], "eps must be > 0; got 0.0"),
    (["--weight-decay", "-1"], "weight_decay must be a finite number >= 0; got -1.0"),
    (["--schedule", "plateau", "--patience", "0"], "patience must be an integer >= 1; got 0"),
    (["--early-stopping", "0"], "early_stopping must be an integer >= 1; got 0"),
    (["--step-size", "2"], "--step-size is an option of --schedule step; this run is --optimizer sgd --schedule constant"),
    (["--beta1", "0.9"], "--beta1 is an option of --optimizer adam, adamw; this run is --optimizer sgd"),
    (["--optimizer", "adam", "--momentum", "0.9"], "--momentum is an option of --optimizer sgd"),
    (["--min-delta", "0.1"], "--min-delta is an option of --schedule plateau and --early-stopping"),
    (["--no-restore-best"], "--no-restore-best is an option of --early-stopping"),
    (["--schedule", "step"], "--schedule step needs --step-size"),
    (["--schedule", "exponential"], "--schedule exponential needs --gamma"),
    (["--schedule", "plateau", "--gamma", "2"], "--schedule plateau needs --gamma < 1"),
    (["--schedule", "invscaling", "--power-t", "100", "--epochs", "2"],
     "the learning rate of epoch 2 vanishes (underflows to 0) in float32 with --schedule invscaling"),
    (["--schedule", "step", "--step-size", "1", "--gamma", "1e30"], "the learning rate of epoch 3 overflows in float32"),
    (["--lr", "1e300"], "the learning rate of epoch 1 overflows in float32 with --schedule constant (lr 1e+300)"),
])
@pytest.mark.parametrize("command", ["train", "sweep"])
def test_bad_optimizer_options_are_one_line_before_any_work(capsys, command, argv, message):
    code = main([command, *argv, "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2 and message in err and err.count("\n") == 1 and out == ""


@pytest.mark.parametrize("argv,message", [
    (["--optimizer", "lion"], "optimizer must be one of sgd, adam, adamw, rmsprop, adagrad; got 'lion'"),
    (["--schedule", "linear"], "invalid choice: 'linear'"),
])
def test_unknown_optimizers_and_schedules_are_refused(capsys, argv, message):
    try:
        code = main(["train", *argv])
    except SystemExit as exc:  # argparse's refusal of a choice
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_an_option_applies_to_the_optimizers_of_a_sweep_that_have_it(capsys):
    code = main(["sweep", "--digits", "1,5", "--layers", "784-4-1", "--loss", "logistic", "--epochs", "1",
                 "--optimizer", "sgd,adam", "--momentum", "0,0.9", "--batch-size", "64", "--no-progress", "--json"])
    out, err = capsys.readouterr()
    records = [__import__("json").loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["optimizer"], r["momentum"]) for r in records] == [("sgd", 0.0), ("sgd", 0.9), ("adam", None)]
    assert "--optimizer adam has no --momentum: it trains once" in err
    assert [r["lr"] for r in records] == [0.003, 0.003, 0.001] and records[2]["beta1"] == 0.9
    assert main(["sweep", "--optimizer", "adam,adamw", "--momentum", "0.9", "--no-progress"]) == 2
    assert "--momentum is an option of --optimizer sgd" in capsys.readouterr().err
    code = main(["sweep", "--digits", "1,5", "--layers", "784-4-1", "--loss", "logistic", "--epochs", "1", "--optimizer",
                 "adam,sgd", "--momentum", "0.9", "--nesterov", "--batch-size", "64", "--no-progress", "--json"])
    out, err = capsys.readouterr()
    records = [__import__("json").loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["optimizer"], r["momentum"], r["nesterov"]) for r in records] == [
        ("adam", None, False), ("sgd", 0.9, True)]  # given once, an option goes to the optimizers that have it
    assert "--optimizer adam has no --momentum: its runs train without it" in err


@pytest.mark.parametrize("backend, options", [
    ("numpy", {"momentum": 0.9}), ("numpy", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("numpy", {"weight_decay": 0.1}), ("numpy", {"momentum": [0.0, 0.5, 0.9], "weight_decay": [0.0, 0.01, 0.0]}),
    ("jax", {"momentum": [0.3, 0.5, 0.9], "nesterov": True, "weight_decay": [0.0, 0.01, 0.0]}),
], ids=["momentum", "nesterov-decay", "decay", "stack", "jax-stack"], indirect=["backend"])
def test_per_sample_chunks_stay_exact_with_momentum_and_decay(backend, options):
    """Chunks of 8 defer the first layer's updates in closed form (momentum, Nesterov, coupled L2): the
    weights of one plain step per sample, up to rounding (float64, across chunk boundaries and a short
    last chunk; compiled on JAX)."""
    X, y = _problem()
    stacked = any(isinstance(v, list) for v in options.values())
    def build():
        if stacked:
            return xpnet.Stack(LAYERS, activation="tanh", seeds=[3, 4, 5], backend=backend, dtype="float64")
        return xpnet.MLP(LAYERS, activation="tanh", seed=3, backend=backend, dtype="float64")
    chunked, plain = build(), build()
    chunked.fit(X, y, epochs=2, lr=0.05, batch_size=1, sample_chunk=8, **options)
    plain.fit(X, y, epochs=2, lr=0.05, batch_size=1, sample_chunk=1, **options)
    for (W, b), (eW, eb) in zip(chunked.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(W, eW, rtol=1e-11, atol=1e-11 * np.abs(eW).max())
        np.testing.assert_allclose(b, eb, rtol=1e-11, atol=1e-11 * np.abs(eW).max())


def test_a_second_fit_that_adds_weight_decay_carries_adams_moments_on():
    """fit(optimizer="adam") then fit(..., weight_decay=0.01): the moments and step count carry over, as
    torch.optim.Adam does when its group's weight_decay is changed between steps."""
    X, y = _problem()
    net = xpnet.MLP(LAYERS, activation="tanh", seed=3, dtype="float64")
    start = net.get_weights()
    net.fit(X, y, epochs=2, lr=0.01, batch_size=5, shuffle=False, optimizer="adam")
    net.fit(X, y, epochs=2, lr=0.01, batch_size=5, shuffle=False, optimizer="adam", weight_decay=0.01)
    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in start]
    groups = [{"params": [W for W, _ in params], "weight_decay": 0.0}, {"params": [b for _, b in params]}]
    opt = torch.optim.Adam(groups, lr=0.01)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for epoch in range(4):
        if epoch == 2:
            opt.param_groups[0]["weight_decay"] = 0.01
        for i in range(0, len(y), 5):
            a = Xt[i : i + 5]
            for W, b in params[:-1]:
                a = torch.tanh(a @ W + b)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(a @ params[-1][0] + params[-1][1], yt[i : i + 5]).backward()
            opt.step()
    assert_same_weights(net.get_weights(), [(W.detach().numpy(), b.detach().numpy()) for W, b in params], "float64")


def test_a_second_fit_that_would_drop_the_rules_state_is_refused():
    X, y = _problem()
    net = xpnet.MLP(LAYERS, activation="tanh", seed=3, dtype="float64")
    net.fit(X, y, epochs=1, lr=0.01, batch_size=5, optimizer="sgd", momentum=0.9)
    before = net.get_weights()
    with pytest.raises(xpnet.ValidationError, match="this network's sgd state was made with momentum=True, which keeps other arrays than momentum=False"):
        net.fit(X, y, epochs=1, lr=0.01, batch_size=5, optimizer="sgd")
    assert_same_weights(net.get_weights(), before, "float64")  # refused before any step
    net.fit(X, y, epochs=1, lr=0.01, batch_size=5, optimizer="adam")  # another rule starts afresh
