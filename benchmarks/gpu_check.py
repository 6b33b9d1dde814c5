"""Check and measure everything GPU in one command, on any machine with a CUDA GPU and this repository.

    python3 benchmarks/gpu_check.py [--out benchmarks/results] [--quick] [--skip-tests] [--skip-bench]

1. Says exactly which Python packages it lacks (and how to get them) before doing anything else.
2. Finds the backends that have a CUDA GPU here (CuPy, PyTorch on CUDA, JAX on a GPU) and describes the
   device: name, memory, CUDA runtime and driver versions, library versions.
3. Runs the GPU tests (the ``@cuda``/``@gpu`` cases of the test suite: every GPU backend against NumPy,
   float64 to 1e-10 and float32 to 1e-4, per-sample and minibatch; stacks against each network alone; the
   gradient check; see :data:`GPU_TESTS`).
4. Trains the seeds' network on MNIST once per GPU backend (batch 64, lr 0.5, 2 epochs) and reports its
   test accuracy.
5. Times the benchmark suite's CUDA cases with GPU-synchronised timing: xpnet on every GPU backend and
   PyTorch eager at batch 1, 64, 1024 and the full batch (small net, float32; the large net too without
   ``--quick``), and stacks of K = 1, 4, 16, 64, 256, 1024 networks at batch 1 and 64.
6. Writes ``gpu-check.json`` (everything, every round) and ``gpu-check.md`` (tables) into ``--out``.

Without a CUDA GPU it says why for each library, writes a report that says "skipped", and exits 0. Exit
status 2: a required package is missing or an argument is wrong; 1: a GPU test failed.
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
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: module -> what to install when it is missing
REQUIRED = {
    "numpy": "numpy>=1.24",
    "array_api_compat": "array-api-compat>=1.11 (pure Python: carry its wheel)",
    "pytest": "pytest>=7",
}
#: module -> what provides a GPU backend
GPU_LIBRARIES = {
    "cupy": "CuPy: pip install 'xpnet[cuda13]' (cupy-cuda13x) or 'xpnet[cuda12]' (cupy-cuda12x)",
    "torch": "PyTorch built with CUDA",
    "jax": "JAX with CUDA: pip install 'jax[cuda13]'",
}
BATCH_SIZES = (1, 64, 1024, "full")
#: The test files with GPU cases, and the pytest ``-k`` expression that picks them (the ``backend``
#: fixture's GPU ids, and test_gpu.py's tests).
GPU_TESTS = ("tests/test_gpu.py", "tests/test_backends.py", "tests/test_stack.py")
GPU_SELECTION = "cuda or gpu"
MODELS = (1, 4, 16, 64, 256, 1024)


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


def probe() -> dict:
    """The machine, the library versions, the backends with a GPU and the reasons of the others."""
    _xpnet()
    from xpnet import backends

    found, reasons = backends.gpu_backends()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count()},
        "versions": backends.library_versions(),
        "gpus": [b.describe() for b in found],
        "no_gpu": reasons,
        "missing_gpu_libraries": missing(GPU_LIBRARIES),
    }, found


def run_tests(out: Path) -> dict:
    """The GPU tests (:data:`GPU_TESTS`) in a subprocess (with this checkout's src/ on the path): counts,
    failures."""
    xml = out / "gpu-tests.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           *(str(ROOT / t) for t in GPU_TESTS), "-k", GPU_SELECTION, f"--junitxml={xml}"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    result = {"exit_status": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
              "tail": proc.stdout[-3000:] + proc.stderr[-2000:]}
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


def train_runs(found, epochs=2) -> list[dict]:
    """The seeds' network trained on MNIST once per GPU backend (batch 64, lr 0.5): accuracy and time."""
    xpnet = _xpnet()
    from xpnet import datasets

    X, y, X_test, y_test = datasets.prepare(datasets.load_mnist(), dtype="float32")
    runs = []
    for backend in found:
        net = xpnet.MLP("784-32-32-10", seed=0, backend=backend)
        history = net.fit(X, y, epochs=epochs, lr=0.5, batch_size=64, X_test=X_test, y_test=y_test, progress=False)
        runs.append({"backend": str(backend), "epochs": epochs, "batch_size": 64, "lr": 0.5,
                     "test_accuracy": history[-1]["test_accuracy"],
                     "samples_per_second": [round(h["samples_per_second"]) for h in history]})
    return runs


def benchmarks(found, quick=False, rounds=5, target=0.25, on_result=None) -> list[dict]:
    """The suite's CUDA cases (see the module's description), GPU-synchronised."""
    _xpnet()
    from xpnet import bench

    impls = [f"xpnet-{b.name}@cuda" for b in found] + (["torch-eager@cuda"] if any(b.name == "torch" for b in found) else [])
    nets = ["small"] if quick else ["small", "large"]
    data = bench.load_training_set()
    cases = [(net, "float32", batch, None) for net in nets for batch in BATCH_SIZES]
    results = bench.run_suite(impls, cases, data, rounds=rounds, target=target, on_result=on_result)
    stacked = [i for i in impls if i.startswith("xpnet-")]
    stacked += [f"{p}@cuda" for p, b in (("torch-func", "torch"), ("jax-vmap", "jax")) if any(g.name == b for g in found)]
    models = MODELS[:4] if quick else MODELS
    cases = [("small", "float32", batch, k) for batch in (1, 64) for k in models]
    results += bench.run_suite(stacked, cases, data, rounds=rounds, target=target, on_result=on_result)
    return results


def markdown(report: dict) -> str:
    """The report's tables."""
    lines = [f"# GPU check, {report['date']}", ""]
    if report.get("skipped"):
        lines += [f"**Skipped: {report['skipped']}**", ""]
        lines += [f"- {name}: {why}" for name, why in report["no_gpu"].items()]
        return "\n".join(lines) + "\n"
    lines += ["| backend | device | name | memory (GiB) | CUDA runtime | CUDA driver |", "|---|---|---|---|---|---|"]
    for g in report["gpus"]:
        lines.append(f"| {g['backend']} | {g['device']} | {g.get('name', '')} | {g.get('memory_gib', '')} | "
                     f"{g.get('cuda_runtime', '')} | {g.get('cuda_driver', '')} |")
    lines += ["", "Library versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", ""]
    for name, why in report["no_gpu"].items():
        lines.append(f"- no GPU for {name}: {why}")
    tests = report.get("tests")
    if tests:
        lines += ["", "## GPU tests (" + ", ".join(GPU_TESTS) + f", -k '{GPU_SELECTION}')", "",
                  f"{tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped in {tests['seconds']} s."]
        lines += [f"- FAILED {name}" for name in tests["failures"]]
    if report.get("training"):
        lines += ["", "## Training the seeds' net on MNIST", "", "| backend | epochs | test accuracy | samples/s per epoch |",
                  "|---|---|---|---|"]
        for r in report["training"]:
            lines.append(f"| {r['backend']} | {r['epochs']} | {100 * r['test_accuracy']:.2f} % | "
                         f"{', '.join(f'{s:,}' for s in r['samples_per_second'])} |")
    if report.get("benchmarks"):
        _xpnet()
        from xpnet import bench

        results = report["benchmarks"]
        lines += ["", "## Throughput (median samples/s, GPU-synchronised)", ""]
        for net in bench.NETS:
            if any(r["net"] == net and not r.get("models") for r in results):
                lines += [f"**{net} net, float32** (× ratio to batch 1)", "", bench.markdown_table(results, net, "float32"), ""]
        if any(r.get("models") for r in results):
            lines += ["**stacks of the small net, float32**: model-samples/s (× ratio to one network)", "",
                      bench.models_table(results, "small", "float32"), ""]
        skipped = [r for r in results if "skipped" in r]
        lines += [f"- skipped {r['implementation']} batch {r['batch_size']}: {r['skipped']}" for r in skipped]
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "gpu-check.json", out / "gpu-check.md"]
    paths[0].write_text(json.dumps(report, indent=1, default=str) + "\n")
    paths[1].write_text(markdown(report))
    return paths


def main(argv=None, required=REQUIRED) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="where the two reports go")
    parser.add_argument("--quick", action="store_true", help="small net only, stacks up to K = 64, 3 rounds")
    parser.add_argument("--skip-tests", action="store_true", help="do not run tests/test_gpu.py")
    parser.add_argument("--skip-bench", action="store_true", help="do not time anything")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per case (default 5; 3 with --quick)")
    parser.add_argument("--target", type=float, default=0.25, help="seconds per timed round (default 0.25)")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1 or args.target <= 0:
        parser.error("--rounds must be at least 1 and --target positive")
    lacking = missing(required)
    if lacking:
        print("gpu_check: missing Python packages: " + "; ".join(f"{m} ({how})" for m, how in lacking.items()),
              file=sys.stderr)
        return 2
    out = Path(args.out)
    report, found = probe()
    if not found:
        report["skipped"] = "no CUDA GPU found for CuPy, PyTorch or JAX"
        paths = write(report, out)
        print(f"gpu_check: {report['skipped']}; " + "; ".join(report["no_gpu"].values()), file=sys.stderr)
        print("\n".join(map(str, paths)))
        return 0
    print(f"gpu_check: GPU backends: {', '.join(str(b) for b in found)} ({report['gpus'][0].get('name', '')})",
          file=sys.stderr, flush=True)
    status = 0
    if not args.skip_tests:
        report["tests"] = run_tests(out.mkdir(parents=True, exist_ok=True) or out)
        status = 1 if report["tests"]["failed"] or report["tests"]["exit_status"] not in (0, 5) else 0
        print(f"gpu_check: tests: {report['tests']['passed']} passed, {report['tests']['failed']} failed", file=sys.stderr)
    report["training"] = train_runs(found)
    if not args.skip_bench:
        def show(r):
            what = f"{r['implementation']} {r['net']} batch {r['batch_size']}" + (f" K={r['models']}" if r.get("models") else "")
            shown = r.get("skipped") or f"{r['samples_per_second'] * (r.get('models') or 1):,.0f} (model-)samples/s"
            print(f"gpu_check: {what}: {shown}", file=sys.stderr, flush=True)

        report["benchmarks"] = benchmarks(found, args.quick, args.rounds or (3 if args.quick else 5), args.target, show)
    print("\n".join(map(str, write(report, out))))
    return status


if __name__ == "__main__":
    sys.exit(main())
