"""The xpnet command: JSON output, saved files, and one-line errors instead of tracebacks."""

import json
import subprocess
import sys

import numpy as np
import pytest

from xpnet.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_gradcheck_json(capsys):
    code, out, _ = run(capsys, "gradcheck", "--activation", "relu", "--loss", "logistic", "--layers", "10-6-6-1", "--json")
    result = json.loads(out)
    assert code == 0 and result["passed"] and result["max_rel_error"] < 1e-6
    assert result["layers"] == [10, 6, 6, 1] and set(result["arrays"]) == {"W0", "b0", "W1", "b1", "W2", "b2"}


def test_train_json_save_and_evaluate(capsys, tmp_path):
    path = tmp_path / "pair.npz"
    code, out, _ = run(capsys, "train", "--digits", "1,5", "--layers", "784-16-1", "--loss", "logistic",
                       "--activation", "relu", "--init", "he", "--lr", "0.1", "--batch-size", "32", "--epochs", "2",
                       "--json", "--save", str(path), "--no-progress")
    result = json.loads(out)
    assert code == 0 and len(result["history"]) == 2
    assert {"epoch", "train_loss", "test_loss", "test_accuracy", "samples_per_second"} <= set(result["history"][0])
    assert result["test_accuracy"] > 0.98 and abs(result["initial_test_accuracy"] - 0.5) < 0.2
    code, out, _ = run(capsys, "evaluate", "--weights", str(path), "--json")
    scored = json.loads(out)
    assert code == 0 and scored["test_accuracy"] == result["test_accuracy"]
    assert np.array(scored["confusion"]).shape == (2, 2)
    code, out, _ = run(capsys, "evaluate", "--weights", str(path))
    lines = out.splitlines()
    header = lines.index("confusion matrix (rows: true class, columns: predicted class):")
    assert lines[header + 1].split() == ["true\\pred", "1", "5"]  # the classes by name (--digits 1,5)
    assert [row.split()[0] for row in lines[header + 2:header + 4]] == ["1", "5"]


def test_epochs_zero_scores_the_untrained_net(capsys):
    code, out, _ = run(capsys, "train", "--epochs", "0", "--json")
    result = json.loads(out)
    assert code == 0 and result["history"] == [] and 0.05 < result["test_accuracy"] < 0.15


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--layers", "780-10"], "--layers must start with the input size 784; got 780"),
        (["train", "--layers", "784-32-9"], "--layers must end with the class count 10; got 9"),
        (["train", "--backend", "tensorflow"], "unknown backend 'tensorflow'"),
        (["train", "--activation", "swish"], "activation must be one of"),
        (["train", "--loss", "cross-entropy", "--output", "sigmoid"], "cannot be paired"),
        (["train", "--lr", "-1"], "lr must be > 0"),
        (["train", "--digits", "3"], "digits must be two class labels"),
        (["train", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"], "fashion-mnist files not found"),
        (["evaluate", "--weights", "/nonexistent.npz"], "no such weights file"),
    ],
)
def test_user_errors_are_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv, "--no-progress") if argv[0] == "train" else run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_divergence_exits_3_and_saves_the_last_finite_weights(capsys, tmp_path):
    path = tmp_path / "w.npz"
    code, _, err = run(capsys, "train", "--activation", "identity", "--lr", "10", "--epochs", "1",
                       "--save", str(path), "--no-progress")
    assert code == 3 and "diverged at epoch 1, step" in err
    with np.load(path, allow_pickle=False) as f:
        assert np.isfinite(f["W0"]).all() and "diverged" in json.loads(str(f["meta"]))
    code, _, err = run(capsys, "train", "--activation", "identity", "--lr", "10", "--epochs", "1",
                       "--save", str(path), "--resume", "--no-progress")
    assert code == 2 and "holds a run that diverged" in err


@pytest.mark.parametrize("argv", [["train", "--loss", "hinge"], ["train", "--epochs", "x"], ["frobnicate"], []])
def test_usage_mistakes_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "error:" in err and "--help" in err


def test_the_console_script_prints_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "xpnet.cli", "train", "--layers", "10-10"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("xpnet train: error: --layers must start")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--save", "{tmp}"], "--save {tmp} is a directory; give a file path"),
        (["train", "--save", "/proc/xpnet-nowhere/w.npz"], "--save /proc/xpnet-nowhere/w.npz cannot be written"),
        (["train", "--checkpoint-every", "0", "--save", "{tmp}/w.npz"], "--checkpoint-every: must be >= 1"),
        (["plot", "--weights", "{tmp}/w.npz", "--out", "{tmp}/w.npz"], "--out {tmp}/w.npz exists and is not a directory"),
        (["plot", "--weights", "{tmp}/w.npz", "--out", "/proc/xpnet-nowhere"], "--out /proc/xpnet-nowhere cannot be written"),
    ],
)
def test_outputs_are_checked_before_any_work(capsys, tmp_path, argv, message):
    """A path that cannot be written is refused in one line before data is loaded or a step is trained."""
    import xpnet

    xpnet.MLP("784-10").save(tmp_path / "w.npz")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(argv + (["--no-progress", "--epochs", "1"] if argv[0] == "train" else []))
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and message.replace("{tmp}", str(tmp_path)) in err and err.count("\n") == 1
    assert out == "" and "Traceback" not in err  # nothing was trained (train prints before its first epoch)


def test_saved_files_get_the_mode_a_plain_write_gives(tmp_path):
    import os
    import stat

    import xpnet

    old = os.umask(0o022)
    try:
        xpnet.MLP("4-3").save(tmp_path / "w.npz")
        assert stat.S_IMODE((tmp_path / "w.npz").stat().st_mode) == 0o644
        os.chmod(tmp_path / "w.npz", 0o640)  # an existing file keeps its mode, as open(..., "w") would
        xpnet.MLP("4-3").save(tmp_path / "w.npz")
        assert stat.S_IMODE((tmp_path / "w.npz").stat().st_mode) == 0o640
        os.umask(0o077)
        xpnet.MLP("4-3").save(tmp_path / "private.npz")
        assert stat.S_IMODE((tmp_path / "private.npz").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_checkpoint_of_the_old_split_rule_resumes_under_that_rule_or_is_refused(capsys, tmp_path):
    """Before --split-seed, xpnet train --validation held out rows chosen with --seed. Such a checkpoint
    (flat keys, no "run" entry) resumes with --split-seed equal to its seed, ending as an uninterrupted run
    with that split seed; without it, it is refused in one line that says what to pass."""
    import xpnet
    from xpnet.io import load_weights, save_weights

    args = ["train", "--digits", "1,5", "--layers", "784-8-1", "--loss", "logistic", "--activation", "tanh",
            "--dtype", "float64", "--lr", "0.05", "--batch-size", "16", "--validation", "0.2", "--seed", "3",
            "--no-progress", "--json"]
    path = tmp_path / "old.npz"
    assert main([*args, "--split-seed", "3", "--epochs", "1", "--save", str(path)]) == 0
    weights, meta = load_weights(path)
    run = meta.pop("run")
    meta.pop("identity")  # neither entry existed then
    old = {**meta, "dataset": "mnist", "scaling": "255", "digits": "1,5", "lr": 0.05, "batch_size": 16,
           "shuffle": None, "seed": 3, "validation": 0.2, "backend": "numpy"}  # what an old checkpoint held
    save_weights(path, weights, old)
    capsys.readouterr()
    assert main([*args, "--epochs", "2", "--save", str(path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--validation rows were chosen with --seed 3; resume it with --split-seed 3" in err and err.count("\n") == 1
    assert main([*args, "--split-seed", "3", "--epochs", "2", "--save", str(path), "--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    whole = tmp_path / "whole.npz"
    assert main([*args, "--split-seed", "3", "--epochs", "2", "--save", str(whole)]) == 0
    uninterrupted = json.loads(capsys.readouterr().out)
    assert [h["val_loss"] for h in resumed["history"]] == [h["val_loss"] for h in uninterrupted["history"]]
    for (W, b), (W2, b2) in zip(xpnet.MLP.load(path).get_weights(), xpnet.MLP.load(whole).get_weights()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert run["data"]["split_seed"] == 3
