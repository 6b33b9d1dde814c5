"""Bad input and faults: fuzzed file readers, interrupted training, resumed runs, nothing unpickled.

XPNET_FUZZ_EXAMPLES (default 200) and XPNET_KILLS (default 2) scale the fuzzing and the number of
interrupted training runs (three kills each); XPNET_KILL_RULES=1 kills runs of the other update rules
too (rmsprop, adagrad, adamw). docs/reliability.md reports a larger run.
"""

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xpnet
from xpnet.datasets.idx import encode_idx, parse_idx
from xpnet.errors import DataError, ValidationError
from xpnet.io import load_weights

from helpers import assert_same_checkpoint

FUZZ = settings(max_examples=int(os.environ.get("XPNET_FUZZ_EXAMPLES", 200)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
KILLS = int(os.environ.get("XPNET_KILLS", 2))

VALID_IDX = encode_idx(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


def _weights_file_bytes():
    buf = io.BytesIO()
    net = xpnet.MLP("6-4-3", seed=0)
    arrays = {f"{k}{l}": v for l, (W, b) in enumerate(net.get_weights()) for k, v in (("W", W), ("b", b))}
    np.savez(buf, meta=np.array(json.dumps(net.config())), **arrays)
    return buf.getvalue()


VALID_NPZ = _weights_file_bytes()


def _mutate(data: bytes, edits):
    data = bytearray(data)
    for position, value in edits:
        if data:
            data[position % len(data)] = value
    return bytes(data)


# -- fuzzing: only DataError ever escapes the readers ------------------------------------------
@FUZZ
@given(st.binary(max_size=200))
def test_idx_reader_on_random_bytes(data):
    try:
        parse_idx(data, "fuzz")
    except DataError:
        pass


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, len(VALID_IDX)))
def test_idx_reader_on_damaged_files(edits, cut):
    try:
        a = parse_idx(_mutate(VALID_IDX, edits)[:cut], "fuzz")
    except DataError:
        return
    assert a.size * a.itemsize + 4 + 4 * a.ndim == cut  # whatever parses is exactly what its header says


@FUZZ
@given(st.binary(max_size=300))
def test_weights_loader_on_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "w.npz"
    path.write_bytes(data)
    with pytest.raises(DataError):
        load_weights(path)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(VALID_NPZ)))
def test_weights_loader_on_damaged_files(tmp_path_factory, edits, cut):
    path = tmp_path_factory.mktemp("fuzz") / "w.npz"
    path.write_bytes(_mutate(VALID_NPZ, edits)[:cut])
    try:
        weights, meta = load_weights(path)
    except DataError:
        return
    assert [W.shape for W, _ in weights] == [(6, 4), (4, 3)]


def test_nothing_is_ever_unpickled(tmp_path):
    """An object array in a weights file would run code when unpickled; xpnet refuses to load it."""
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as z:
        buf = io.BytesIO()
        np.save(buf, np.array([print], dtype=object), allow_pickle=True)
        z.writestr("meta.npy", buf.getvalue())
    with pytest.raises(DataError, match="not a readable xpnet weights file"):
        load_weights(path)


# -- validation of API arguments ----------------------------------------------------------------
@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: xpnet.MLP("784-x-10"), "layers must look like"),
        (lambda: xpnet.MLP([784, 0, 10]), "at least 1"),
        (lambda: xpnet.MLP("4-3", init="glorot"), "init must be one of"),
        (lambda: xpnet.MLP("4-3", dtype="float16"), "dtype must be one of"),
        (lambda: xpnet.MLP("4-3", seed=-1), "seed must be a non-negative integer"),
        (lambda: xpnet.MLP("4-3-3", activation=["relu", "tanh"]), "1 hidden layer"),
        (lambda: xpnet.MLP("4-1", loss="cross-entropy"), "needs at least 2 output units"),
        (lambda: xpnet.MLP("4-3").predict(np.array([["a"] * 4])), "X must hold numbers"),
        (lambda: xpnet.MLP("4-3").predict(np.full((1, 4), np.inf)), "X contains NaN or infinity"),
        (lambda: xpnet.MLP("4-3").fit(np.zeros((0, 4)), np.zeros(0, int)), "empty"),
        (lambda: xpnet.MLP("4-3").set_weights([(np.zeros((3, 4)), np.zeros(3))]), "layer 0: expected W"),
    ],
)
def test_api_errors_name_the_argument(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


# -- interrupted training: checkpoints, resume, atomic saves -------------------------------------
#: A run long enough to be interrupted: 40 epochs of 1-vs-5 (a few seconds), a checkpoint after each.
EPOCHS = 40
TRAIN = [sys.executable, "-m", "xpnet.cli", "train", "--digits", "1,5", "--layers", "784-8-1", "--loss",
         "logistic", "--activation", "tanh", "--lr", "0.05", "--batch-size", "16", "--epochs", str(EPOCHS),
         "--checkpoint-every", "1", "--no-progress", "--json"]


def _train(path, *extra, timeout=300):
    return subprocess.run([*TRAIN, "--save", str(path), *extra], capture_output=True, text=True, timeout=timeout)


def _epochs_done(path) -> int:
    """The epochs the checkpoint at ``path`` holds (0 where there is none yet)."""
    try:
        return load_weights(path)[1]["epochs_done"]
    except (FileNotFoundError, DataError):
        return 0


def _kill_after(proc, path, epoch, rng, end=EPOCHS) -> int:
    """Kill ``proc`` at a random moment of the epoch after its checkpoint of ``epoch`` appears; return the
    epochs its checkpoint then holds, having asserted that the kill interrupted the run (which would end
    after epoch ``end``)."""
    while _epochs_done(path) < epoch:
        assert proc.poll() is None, f"the run ended before epoch {epoch} was checkpointed: {proc.returncode}"
        time.sleep(0.002)
    time.sleep(rng.uniform(0.0, 0.03))  # inside the next epoch (each takes about 0.06 s here)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    done = _epochs_done(path)
    assert epoch <= done < end
    return done


def _assert_same_weights(path, expected):
    weights, meta = load_weights(path)
    assert meta["epochs_done"] == EPOCHS and [r["epoch"] for r in meta["history"]] == list(range(1, EPOCHS + 1))
    for (W, b), (eW, eb) in zip(weights, expected):
        np.testing.assert_array_equal(W, eW)
        np.testing.assert_array_equal(b, eb)


#: The kill test's runs: plain SGD (KILLS trials), and one trial of each kind of state besides the weights.
KILL_CASES = {
    "sgd": [],
    "adam-cosine": ["--optimizer", "adam", "--lr", "0.01", "--schedule", "cosine", "--epochs", "20"],
    "momentum-plateau": ["--momentum", "0.9", "--schedule", "plateau", "--patience", "2", "--gamma", "0.5", "--epochs",
                         "20"],
    "early-stopping": ["--validation", "0.2", "--early-stopping", "3"],  # stops after epoch 19 of 40
}
if os.environ.get("XPNET_KILL_RULES"):  # every other registered rule's state too (about 10 s each)
    KILL_CASES.update({
        "rmsprop-centered-momentum": ["--optimizer", "rmsprop", "--lr", "0.001", "--centered", "--momentum", "0.5",
                                      "--weight-decay", "0.01", "--epochs", "20"],
        "adagrad-lr-decay-step": ["--optimizer", "adagrad", "--lr-decay", "0.001", "--initial-accumulator-value", "0.1",
                                  "--schedule", "step", "--step-size", "5", "--epochs", "20"],
        "adamw": ["--optimizer", "adamw", "--epochs", "20"],
    })


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The uninterrupted run of each of KILL_CASES, trained once: its checkpoint file."""
    made = {}

    def reference(case):
        if case not in made:
            path = tmp_path_factory.mktemp("ref") / f"{case}.npz"
            proc = _train(path, *KILL_CASES[case])
            assert proc.returncode == 0, proc.stderr
            made[case] = path
        return made[case]

    return reference


@pytest.fixture(scope="module")
def uninterrupted(references):
    return load_weights(references("sgd"))


@pytest.mark.parametrize("case", KILL_CASES)
def test_killed_runs_resume_to_the_same_run(tmp_path, references, case):
    """Each trial kills the run three times, each at a random moment after a random epoch's checkpoint
    (the first after its first checkpoint) and before it ends, resuming in between; the last resume
    finishes with the uninterrupted run's file, bit for bit: its weights, the optimizer's moments and
    step counts, the schedule's and early stopping's counters and best weights, the history (timings
    aside) and where it stopped."""
    rng = random.Random(0)
    expected = references(case)
    end = load_weights(expected)[1]["epochs_done"]
    for trial in range(KILLS if case == "sgd" else 1):
        path = tmp_path / f"run{trial}.npz"
        proc = subprocess.Popen([*TRAIN, "--save", str(path), *KILL_CASES[case]], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        done = 0
        for epoch in sorted(rng.sample(range(1, end - 8), 3)):
            done = _kill_after(proc, path, max(epoch, done + 1), rng, end)
            proc = subprocess.Popen([*TRAIN, "--save", str(path), *KILL_CASES[case], "--resume"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert proc.wait(timeout=300) == 0
        assert_same_checkpoint(path, expected)
    if case == "early-stopping":  # a finished run resumed: said in one line, exit 0, nothing written
        before = path.read_bytes()
        again = _train(path, *KILL_CASES[case], "--resume")
        assert again.returncode == 0 and again.stderr == (f"xpnet train: {path} holds a run that stopped early after "
                                                          f"epoch {end}; nothing to train\n")
        assert path.read_bytes() == before


#: The child of the next test: the training command, whose third checkpoint write stops between writing
#: the temporary file and moving it into place (it says so in a marker file, then waits to be killed).
HALTING_WRITE = """
import os, sys, time, runpy
marker, calls, fsync = sys.argv.pop(1), [], os.fsync
def halting(fd):
    fsync(fd)
    calls.append(fd)
    if len(calls) == 3:
        open(marker, "w").close()
        time.sleep(120)
os.fsync = halting
sys.argv[0] = "xpnet"
runpy.run_module("xpnet.cli", run_name="__main__")
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(tmp_path, uninterrupted):
    path, marker = tmp_path / "w.npz", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", HALTING_WRITE, str(marker), *TRAIN[3:], "--save", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _epochs_done(path) == 2  # the old checkpoint, whole: the third was written beside it, not over it
    assert list(tmp_path.glob(".w.npz.*.tmp"))  # the half-done write the kill left behind
    done = _train(path, "--resume")
    assert done.returncode == 0, done.stderr
    _assert_same_weights(path, uninterrupted[0])


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, uninterrupted):
    path = tmp_path / "w.npz"
    _train(path, "--epochs", "1")
    proc = subprocess.run([*TRAIN, "--save", str(path), "--resume", "--lr", "0.5"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "is not a checkpoint of this run (lr 0.05 there, 0.5 here)" in proc.stderr


#: A sweep of six Adam configurations in three stacks of two, each weights file saved as its stack ends.
SWEEP = [sys.executable, "-m", "xpnet.cli", "sweep", "--digits", "1,5", "--layers", "784-8-1", "--loss", "logistic",
         "--activation", "tanh", "--batch-size", "16", "--epochs", "3", "--optimizer", "adam", "--lr", "0.01,0.003",
         "--seed", "0-2", "--stack-size", "2", "--no-progress"]


def _sweep_records(out):
    """The records of ``out`` by configuration, without what says how they ran (seconds, stack sizes)."""
    records = {}
    for record in map(json.loads, out.read_text().splitlines()):
        for key in ("seconds", "stack_size"):
            record.pop(key)
        for h in record["history"]:
            h.pop("seconds")
            h.pop("samples_per_second")
        records[record["weights"].rsplit("/", 1)[1]] = record
    return records


def test_a_killed_sweep_resumes_to_the_same_records_and_weights(tmp_path):
    """A sweep killed by SIGKILL after its first stack's records and weights are written, at a random
    moment of its second stack, then run again with --resume, ends with the uninterrupted sweep's records
    and weights files, bit for bit (timings aside)."""
    ref = tmp_path / "ref"
    whole = subprocess.run([*SWEEP, "--out", str(ref / "r.jsonl"), "--save-dir", str(ref)], capture_output=True,
                           text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out, saved = tmp_path / "r.jsonl", tmp_path / "w"
    argv = [*SWEEP, "--out", str(out), "--save-dir", str(saved)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not out.exists():
        assert proc.poll() is None, "the sweep ended before its first stack was written"
        time.sleep(0.002)
    time.sleep(random.Random(1).uniform(0.0, 0.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and 2 <= len(out.read_text().splitlines()) < 6
    resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _sweep_records(out).keys() == _sweep_records(ref / "r.jsonl").keys()
    for name, record in _sweep_records(ref / "r.jsonl").items():
        got = _sweep_records(out)[name]
        assert {k: v for k, v in got.items() if k != "weights"} == {k: v for k, v in record.items() if k != "weights"}
        assert_same_checkpoint(saved / name, ref / name)
