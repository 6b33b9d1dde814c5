"""The update rules as registered objects: every rule reachable, with the same defaults, from the command
line, the Python API and a sweep; an unknown name refused by each; each rule's torch.optim reference given
the rule's own settings."""

import json

import numpy as np
import pytest

import xpnet
from xpnet import optim, spec
from xpnet.cli import build_parser, main
from xpnet.errors import ValidationError

from helpers import random_problem

RULES = list(optim.RULES)
SMALL = ("--digits", "1,5", "--layers", "784-4-1", "--loss", "logistic", "--batch-size", "64", "--epochs", "1",
         "--no-progress", "--json")


def test_the_registry_holds_the_rules_users_expect():
    assert RULES == ["sgd", "adam", "adamw", "rmsprop", "adagrad"]
    for name, rule in optim.RULES.items():
        assert rule.name == name and rule.lr > 0 and "weight_decay" in rule.settings


@pytest.mark.parametrize("name", RULES)
def test_every_rule_trains_from_the_command_line_the_api_and_a_sweep_with_one_default(capsys, name):
    code = main(["train", *SMALL, "--optimizer", name])
    trained = json.loads(capsys.readouterr().out)
    assert code == 0 and trained["optimizer"] == name and trained["lr"] == optim.get(name).lr
    assert trained["test_loss"] < trained["initial_test_loss"]  # it learns at its default rate
    code = main(["sweep", *SMALL, "--optimizer", name, "--seed", "0,1"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and [r["seed"] for r in records] == [0, 1]
    swept = records[0]
    for key in spec.Run().record():
        if key not in ("history", "test_accuracy"):
            assert swept[key] == trained[key], key  # the same defaults, every one
    assert swept["test_accuracy"] == trained["test_accuracy"]

    X, y = random_problem(12, 3, n=40, seed=0)
    net = xpnet.MLP("12-6-3", seed=0, dtype="float64")
    history = net.fit(X, y, epochs=2, batch_size=8, optimizer=name)
    assert history[0]["lr"] == optim.get(name).lr  # fit's default is the command line's
    assert net.state.rule.name == name


@pytest.mark.parametrize("argv", [
    ["train", "--optimizer", "lion"],
    ["sweep", "--optimizer", "sgd,lion"],
    ["bench", "--optimizer", "lion", "--impl", "xpnet-numpy"],
])
def test_an_unknown_rule_is_one_line_on_the_command_line(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "optimizer must be one of sgd, adam, adamw, rmsprop, adagrad; got 'lion'" in err


@pytest.mark.parametrize("call", [
    lambda X, y: xpnet.MLP("12-6-3").fit(X, y, optimizer="lion"),
    lambda X, y: xpnet.Stack("12-6-3", seeds=[0, 1]).fit(X, y, optimizer="lion"),
    lambda X, y: spec.Optimizer(optimizer="lion"),
    lambda X, y: spec.grid(optimizer=["sgd", "lion"]),
    lambda X, y: optim.get("lion"),
    lambda X, y: optim.rule_for([{"optimizer": "lion"}]),
], ids=["fit", "stack-fit", "spec", "grid", "get", "rule_for"])
def test_an_unknown_rule_is_refused_by_the_api(call):
    X, y = random_problem(12, 3, n=8, seed=0)
    with pytest.raises(ValidationError, match="optimizer must be one of sgd, adam, adamw, rmsprop, adagrad; got 'lion'"):
        call(X, y)


def test_a_checkpoint_naming_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown update rule 'lion'"):
        optim.rule_from({"rule": "lion"})
    with pytest.raises(TypeError, match="no field 'decay' of type str"):
        optim.rule_from({"rule": "rmsprop", "decay": "yes"})


def test_every_option_of_every_rule_is_on_the_command_line_with_its_defaults():
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    flat = " ".join(help_text.split())
    for name, users in optim.options().items():
        flag = "--" + name.replace("_", "-")
        assert flag in flat, flag
        for rule, setting in users:
            assert rule in flat and (setting.switch or f"{setting.default:g}" in flat)
    for name, rule in optim.RULES.items():
        assert f"{rule.lr:g} for" in flat and name in flat


TORCH_NAMES = {"beta1", "beta2", "weight_decay"}  # betas, and decay per group, checked apart


@pytest.mark.parametrize("name", RULES)
def test_each_rules_torch_reference_gets_the_rules_settings(name):
    torch = pytest.importorskip("torch")
    rule = optim.get(name)
    values = {k: (True if s.switch else s.default * 0.5 + 0.01) for k, s in rule.settings.items()}
    if name == "sgd":
        values["momentum"] = 0.7
    o = spec.Optimizer(optimizer=name, lr=0.123, **values).resolved()
    W = torch.zeros(2, 2, requires_grad=True)
    reference = rule.build([o]).torch(torch, [{"params": [W], "weight_decay": o["weight_decay"]}], o)
    defaults = reference.defaults
    assert defaults["lr"] == 0.123 and reference.param_groups[0]["weight_decay"] == o["weight_decay"]
    for key, value in o.items():
        if key in rule.settings and key not in TORCH_NAMES:
            assert defaults[key] == value, key
    if "beta1" in rule.settings:
        assert defaults["betas"] == (o["beta1"], o["beta2"])
    assert type(reference).__name__.lower() == name


def test_a_stack_shares_the_options_that_shape_its_rule():
    X, y = random_problem(12, 3, n=8, seed=0)
    with pytest.raises(ValidationError, match="initial_accumulator_value takes one value for every network of a stack"):
        xpnet.Stack("12-6-3", seeds=[0, 1]).fit(X, y, optimizer="adagrad", initial_accumulator_value=[0.0, 0.1])
    assert np.isfinite(xpnet.Stack("12-6-3", seeds=[0, 1]).fit(X, y, optimizer="adagrad", lr_decay=[0.0, 0.1])[1][0]["train_loss"])
