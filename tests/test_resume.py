"""A run's state has one owner: a run interrupted during any epoch and resumed from its checkpoint ends
exactly as the uninterrupted run -- its weights, every array of the optimizer's state, early stopping's
best weights, the schedules' and early stopping's counters, the history (timings aside) and the stopping
decision, bit for bit -- for every optimizer, schedule and early stopping, per sample and by minibatch,
compiled JAX included, one network and a stack. The real kills of the command line are in
test_reliability.py; here the Python API is interrupted right after an epoch's checkpoint is due, which
leaves on disk what a kill during the next epoch leaves."""

import numpy as np
import pytest

import xpnet
from xpnet.errors import DataError, ValidationError
from xpnet.state import TrainState

from helpers import assert_same_checkpoint, checkpoint_contents, random_problem

LAYERS = "12-10-4"
EPOCHS = 6


class Interrupt(Exception):
    """Stands for the kill: raised when an epoch has ended, before its checkpoint is written."""


def _interrupt_at(epoch):
    def on_epoch(record):
        if (record[0] if isinstance(record, list) else record)["epoch"] == epoch:
            raise Interrupt
    return on_epoch


def _problem():
    X, y = random_problem(12, 4, n=40, seed=7)
    return X, y, random_problem(12, 4, n=20, seed=8)


#: (id, backend, fit's options): every optimizer with and without weight decay, every schedule, early
#: stopping with and without restoring, per sample (batch 1, the chunked kernel) and by minibatch.
CASES = [
    ("sgd-b1", "numpy", dict(batch_size=1, lr=0.05)),
    ("momentum-plateau-b5", "numpy", dict(batch_size=5, lr=0.1, momentum=0.9, schedule="plateau", patience=1,
                                          gamma=0.5, min_delta=0.01)),
    ("nesterov-decay-cosine-b1", "numpy", dict(batch_size=1, lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.01,
                                               schedule="cosine")),
    ("sgd-decay-step-b5", "numpy", dict(batch_size=5, lr=0.1, weight_decay=0.05, schedule="step", step_size=2,
                                        gamma=0.5)),
    ("adam-cosine-b5", "numpy", dict(batch_size=5, optimizer="adam", lr=0.01, schedule="cosine")),
    ("adam-decay-exponential-b1", "numpy", dict(batch_size=1, optimizer="adam", lr=0.005, weight_decay=0.02,
                                                schedule="exponential", gamma=0.8)),
    ("adamw-invscaling-b1", "numpy", dict(batch_size=1, optimizer="adamw", lr=0.01, schedule="invscaling",
                                          power_t=0.1)),
    ("adamw-decay-b5", "numpy", dict(batch_size=5, optimizer="adamw", lr=0.01, weight_decay=0.1)),
    ("early-stopping-b5", "numpy", dict(batch_size=5, lr=0.3, momentum=0.9, early_stopping=1, min_delta=0.002)),
    ("early-stopping-last-b1", "numpy", dict(batch_size=1, optimizer="adam", lr=0.05, early_stopping=1,
                                             restore_best=False)),
    ("rmsprop-centered-momentum-decay-b1", "numpy", dict(batch_size=1, optimizer="rmsprop", lr=0.005, centered=True,
                                                           momentum=0.5, weight_decay=0.01)),
    ("adagrad-lrdecay-step-b5", "numpy", dict(batch_size=5, optimizer="adagrad", lr=0.05, lr_decay=0.01,
                                              initial_accumulator_value=0.1, schedule="step", step_size=2, gamma=0.5)),
    ("jax-adam-cosine-b5", "jax", dict(batch_size=5, optimizer="adam", lr=0.01, schedule="cosine")),
    ("jax-momentum-decay-b1", "jax", dict(batch_size=1, lr=0.02, momentum=0.9, weight_decay=0.01, sample_chunk=8)),
]


def _net(backend):
    return xpnet.MLP(LAYERS, activation="tanh", seed=3, dtype="float64", backend=backend)


@pytest.mark.parametrize("name,backend,options", CASES, ids=[c[0] for c in CASES])
def test_an_interrupted_fit_resumes_to_the_uninterrupted_run(tmp_path, name, backend, options):
    pytest.importorskip(backend)
    X, y, val = _problem()
    kwargs = dict(epochs=EPOCHS, validation=val, checkpoint_every=1, **options)
    whole = tmp_path / "whole.npz"
    expected = _net(backend).fit(X, y, checkpoint=whole, **kwargs)
    last = expected[-1]["epoch"]
    if "early_stopping" in options:
        assert expected[-1].get("stopped") and last < EPOCHS  # it stops, so the resume must decide the same
    for stop in range(2, last + 1):  # killed during epoch `stop`: the checkpoint holds epoch stop - 1
        path = tmp_path / f"cut{stop}.npz"
        with pytest.raises(Interrupt):
            _net(backend).fit(X, y, checkpoint=path, on_epoch=_interrupt_at(stop), **kwargs)
        assert checkpoint_contents(path)[1]["epochs_done"] == stop - 1
        rest = _net(backend).fit(X, y, checkpoint=path, resume=True, **kwargs)
        assert [r["epoch"] for r in rest] == list(range(stop, last + 1))
        assert_same_checkpoint(path, whole)


def test_a_stack_mixing_optimizer_settings_resumes_exactly(tmp_path):
    X, y, val = _problem()

    def stack():
        return xpnet.Stack(LAYERS, activation="identity", loss="squared", seeds=[3, 4, 5], dtype="float64")

    kwargs = dict(epochs=EPOCHS, batch_size=5, momentum=[0.9, 0.5, 0.9], lr=[0.01, 0.03, 5.0], weight_decay=[0.0, 0.01, 0.0],
                  early_stopping=[None, 1, None], min_delta=[None, 0.001, None], validation=val, checkpoint_every=1)
    whole = tmp_path / "whole.npz"
    s = stack()
    s.fit(X, y, checkpoint=whole, **kwargs)
    assert s.diverged[2] is not None and s.stopped[1] is not None  # frozen networks keep their state whole too
    path = tmp_path / "cut.npz"
    with pytest.raises(Interrupt):
        stack().fit(X, y, checkpoint=path, on_epoch=_interrupt_at(4), **kwargs)
    stack().fit(X, y, checkpoint=path, resume=True, **kwargs)
    assert_same_checkpoint(path, whole)
    again = xpnet.Stack.load(path)
    assert again.diverged == s.diverged and again.stopped == s.stopped


def test_a_finished_run_resumes_to_nothing_and_changes_nothing(tmp_path):
    X, y, val = _problem()
    kwargs = dict(epochs=EPOCHS, batch_size=5, lr=0.3, momentum=0.9, early_stopping=1, min_delta=0.002,
                  validation=val, checkpoint_every=1)
    path = tmp_path / "w.npz"
    history = _net("numpy").fit(X, y, checkpoint=path, **kwargs)
    assert history[-1].get("stopped") and len(history) < EPOCHS
    before = path.read_bytes()
    assert _net("numpy").fit(X, y, checkpoint=path, resume=True, **kwargs) == []
    assert path.read_bytes() == before
    whole = tmp_path / "all.npz"
    _net("numpy").fit(X, y, checkpoint=whole, epochs=2, batch_size=5)
    before = whole.read_bytes()
    assert _net("numpy").fit(X, y, checkpoint=whole, epochs=2, batch_size=5, resume=True) == []
    assert whole.read_bytes() == before


def test_more_epochs_continue_a_finished_run_unless_its_weights_are_the_best_epochs(tmp_path):
    X, y, val = _problem()
    path, longer = tmp_path / "w.npz", tmp_path / "longer.npz"
    _net("numpy").fit(X, y, checkpoint=path, epochs=3, batch_size=5, optimizer="adam", lr=0.01)
    _net("numpy").fit(X, y, checkpoint=path, epochs=5, batch_size=5, optimizer="adam", lr=0.01, resume=True)
    _net("numpy").fit(X, y, checkpoint=longer, epochs=5, batch_size=5, optimizer="adam", lr=0.01)
    assert_same_checkpoint(path, longer)
    best = tmp_path / "best.npz"
    options = dict(batch_size=5, lr=0.01, early_stopping=20, validation=val)
    _net("numpy").fit(X, y, checkpoint=best, epochs=3, **options)
    with pytest.raises(ValidationError, match="ended its 3 epochs with the best epoch's weights"):
        _net("numpy").fit(X, y, checkpoint=best, epochs=5, resume=True, **options)


def test_a_checkpoint_of_another_run_is_refused_in_one_line(tmp_path):
    X, y, _ = _problem()
    path = tmp_path / "w.npz"
    _net("numpy").fit(X, y, checkpoint=path, epochs=2, batch_size=5, optimizer="adam", lr=0.01)
    before = path.read_bytes()
    for other, match in [(dict(optimizer="adam", lr=0.02), "lr 0.01 there, 0.02 here"),
                         (dict(optimizer="sgd", lr=0.01), "optimizer 'adam' there, 'sgd' here"),
                         (dict(optimizer="adam", lr=0.01, batch_size=4), "batch_size 5 there, 4 here")]:
        with pytest.raises(ValidationError, match=match) as info:
            _net("numpy").fit(X, y, checkpoint=path, epochs=4, resume=True, **{"batch_size": 5, **other})
        assert "\n" not in str(info.value)
    other = X.copy()
    other[0, 0] += 1e-9  # the same rows but one value: other data all the same
    for rows, labels in ((X[:30], y[:30]), (other, y)):
        with pytest.raises(ValidationError, match=r"other data \(sha256 [0-9a-f]{12}… there, [0-9a-f]{12}… here\)"):
            _net("numpy").fit(rows, labels, checkpoint=path, epochs=4, resume=True, batch_size=5, optimizer="adam",
                              lr=0.01)
    with pytest.raises(DataError, match="holds one network, not a stack"):
        xpnet.Stack(LAYERS, activation="tanh", seeds=[3], dtype="float64").fit(
            X, y, checkpoint=path, epochs=4, resume=True, batch_size=5, optimizer="adam", lr=0.01)
    assert path.read_bytes() == before


def test_a_network_taken_out_of_a_stack_carries_its_state(tmp_path):
    """Stack.model(k) (what a sweep saves) holds network k's optimizer state: saved, loaded and trained on,
    it ends as that network trained alone does."""
    X, y, _ = _problem()
    kwargs = dict(batch_size=5, optimizer="adam", weight_decay=0.01)
    stack = xpnet.Stack(LAYERS, activation="tanh", seeds=[3, 4], dtype="float64")
    stack.fit(X, y, epochs=2, lr=[0.01, 0.02], **kwargs)
    stack.model(1).save(tmp_path / "one.npz")
    net = xpnet.MLP.load(tmp_path / "one.npz")
    assert isinstance(net.state, TrainState) and net.state.epochs_done == 2
    net.fit(X, y, epochs=4, initial_epoch=2, lr=0.02, seed=4, **kwargs)
    alone = xpnet.MLP(LAYERS, activation="tanh", seed=4, dtype="float64")
    alone.fit(X, y, epochs=4, lr=0.02, **kwargs)
    for (W, b), (eW, eb) in zip(net.get_weights(), alone.get_weights()):
        np.testing.assert_array_equal(W, eW)
        np.testing.assert_array_equal(b, eb)


# -- files of the previous release --------------------------------------------------------------------
DATA = __import__("pathlib").Path(__file__).parent / "data"


def test_a_file_fit_saved_in_the_previous_release_loads_with_its_state():
    """release-0.1.0-fit-adam.npz: `MLP.save` of 0.1.0 after three epochs of Adam with a plateau schedule
    and early stopping (tests/data/README.md says how it was made)."""
    net = xpnet.MLP.load(DATA / "release-0.1.0-fit-adam.npz")
    with np.load(DATA / "release-0.1.0-fit-adam.npz") as f:
        np.testing.assert_array_equal(net.get_weights()[0][0], f["W0"])
        np.testing.assert_array_equal(net.backend.to_host(net.state.opt[0][2]), f["state0_2"])
        np.testing.assert_array_equal(net.backend.to_host(net.state.best[0][1][0]), f["best_W1"])
    assert net.state.rule.name == "adam" and net.state.schedules[0]["bad"] >= 0
    assert net.state.early[0]["best_epoch"] in (0, 1, 2) and net.state.frozen == [None]


def test_a_checkpoint_of_the_previous_release_resumes_to_the_run_of_this_one(tmp_path, capsys):
    """release-0.1.0-train-momentum.npz: `xpnet train --momentum 0.9 --epochs 2 --save` of 0.1.0, whose final
    file held the optimizer's state. Resumed to three epochs, it ends as this release's three-epoch run."""
    from xpnet.cli import main

    args = ["train", "--digits", "1,5", "--layers", "784-4-1", "--loss", "logistic", "--activation", "tanh", "--lr",
            "0.05", "--batch-size", "64", "--epochs", "3", "--momentum", "0.9", "--no-progress", "--json"]
    old = tmp_path / "old.npz"
    old.write_bytes((DATA / "release-0.1.0-train-momentum.npz").read_bytes())
    assert main(["evaluate", "--weights", str(old), "--json"]) == 0
    assert __import__("json").loads(capsys.readouterr().out)["test_accuracy"] == pytest.approx(0.9941, abs=5e-5)
    assert main([*args, "--save", str(old), "--resume"]) == 0
    assert main([*args, "--save", str(tmp_path / "new.npz")]) == 0
    resumed, fresh = checkpoint_contents(old), checkpoint_contents(tmp_path / "new.npz")
    assert sorted(resumed[0]) == sorted(fresh[0])
    for name, value in fresh[0].items():
        np.testing.assert_array_equal(resumed[0][name], value, err_msg=name)
    assert resumed[1]["history"] == fresh[1]["history"]


def test_a_checkpoint_whose_run_records_another_rule_than_its_state_is_refused_untouched(tmp_path, capsys):
    """A checkpoint of an Adam run whose recorded run was edited to say sgd: resuming it with --optimizer
    sgd would train on with Adam's moments as if they were nothing; it is refused in one line, the file
    left as it was."""
    import json as _json

    from xpnet.cli import main as cli

    small = ["train", "--digits", "1,5", "--layers", "784-4-1", "--loss", "logistic", "--batch-size", "64",
             "--no-progress", "--json"]
    adam, sgd = tmp_path / "adam.npz", tmp_path / "sgd.npz"
    assert cli([*small, "--epochs", "1", "--optimizer", "adam", "--save", str(adam)]) == 0
    assert cli([*small, "--epochs", "1", "--optimizer", "sgd", "--save", str(sgd)]) == 0
    capsys.readouterr()
    arrays = dict(np.load(adam))
    meta, theirs = _json.loads(str(arrays["meta"])), _json.loads(str(np.load(sgd)["meta"]))
    meta["run"], meta["identity"] = theirs["run"], theirs["identity"]  # what an sgd run records
    arrays["meta"] = np.array(_json.dumps(meta))
    np.savez(adam, **arrays)
    before = adam.read_bytes()
    assert cli([*small, "--epochs", "2", "--optimizer", "sgd", "--save", str(adam), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "its run records optimizer 'sgd', but its training state was made by 'adam'" in err
    assert err.count("\n") == 1 and adam.read_bytes() == before
