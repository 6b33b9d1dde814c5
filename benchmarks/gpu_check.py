"""Check and measure everything GPU in one command that fits one short run, on any machine with a CUDA GPU
and this repository -- or, with ``--stand-in``, on any machine at all.

    python3 benchmarks/gpu_check.py [--out DIR] [--quick] [--budget SECONDS] [--cases N] [--stand-in]

1. The package probe: says which Python packages it lacks and how to get them without a network, before
   anything else (exit 2 where xpnet cannot run at all; a stage that needs a missing package is skipped,
   with the reason, and the rest run).
2. Finds the backends that have a CUDA GPU here (CuPy, PyTorch on CUDA, JAX on a GPU) and describes the
   device: name, memory, CUDA runtime and driver versions, library versions.
3. The GPU tests (the ``@cuda``/``@gpu`` cases of :data:`GPU_TESTS`: every GPU backend against NumPy,
   float64 to 1e-10 and float32 to 1e-4, per-sample and minibatch; stacks against each network alone; the
   gradient check; the steps between two host reads under each library's synchronisation guard), in a
   subprocess with a timeout, its output streamed.
4. Trains the seeds' network on MNIST once per GPU backend (batch 64, lr 0.5) and reports its test accuracy.
5. Times the benchmark suite's CUDA cases with GPU-synchronised timing (:func:`plan`): xpnet on every GPU
   backend and PyTorch eager at batch 1, 64, 1024 and the full batch, then stacks of K networks beside
   torch-func and jax-vmap; the cases most worth having first, as many as ``--budget`` leaves time for
   (and ``--cases N`` allows).

Each stage rewrites ``gpu-check.json`` and ``gpu-check.md`` in ``--out`` as it finishes (and each timed case
too), so the reports always hold what ran and say why anything did not: the budget ran out, a package is
missing, a case failed (its error is recorded and the next case runs). ``--budget`` (default 300 s) is the
whole run's: stages and cases that would not fit are not started.

``--stand-in`` runs the same pipeline with PyTorch and JAX on the CPU standing in for the GPU backends
(CuPy has no stand-in), so the code that will run on a GPU runs in CI: ``--stand-in --quick`` takes well
under a minute here and is part of the test suite (tests/test_gpu_check.py).

Expected on one GPU (H100/H200 class, imports and compilation included; predicted, see
docs/backends.md): ``--quick`` about 4 minutes within its 300 s budget; the full check (both nets, stacks to
K = 4,096) about 15 minutes, so give it ``--budget 900``. Without a CUDA GPU (and without ``--stand-in``)
it says why for each library, writes a report that says "skipped", and exits 0. Exit status 2: a required
package is missing or an argument is wrong; 1: a GPU test or a timed case failed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: module -> what to install when it is missing; without these nothing runs (exit 2)
REQUIRED = {
    "numpy": "numpy>=1.24",
    "array_api_compat": "array-api-compat>=1.11 (pure Python: carry its wheel, docs/backends.md)",
}
#: module -> what to install; without these the GPU tests are skipped (and said to be)
FOR_TESTS = {"pytest": "pytest>=7 (pure Python: carry its wheel with pluggy, iniconfig, packaging)"}
#: module -> what provides a GPU backend
GPU_LIBRARIES = {
    "cupy": "CuPy: pip install 'xpnet[cuda13]' (cupy-cuda13x) or 'xpnet[cuda12]' (cupy-cuda12x)",
    "torch": "PyTorch built with CUDA",
    "jax": "JAX with CUDA: pip install 'jax[cuda13]'",
}
#: For the whole suite on that machine besides the GPU tests (not needed by this command).
OPTIONAL = {"array_api_strict": "array-api-strict (pure Python: carry its wheel), for the rest of the test suite"}
#: The test files with GPU cases, and the pytest ``-k`` expression that picks them (the ``backend``
#: fixture's GPU ids, and test_gpu.py's tests).
GPU_TESTS = ("tests/test_gpu.py", "tests/test_backends.py", "tests/test_stack.py")
GPU_SELECTION = "cuda or gpu"
#: On CPU stand-ins with --quick: test_gpu.py without its per-sample cases, whose compiled JAX chunks the
#: suite's own test_transfers.py runs on the same CPU (half the stage's time; a GPU runs them all).
STAND_IN_QUICK = (GPU_TESTS[:1], f"({GPU_SELECTION}) and not b1")
#: The stacks' sizes: the full check's, and --quick's.
MODELS, QUICK_MODELS = (1, 4, 16, 64, 256, 1024, 4096), (1, 16, 256)
#: A case is started only when this many seconds of the budget are left (its calibration and rounds)...
CASE_SECONDS = {"quick": 4.0, "full": 8.0}
#: ... or this many for xpnet's compiled JAX per sample, whose chunk compiles at each calibration size.
COMPILED_SAMPLE_SECONDS = 15.0
#: --quick's shortest calibration pass (samples; ``bench.MIN_SAMPLES`` otherwise): a slow case (torch-func
#: per sample, 500 samples/s on a CPU) fits its few seconds.
QUICK_MIN_SAMPLES = 256


def missing(modules) -> dict[str, str]:
    """The modules of ``modules`` (name -> how to get it) that cannot be imported here."""
    return {m: how for m, how in modules.items() if importlib.util.find_spec(m) is None}


def _xpnet():
    """Import xpnet, from this checkout's src/ when it is not installed."""
    try:
        import xpnet
    except ImportError:
        sys.path.insert(0, str(ROOT / "src"))
        import xpnet
    return xpnet


def say(text: str) -> None:
    print(f"gpu_check: {text}", file=sys.stderr, flush=True)


# -- the report ------------------------------------------------------------------------------------
class Report:
    """The report, rewritten (atomically) into ``out`` whenever something finishes."""

    def __init__(self, out: Path, budget: float, stand_in: bool):
        self.out, self.t0, self.budget = out, time.monotonic(), budget
        self.data = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "stand_in": stand_in, "budget_seconds": budget, "not_run": []}
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.t0)

    def not_run(self, what: str, why: str) -> None:
        self.data["not_run"].append({"what": what, "why": why})
        say(f"not run: {what} ({why})")

    def write(self) -> list[Path]:
        self.data["seconds"] = round(time.monotonic() - self.t0, 1)
        return write(self.data, self.out)


# -- the stages ------------------------------------------------------------------------------------
def probe(stand_in: bool = False) -> tuple[dict, list]:
    """The machine, the library versions, the backends with a GPU (or their CPU stand-ins) and the
    reasons of the others."""
    _xpnet()
    from xpnet import backends

    found, reasons = backends.gpu_backends({"torch": "cpu", "jax": "cpu"} if stand_in else None)
    if stand_in:
        reasons["cupy"] = "no CPU stand-in for CuPy"
    gpus = [b.describe() for b in found]
    device = {k: v for k, v in gpus[0].items() if k != "backend"} if gpus else None
    if stand_in and device is not None:
        device["name"] = f"CPU stand-in ({platform.processor() or platform.machine()})"
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count()},
        "versions": backends.library_versions(),
        "device": device,
        "gpus": gpus,
        "no_gpu": reasons,
        "missing_gpu_libraries": missing(GPU_LIBRARIES),
        "missing_optional": missing(OPTIONAL),
        "cupy_distributions": cupy_distributions(),
    }, found


def cupy_distributions() -> list[str]:
    """The CuPy packages installed (``cupy-cuda12x``, ``cupy-cuda13x``, ...): more than one share the
    ``cupy`` module's files, and whichever was installed last wins."""
    from importlib import metadata

    names = sorted({d.metadata["Name"].lower() for d in metadata.distributions()
                    if (d.metadata["Name"] or "").lower().startswith("cupy")})
    if len(names) > 1:
        say(f"warning: {len(names)} CuPy packages are installed ({', '.join(names)}); they share one 'cupy' module: "
            "uninstall all but the one for this machine's CUDA")
    return names


def stream(command, env, timeout: float) -> tuple[int | None, str]:
    """Run ``command``, echoing its output as it comes; killed after ``timeout`` seconds (exit status
    ``None``). Returns the exit status and the output."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []

    def pump():
        for line in proc.stdout:
            lines.append(line)
            sys.stderr.write("  | " + line)
            sys.stderr.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    reader.join(timeout=5)
    return code, "".join(lines)


def run_tests(out: Path, timeout: float, stand_in: bool = False, files=GPU_TESTS, selection=GPU_SELECTION) -> dict:
    """The GPU tests (``files``, :data:`GPU_TESTS`) in a subprocess (with this checkout's src/ on the
    path, the stand-ins in place of the GPU backends where asked): counts, failures."""
    xml = out / "gpu-tests.xml"
    xml.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    if stand_in:
        env["XPNET_GPU_STAND_IN"] = "1"
    t0 = time.perf_counter()
    code, output = stream([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           *(str(ROOT / t) for t in files), "-k", selection, f"--junitxml={xml}"], env, timeout)
    result = {"files": list(files), "selection": selection, "exit_status": code,
              "seconds": round(time.perf_counter() - t0, 1), "tail": output[-3000:]}
    if code is None:
        result["timed_out"] = f"killed after {timeout:.0f} s"
    result.update(parse_junit(xml) if xml.exists() else {"passed": 0, "failed": 0, "skipped": 0, "failures": []})
    return result


def parse_junit(path: Path) -> dict:
    """Passed, failed and skipped counts and the failed tests' names from a JUnit XML report."""
    counts, failures = {"passed": 0, "failed": 0, "skipped": 0}, []
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
            failures.append(case.get("name"))
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return {**counts, "failures": failures}


def train_once(backend, data, epochs: int, n: int | None = None) -> dict:
    """The seeds' network trained on MNIST on ``backend`` (batch 64, lr 0.5; the first ``n`` training
    rows): accuracy and time."""
    xpnet = _xpnet()
    X, y, X_test, y_test = data.X, data.y, data.X_test, data.y_test
    net = xpnet.MLP("784-32-32-10", seed=0, backend=backend)
    history = net.fit(X[:n], y[:n], epochs=epochs, lr=0.5, batch_size=64, X_test=X_test, y_test=y_test, progress=False)
    return {"backend": str(backend), "epochs": epochs, "batch_size": 64, "lr": 0.5, "samples": len(y[:n]),
            "test_accuracy": history[-1]["test_accuracy"],
            "samples_per_second": [round(h["samples_per_second"]) for h in history]}


def plan(found, quick: bool, stand_in: bool) -> list[tuple]:
    """The timed cases ``(implementation, net, batch_size, models)``, the ones most worth having first:
    batch 64 of each implementation and its smallest stack, per-sample and its smallest stack, the larger
    stacks, then the larger batches and the large net."""
    suffix = "" if stand_in else "@cuda"
    names = {b.name for b in found}
    impls = [f"xpnet-{b.name}{suffix}" for b in found] + ([f"torch-eager{suffix}"] if "torch" in names else [])
    stackers = [f"xpnet-{b.name}{suffix}" for b in found]
    stackers += [f"{peer}{suffix}" for peer, lib in (("torch-func", "torch"), ("jax-vmap", "jax")) if lib in names]
    models = QUICK_MODELS if quick else MODELS
    cases = [case for b in (64, 1) for case in [(i, "small", b, None) for i in impls] +
             [(i, "small", b, models[1]) for i in stackers]]
    cases += [(i, "small", b, k) for k in models[2:] for b in (64, 1) for i in stackers]
    cases += [(i, "small", b, None) for b in (1024, "full") for i in impls]
    if not quick:
        cases += [(i, "large", b, None) for b in (1, 64, 1024, "full") for i in impls]
    return cases


def run_benchmarks(report: Report, found, quick: bool, stand_in: bool, rounds: int, target: float, data=None,
                   most: int | None = None) -> bool:
    """Every planned case that the budget leaves time for (the first ``most`` at most); each record goes
    into the report as it comes. Returns whether every case that ran succeeded."""
    _xpnet()
    from xpnet import bench, workers

    data = bench.load_training_set() if data is None else data
    results = report.data.setdefault("benchmarks", [])
    cases, ok, left_out = plan(found, quick, stand_in), True, []
    per_case = CASE_SECONDS["quick" if quick else "full"]
    if most is not None and most < len(cases):
        report.not_run(f"{len(cases) - most} of {len(cases)} timed cases ({', '.join(_named(c) for c in cases[most:])})",
                       f"--cases {most}")
    for impl, net, batch, models in cases[:most]:
        needs = COMPILED_SAMPLE_SECONDS if impl.startswith("xpnet-jax") and batch == 1 else per_case
        if report.left() < needs:  # a shorter case later may still fit
            left_out.append(_named((impl, net, batch, models)))
            continue
        base = {"implementation": impl, "net": net, "dtype": "float32", "batch_size": batch,
                **({"models": models} if models else {})}
        t0 = time.perf_counter()
        try:
            result = workers.measure_case(impl, net, "float32", batch, data, rounds, target, models,
                                          min_samples=QUICK_MIN_SAMPLES if quick else bench.MIN_SAMPLES,
                                          deadline=time.monotonic() + report.left())
        except Exception as exc:  # a failed case is recorded, and the next one runs
            result, ok = {**base, "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                          "traceback": traceback.format_exc()[-2000:]}, False
        result = {**base, **result, "seconds": round(time.perf_counter() - t0, 1)}
        results.append(result)
        shown = result.get("skipped") or result.get("error") or \
            f"{result['samples_per_second'] * (models or 1):,.0f} (model-)samples/s"
        say(f"{impl} {net} batch {batch}" + (f" K={models}" if models else "") + f": {shown}")
        report.write()
    if left_out:
        report.not_run(f"{len(left_out)} of {len(cases)} timed cases ({', '.join(left_out)})",
                       f"the budget of {report.budget:g} s left too little time (each needs {per_case:g} s, "
                       f"xpnet-jax per sample {COMPILED_SAMPLE_SECONDS:g} s)")
    return ok


def _named(case) -> str:
    impl, net, batch, models = case
    return f"{impl} {net} batch {batch}" + (f" K={models}" if models else "")


# -- the markdown ----------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    """The report's tables."""
    title = "GPU check on CPU stand-ins" if report.get("stand_in") else "GPU check"
    lines = [f"# {title}, {report.get('date', '')}", ""]
    if report.get("skipped"):
        lines += [f"**Skipped: {report['skipped']}**", ""]
        lines += [f"- {name}: {why}" for name, why in report.get("no_gpu", {}).items()]
        return "\n".join(lines) + "\n"
    if report.get("gpus"):
        lines += ["| backend | device | name | memory (GiB) | CUDA runtime | CUDA driver |", "|---|---|---|---|---|---|"]
        for g in report["gpus"]:
            lines.append(f"| {g['backend']} | {g['device']} | {g.get('name', '')} | {g.get('memory_gib', '')} | "
                         f"{g.get('cuda_runtime', '')} | {g.get('cuda_driver', '')} |")
        lines += [""]
    if report.get("versions"):
        lines += ["Library versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", ""]
    for name, why in report.get("no_gpu", {}).items():
        lines.append(f"- no GPU for {name}: {why}")
    tests = report.get("tests")
    if tests:
        selection = tests.get("selection", GPU_SELECTION)
        lines += ["", "## GPU tests (" + ", ".join(tests.get("files", GPU_TESTS)) + f", -k '{selection}')", "",
                  f"{tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped in {tests['seconds']} s"
                  + (f" ({tests['timed_out']})" if tests.get("timed_out") else "") + "."]
        lines += [f"- FAILED {name}" for name in tests["failures"]]
    if report.get("training"):
        lines += ["", "## Training the seeds' net on MNIST", "", "| backend | epochs | test accuracy | samples/s per epoch |",
                  "|---|---|---|---|"]
        for r in report["training"]:
            shown = r["error"] if "error" in r else f"{100 * r['test_accuracy']:.2f} %"
            lines.append(f"| {r['backend']} | {r.get('epochs', '')} | {shown} | "
                         f"{', '.join(f'{s:,}' for s in r.get('samples_per_second', []))} |")
    results = [r for r in report.get("benchmarks", []) if "samples_per_second" in r]
    if results:
        _xpnet()
        from xpnet import bench

        lines += ["", "## Throughput (median samples/s, GPU-synchronised)", ""]
        for net in bench.NETS:
            if any(r["net"] == net and not r.get("models") for r in results):
                lines += [f"**{net} net, float32** (× ratio to batch 1)", "", bench.markdown_table(results, net, "float32"), ""]
        if any(r.get("models") for r in results):
            lines += ["**stacks of the small net, float32**: model-samples/s (× ratio to one network)", "",
                      bench.models_table(results, "small", "float32"), ""]
    for r in report.get("benchmarks", []):
        if "samples_per_second" not in r:
            what = f"{r['implementation']} {r['net']} batch {r['batch_size']}" + (f" K={r['models']}" if r.get("models") else "")
            lines.append(f"- {'FAILED' if 'error' in r else 'skipped'} {what}: {r.get('error') or r.get('skipped')}")
    if report.get("not_run"):
        lines += ["", "## Not run", ""] + [f"- {n['what']}: {n['why']}" for n in report["not_run"]]
    if "seconds" in report:
        lines += ["", f"{report['seconds']} s of a {report.get('budget_seconds', '')} s budget."]
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path) -> list[Path]:
    """Both reports of ``report`` into ``out``, each replaced whole (a reader never sees half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "gpu-check.json", out / "gpu-check.md"]
    for path, text in zip(paths, (json.dumps(report, indent=1, default=str) + "\n", markdown(report))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return paths


# -- the command -----------------------------------------------------------------------------------
def main(argv=None, required=REQUIRED) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="where the two reports go")
    parser.add_argument("--quick", action="store_true", help="the small net, stacks to K = 256, 3 rounds, 1 epoch")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds the whole run may take (default 300)")
    parser.add_argument("--stand-in", action="store_true", help="PyTorch and JAX on the CPU in place of the GPU backends")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the GPU tests")
    parser.add_argument("--skip-bench", action="store_true", help="do not time anything")
    parser.add_argument("--cases", type=int, default=None, metavar="N",
                        help="time the first N planned cases at most (default: as many as the budget allows)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per case (default 5; 3 with --quick)")
    parser.add_argument("--target", type=float, default=None,
                        help="seconds per timed round (default 0.25; 0.1 with --quick)")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1 or args.target is not None and args.target <= 0 or args.budget <= 0 \
            or args.cases is not None and args.cases < 0:
        parser.error("--rounds must be at least 1, --cases at least 0, --target and --budget positive")
    lacking = missing(required)
    if lacking:
        say("missing Python packages: " + "; ".join(f"{m} ({how})" for m, how in lacking.items()))
        return 2
    report = Report(Path(args.out), args.budget, args.stand_in)
    info, found = probe(args.stand_in)
    report.data.update(info)
    if not found:
        report.data["skipped"] = "no CUDA GPU found for CuPy, PyTorch or JAX"
        paths = report.write()
        say(f"{report.data['skipped']}; " + "; ".join(report.data["no_gpu"].values()))
        print("\n".join(map(str, paths)))
        return 0
    say(f"{'stand-ins' if args.stand_in else 'GPU backends'}: {', '.join(str(b) for b in found)} "
        f"({report.data['device'].get('name', '')}); budget {args.budget:g} s")
    report.write()
    status = 0
    if args.skip_tests:
        report.not_run("the GPU tests", "--skip-tests")
    elif missing(FOR_TESTS):
        report.not_run("the GPU tests", "missing " + "; ".join(f"{m} ({h})" for m, h in missing(FOR_TESTS).items()))
    else:
        # On stand-ins --quick runs part of test_gpu.py only: the rest are the suite's own CPU cases there.
        files, selection = STAND_IN_QUICK if args.stand_in and args.quick else (GPU_TESTS, GPU_SELECTION)
        report.data["tests"] = tests = run_tests(report.out, max(10.0, 0.75 * report.left()), args.stand_in, files,
                                                 selection)
        status = 1 if tests["failed"] or tests["exit_status"] not in (0, 5) else 0
        say(f"tests: {tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped"
            + (f", {tests['timed_out']}" if tests.get("timed_out") else ""))
        report.write()
    _xpnet()
    from xpnet import bench, workers

    data = bench.load_training_set()
    report.data["training"] = []
    for backend in found:
        if report.left() < 10:
            report.not_run(f"training on {backend}", "the budget ran out")
            continue
        try:  # --quick on a stand-in: a fifth of the rows (a CPU takes seconds per epoch of MNIST)
            result = train_once(backend, data, epochs=1 if args.quick else 2,
                                n=12000 if args.quick and args.stand_in else None)
        except Exception as exc:
            result, status = {"backend": str(backend), "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}, 1
        report.data["training"].append(result)
        say(f"trained on {backend}: " + (result.get("error") or f"test accuracy {result['test_accuracy']:.4f}"))
        report.write()
    if args.skip_bench:
        report.not_run("the timed cases", "--skip-bench")
    elif not run_benchmarks(report, found, args.quick, args.stand_in, args.rounds or (3 if args.quick else 5),
                            args.target or (0.1 if args.quick else 0.25), data, args.cases):
        status = 1
    print("\n".join(map(str, report.write())))
    return status


if __name__ == "__main__":
    sys.exit(main())
