"""The run specification: one declaration of every option, serialised and read back, the same flag meaning
the same in train and sweep, grids in order, checks written once, a supplied row order."""

import hashlib
import json

import numpy as np
import pytest

import xpnet
from xpnet import session, spec, train
from xpnet.cli import build_parser, main, options
from xpnet.errors import ValidationError

from helpers import random_problem

#: A value other than the default for every option of xpnet train (and sweep) but the optimizer's, as typed.
OTHER = {"dataset": "fashion-mnist", "scaling": "max", "digits": "3,9", "validation": "0.25", "split_seed": "4",
         "data_dir": "/tmp/data", "layers": "784-16-1", "activation": "relu", "loss": "logistic", "output": "sigmoid",
         "init": "he", "init_scale": "0.5", "epochs": "7", "batch_size": "32", "shuffle": True, "compile": False,
         "threads": "2", "lr": "0.2", "backend": "torch", "device": "cpu", "dtype": "float64", "seed": "5"}
#: The optimizer's options, in three runs that use them all (each option belongs to some optimizers or
#: schedules only).
OPTIMIZERS = [
    {"momentum": "0.9", "nesterov": True, "weight_decay": "0.01", "schedule": "step", "step_size": "2", "gamma": "0.5",
     "early_stopping": "3", "min_delta": "0.01", "restore_best": False},
    {"optimizer": "adam", "beta1": "0.8", "beta2": "0.99", "eps": "1e-6", "schedule": "plateau", "patience": "2",
     "gamma": "0.3", "min_delta": "0.1"},
    {"optimizer": "adamw", "schedule": "invscaling", "power_t": "0.3"},
    {"optimizer": "rmsprop", "alpha": "0.9", "centered": True, "momentum": "0.5", "eps": "1e-6"},
    {"optimizer": "adagrad", "lr_decay": "0.01", "initial_accumulator_value": "0.1", "eps": "1e-9"},
]


def _argv(values):
    argv = []
    for name, value in values.items():
        opt = spec.OPTIONS[name]
        if opt.action:  # a switch: --nesterov (True), --no-restore-best (False)
            argv.append(opt.flag)
        elif value is True or value is False:
            argv.append(opt.flag if value else "--no-" + opt.flag[2:])
        else:
            argv += [opt.flag, value]
    return argv


def _parsed(command, argv):
    return build_parser().parse_args([command, *argv])


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_every_option_means_the_same_in_train_and_sweep(optimizer):
    """One value for every option: xpnet train and xpnet sweep build the same run, every field changed."""
    # --data FILE replaces --dataset: test_own_data_means_the_same_in_train_and_sweep
    assert set(OTHER) | {k for o in OPTIMIZERS for k in o} | {"file"} == set(options.COMMAND_FIELDS)
    argv = _argv({**OTHER, **optimizer})
    trained = options.from_args(_parsed("train", argv))
    swept = options.from_args(_parsed("sweep", argv), lists=True)
    assert trained == swept and trained.data.data_dir == swept.data.data_dir == "/tmp/data"
    changed = {name for name, _, _ in trained.differences(spec.Run())}
    assert changed >= set(OTHER) - {"data_dir"} | set(optimizer) - {"restore_best"}


def test_own_data_means_the_same_in_train_and_sweep(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, X=np.eye(3), y=np.arange(3))
    trained, swept = (options.from_args(_parsed(c, ["--data", str(path)]), lists=c == "sweep") for c in ("train", "sweep"))
    assert trained == swept and trained.data.file == str(path) and trained.data.dataset == "mine.npz"
    assert trained.data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spec.Run.from_dict(json.loads(json.dumps(trained.to_dict()))) == trained  # no second reading


def test_a_run_round_trips_through_its_dict_its_record_and_json():
    run = options.from_args(_parsed("train", _argv({**OTHER, **OPTIMIZERS[1]})))
    assert spec.Run.from_dict(json.loads(json.dumps(run.to_dict()))) == run
    record = run.record()
    assert "data_dir" not in record and record["lr"] == 0.2 and record["seed"] == 5 and record["layers"] == "784-16-1"
    assert record["beta1"] == 0.8 and record["momentum"] is None and record["weight_decay"] == 0.0  # resolved
    again = spec.Run.from_flat({**record, "history": [], "test_accuracy": 0.5})  # a sweep record's run
    assert again.record() == record and again.differences(run) == []
    with pytest.raises(ValidationError, match="unknown run setting"):
        run.replace(learning_rate=0.1)


def test_a_grid_expands_in_the_order_of_the_swept_fields():
    grid = spec.grid(batch_size=[1, 8], seed=range(2), lr=[0.1, 0.01], layers="784-8-10")
    runs = spec.expand(grid)
    assert [(r.optimizer.lr, r.seed, r.training.batch_size) for r in runs] == [
        (lr, s, b) for lr in (0.1, 0.01) for s in (0, 1) for b in (1, 8)]
    assert len({r.stack_key() for r in runs}) == 2  # batch size splits stacks; seed and lr do not
    assert spec.expand(spec.Run()) == [spec.Run()]


def test_a_list_where_one_value_belongs_is_refused():
    with pytest.raises(ValidationError, match="loss takes one value, not a list"):
        spec.grid(loss=["logistic", "squared"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--lr", "0.1,0.2"])


def test_train_refuses_a_list_in_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--activation", "relu,tanh"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "takes one value, not a list" in err and "xpnet sweep" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("name,value,message", [
    ("lr", -1.0, "lr must be > 0; got -1.0"),
    ("init_scale", 0.0, "init_scale must be > 0; got 0.0"),
    ("seed", -2, "seed must be a non-negative integer; got -2"),
    ("init", "glorot", "init must be one of normal-max, xavier, xavier-uniform, he, lecun, uniform; got 'glorot'"),
    ("batch_size", 0, "batch_size must be an integer >= 1; got 0"),
])
def test_each_check_says_the_same_from_the_api_the_spec_and_both_commands(name, value, message, capsys):
    """The message of a refused value is written once: the Python API, the specification and the two
    commands print the same words."""
    X, y = random_problem(784, 10, n=20)
    api = {"lr": lambda: xpnet.MLP("784-10").fit(X, y, lr=value),
           "init_scale": lambda: xpnet.MLP("784-10", init_scale=value),
           "seed": lambda: xpnet.MLP("784-10", seed=value),
           "init": lambda: xpnet.MLP("784-10", init=value),
           "batch_size": lambda: xpnet.MLP("784-10").fit(X, y, batch_size=value)}[name]
    with pytest.raises(ValidationError) as raised:
        api()
    assert message in str(raised.value)
    with pytest.raises(ValidationError) as raised:
        spec.Run().replace(**{name: value})
    assert message.split("; got")[0] in str(raised.value)
    for command in ("train", "sweep"):
        flag = spec.OPTIONS[name].flag
        code = main([command, flag, str(value), "--no-progress", "--epochs", "0"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message.split("; got")[0] in err


def test_a_supplied_row_order_is_the_order_trained():
    """fit(order=...) trains the epochs in the order given (scikit-learn's estimators shuffle with their
    own RandomState): the same weights as the rows permuted by hand."""
    X, y = random_problem(8, 3, n=48)
    rng = np.random.default_rng(9)
    orders = {1: rng.permutation(48), 2: rng.permutation(48)}
    net = xpnet.MLP("8-6-3", dtype="float64", seed=1)
    net.fit(X, y, epochs=2, lr=0.2, batch_size=4, order=orders.get)
    by_hand = xpnet.MLP("8-6-3", dtype="float64", seed=1)
    for epoch in (1, 2):
        o = orders[epoch]
        by_hand.fit(X[o], y[o], epochs=1, lr=0.2, batch_size=4, shuffle=False)
    for (W, b), (W2, b2) in zip(net.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize("backend,stepper", [("numpy", train.Stepper), ("jax", train.CompiledStepper)],
                         indirect=["backend"])
def test_the_stepper_is_chosen_once_from_the_backends_capabilities(backend, stepper):
    net = xpnet.MLP("8-3", backend=backend)
    X, y = random_problem(8, 3, n=16)
    def trainer(**training):
        run = spec.Run(training=spec.Training(batch_size=4, **training))
        return session.Session(net, train.prepare(net, X, y), [run]).trainer

    assert type(trainer().stepper) is stepper
    assert type(trainer(compile=False).stepper) is train.Stepper


def test_a_stacks_runs_made_without_checking_again_equal_the_checked_ones():
    """``Run.for_network`` (a stack's K runs at each fit call) skips the checks ``replace`` runs: the runs
    it makes equal the checked ones, seeds as plain ints (a NumPy seed would not go into JSON)."""
    import json

    from xpnet import Stack

    stack = Stack(layers="4-3-2", seeds=np.arange(3))
    optimizers = [spec.Optimizer(lr=lr) for lr in (0.1, 0.2, 0.3)]
    runs = stack.runs(spec.Data(), spec.Training(), optimizers, stack.seeds)
    for k, run in enumerate(runs):
        assert run == runs[0].replace(seed=k, lr=optimizers[k].lr) and type(run.seed) is int
        assert spec.Run.from_dict(json.loads(json.dumps(run.to_dict()))) == run
