"""One epoch loop for everything that trains: one place builds it, a hook added once fires alike under
`xpnet train`, `xpnet sweep`, `fit` and `xpnet bench`, the run's state has one writer, and the schedules
are a registry like the rules."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet import hooks, schedules, spec
from xpnet.cli import main
from xpnet.errors import ValidationError

from helpers import random_problem

SRC = Path(xpnet.__file__).resolve().parent


def _calls_of(name):
    """Where the package's source calls ``name(...)`` (as a plain name or an attribute)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    return found


def test_one_place_builds_the_epoch_loop():
    """Every run -- xpnet train, sweep, bench, fit -- enters through xpnet.session, which alone builds a
    Trainer; the benchmark's learner builds none of its own."""
    (where,) = _calls_of("Trainer")
    assert where.startswith("session.py:")
    assert len(_calls_of("Session")) == 1  # session.start, the one door


def test_the_guard_reports_what_it_found_and_only_the_trainer_writes_the_state():
    """The guard's source assigns nothing into the run's state (TrainState): it returns what it found."""
    tree = ast.parse((SRC / "train.py").read_text())
    guard = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Guard")
    writes = [n for n in ast.walk(guard) if isinstance(n, (ast.Assign, ast.AugAssign)) for t in
              (n.targets if isinstance(n, ast.Assign) else [n.target])
              if isinstance(t, ast.Attribute) and "state" in ast.unparse(t.value)]
    assert writes == []


class Counter(hooks.Hook):
    def __init__(self):
        self.calls = {"train_begin": 0, "epoch_begin": 0, "epoch_end": 0, "train_end": 0, "checks": 0}

    def on_train_begin(self, loop):
        self.calls["train_begin"] += 1

    def on_epoch_begin(self, loop, epoch):
        self.calls["epoch_begin"] += 1

    def on_check(self, loop, epoch, position):
        self.calls["checks"] += 1

    def on_epoch_end(self, loop, epoch, records):
        self.calls["epoch_end"] += 1

    def on_train_end(self, loop):
        self.calls["train_end"] += 1


@pytest.fixture
def counted():
    counter = Counter()
    with hooks.hooked(counter):
        yield counter.calls
    assert counter not in hooks.EXTRA


SMALL = ["--digits", "1,5", "--layers", "784-4-1", "--loss", "logistic", "--batch-size", "64", "--no-progress", "--json"]


def test_a_hook_fires_alike_under_train_sweep_fit_and_bench(counted, capsys):
    assert main(["train", *SMALL, "--epochs", "2"]) == 0
    train = dict(counted)
    assert train["epoch_begin"] == train["epoch_end"] == 2 and train["train_begin"] == train["train_end"] == 1
    assert train["checks"] >= 2  # at least each epoch's end

    counted.update(dict.fromkeys(counted, 0))
    assert main(["sweep", *SMALL, "--epochs", "2", "--lr", "0.05,0.1"]) == 0  # one stack of two networks
    assert dict(counted) == train

    counted.update(dict.fromkeys(counted, 0))
    X, y = random_problem(784, 2, n=200)
    xpnet.MLP("784-4-2", seed=0).fit(np.abs(X), y, epochs=2, batch_size=64, progress=False)
    assert {k: counted[k] for k in ("epoch_begin", "epoch_end", "train_begin", "train_end")} == {
        "epoch_begin": 2, "epoch_end": 2, "train_begin": 1, "train_end": 1}

    counted.update(dict.fromkeys(counted, 0))
    capsys.readouterr()
    assert main(["bench", "--impl", "xpnet-numpy", "--batch-sizes", "64", "--rounds", "2", "--target", "0.01",
                 "--in-process", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["results"]
    # each pass the benchmark trains (calibration, warm-up, its rounds) is one run of the loop
    assert record["passes"] >= 3 and counted["epoch_end"] == counted["train_end"] == record["passes"]


def test_hooked_adds_nothing_after_its_block():
    with hooks.hooked(Counter()) as (counter,):
        assert hooks.EXTRA == [counter]
    assert hooks.EXTRA == []


# -- the schedules' registry -----------------------------------------------------------------------
def test_an_unknown_schedule_is_refused_not_run_as_constant():
    with pytest.raises(ValidationError, match="schedule must be one of constant, step, .*; got .cosin."):
        schedules.get("cosin")
    with pytest.raises(ValidationError, match="got 'cosin'"):
        spec.Optimizer(schedule="cosin")
    with pytest.raises(ValidationError, match="got 'cosin'"):  # the rate itself: never the constant one instead
        schedules.Schedule({"schedule": "cosin", "lr": 0.1}, 3, 10).lr(2)
    assert schedules.get("cosine").name == "cosine" and "plateau" in schedules.SCHEDULES


def test_each_schedule_names_the_options_it_uses():
    assert "step_size" in schedules.get("step").options and "gamma" in schedules.get("exponential").options
    assert "power_t" in schedules.get("invscaling").options
    assert set(schedules.users("gamma")) == {"step", "exponential", "plateau"}


def test_the_progress_bar_says_the_time_left_and_durations_read_as_people_say_them():
    import io

    from xpnet.progress import Progress, duration

    assert [duration(s) for s in (4.4, 59.6, 130, 3600 + 300)] == ["4 s", "1 min", "2 min 10 s", "1 h 5 min"]
    out = io.StringIO()
    bar = Progress(100, "bench", enabled=True, unit="rounds", stream=out)
    bar.start, bar.done = 0.0, 50
    bar._draw(10.0)  # half done in 10 s: 10 s left (no clock is read: the instant is given)
    assert "50/100" in out.getvalue() and "10 s left" in out.getvalue()
    bar.total += 50  # the work turned out larger: the estimate follows
    bar._draw(10.0)
    assert out.getvalue().endswith("20 s left   ")
    bar.write("a line")
    assert "a line\n" in out.getvalue()
