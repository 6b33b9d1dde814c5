"""Each documented option has a test that fails when the option is ignored: this script ignores them one
at a time and runs the tests that must catch it. Not part of the suite (about 10 minutes here):

    python tests/ignored_options.py [NAME ...]        # NAME: a row's first cell, e.g. evaluate:--digits

Two kinds of breakage, each on a copy (the checkout is never touched):
- an option dropped from the command line before argparse reads it, as if the code ignored it, for one
  command (``evaluate:--digits``) -- a ``sitecustomize`` on ``PYTHONPATH``, so that the commands the tests
  start as subprocesses lose it too;
- one line of a copy of ``src/xpnet`` changed (an initialiser's variance, ``fit`` ignoring ``validation=``,
  the kill test's kill sent after the run has ended ...).

First the same tests run on an unbroken copy (they must pass there); then one markdown row per breakage
with the outcome of the tests that must catch it. Exits 1 if the unbroken copy fails or a breakage goes
unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: command:--flag -> the tests (pytest -k, in tests/test_options.py and tests/test_bench.py) that must fail
FLAGS = {
    "train:--validation": "test_train_validation",
    "train:--scale": "test_train_scale_standardize",
    "train:--shuffle": "test_train_shuffle",
    "train:--no-shuffle": "test_train_shuffle",
    "train:--compile": "test_train_compile",
    "train:--no-compile": "test_train_compile",
    "train:--init-scale": "test_train_init_scale",
    "train:--backend": "test_train_backend_and_device",
    "train:--device": "test_train_backend_and_device",
    "train:--threads": "test_train_threads",
    "bench:--threads": "test_cli_bench_threads_and_busy_cores",
    "bench:--busy-cores": "test_cli_bench_threads_and_busy_cores",
    "sweep:--validation": "test_sweep_validation",
    "sweep:--init-scale": "test_sweep_validation",
    "sweep:--scale": "test_sweep_validation",
    "sweep:--backend": "test_sweep_validation",
    "evaluate:--backend": "test_evaluate",
    "evaluate:--device": "test_evaluate",
    "evaluate:--dtype": "test_evaluate",
    "evaluate:--dataset": "test_evaluate",
    "evaluate:--digits": "test_evaluate",
    "evaluate:--scale": "test_evaluate",
    "gradcheck:--samples": "test_gradcheck_samples",
    "gradcheck:--eps": "test_gradcheck_samples",
    "gradcheck:--init": "test_gradcheck_samples",
    "gradcheck:--backend": "test_gradcheck_samples",
    "bench:--net": "test_cli_bench_net_dtype_and_jax",
    "bench:--dtype": "test_cli_bench_net_dtype_and_jax",
    "bench:--models": "test_cli_bench_stacks_of_the_peers",
}

#: name -> (file under the checkout, the text, its replacement, the tests (pytest -k over tests/))
EDITS = {
    "lecun drawn as he": ("src/xpnet/init.py", "math.sqrt(1.0 / n_in), size", "math.sqrt(2.0 / n_in), size",
                          "initialiser"),
    "xavier-uniform drawn normal": ("src/xpnet/init.py", "return rng.uniform(-r, r, size=(n_in, n_out))",
                                    "return rng.normal(0.0, r / math.sqrt(3.0), size=(n_in, n_out))", "initialiser"),
    "uniform as U[-0.5, 0.5]": ("src/xpnet/init.py", "rng.uniform(-1.0, 1.0,", "rng.uniform(-0.5, 0.5,", "initialiser"),
    "fit ignores validation=": ("src/xpnet/train.py", '(("test", test), ("val", validation))', '(("test", test),)',
                                "test_train_validation"),
    "fit ignores on_epoch=": ("src/xpnet/train.py", "        if on_epoch is not None:", "        if False:", "on_epoch"),
    "fit ignores progress=": ("src/xpnet/train.py", "enabled=progress) as bar:", "enabled=False) as bar:",
                              "progress_bar"),
    "Ctrl-C exits 1": ("src/xpnet/cli/__init__.py", "        return 130", "        return 1", "ctrl_c"),
    "gradcheck exits 0 on a failed check": ("src/xpnet/cli/__init__.py", 'return 0 if result["passed"] else 1', "return 0",
                                            "gradcheck_exits_1"),
    "--resume loads the weights scaled by 1 + 1e-7": (
        "src/xpnet/session.py", "            self.model.set_weights(weights)",
        "            self.model.set_weights([(W * (1 + 1e-7), b) for W, b in weights])", "killed_runs_resume"),
    "the run's state kept on the model only when training ends (schedules, early stopping)": (
        "src/xpnet/train.py", "        s.schedules = [schedule.state for schedule in self.schedules]\n",
        "        return\n", "killed_runs_resume or interrupted_fit_resumes"),
    "checkpoints without the optimizer's state": (
        "src/xpnet/state.py", '    if state.opt is not None:\n        out["optimizer_state"]',
        '    if False:\n        out["optimizer_state"]', "killed_runs_resume or interrupted_fit_resumes"),
    "the kill sent after the run has ended": (
        "tests/test_reliability.py", "epoch (each takes about 0.06 s here)\n    proc.send_signal(signal.SIGKILL)",
        "epoch (each takes about 0.06 s here)\n    proc.wait()\n    proc.send_signal(signal.SIGKILL)",
        "killed_runs_resume"),
}

#: Drops XPNET_IGNORE_FLAG ("command:--flag") and its value from what argparse parses for that command.
SITECUSTOMIZE = '''
import argparse, os, sys
command, _, flag = os.environ["XPNET_IGNORE_FLAG"].rpartition(":")
original = argparse.ArgumentParser.parse_known_args

def parse_known_args(self, args=None, namespace=None):
    args = list(sys.argv[1:] if args is None else args)
    actions = [a for a in self._actions if flag in a.option_strings]
    if actions and self.prog.split()[-1] == command:
        width, kept, i = (1 if actions[0].nargs == 0 else 2), [], 0
        while i < len(args):
            if args[i] == flag:
                i += width
            elif args[i].startswith(flag + "="):
                i += 1
            else:
                kept.append(args[i])
                i += 1
        args = kept
    return original(self, args, namespace)

argparse.ArgumentParser.parse_known_args = parse_known_args
'''


def pytest(tests: list[str], expression: str, env: dict, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, "-k", expression],
                          cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-200:]


def ignored_flag(name: str, expression: str, work: Path) -> str:
    (work / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {"XPNET_IGNORE_FLAG": name, "PYTHONPATH": os.pathsep.join([str(work), str(ROOT / "src")])}
    return pytest(["tests/test_options.py", "tests/test_bench.py"], expression, env, ROOT)


def edited(name: str | None, work: Path, expression: str | None = None) -> str:
    """The tests on a copy of the checkout with the edit ``name`` (``None``: none, the tests ``expression``)."""
    path, old, new, expression = EDITS[name] if name else ("", "", "", expression)
    copy = work / "checkout"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info"))
    if name:
        target = copy / path
        text = target.read_text()
        if text.count(old) != 1:
            return f"not applied: {old!r} is not in {path} once"
        target.write_text(text.replace(old, new))
    return pytest(["tests"], expression, {"PYTHONPATH": str(copy / "src")}, copy)


def main(argv: list[str]) -> int:
    names = argv or [*FLAGS, *EDITS]
    unknown = [n for n in names if n not in FLAGS and n not in EDITS]
    if unknown:
        print(f"unknown: {', '.join(unknown)}; known: {', '.join([*FLAGS, *EDITS])}", file=sys.stderr)
        return 2
    print("| broken | tests run | outcome |\n|---|---|---|")
    every = " or ".join(sorted({FLAGS.get(n) or EDITS[n][3] for n in names}))
    with tempfile.TemporaryDirectory() as work:
        unbroken = edited(None, Path(work), every)
    print(f"| nothing | the {len(names)} rows' tests | {unbroken} |")
    if " failed" in unbroken or " passed" not in unbroken:
        return 1
    missed = 0
    for name in names:
        with tempfile.TemporaryDirectory() as work:
            outcome = ignored_flag(name, FLAGS[name], Path(work)) if name in FLAGS else edited(name, Path(work))
        caught = " failed" in outcome
        missed += not caught
        print(f"| `{name}` | `{FLAGS.get(name) or EDITS[name][3]}` | {outcome}{'' if caught else ' **NOT CAUGHT**'} |",
              flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
