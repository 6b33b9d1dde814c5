"""benchmarks/gpu_check.py, the one GPU command, on a machine without a GPU: it says what it lacks, skips
with the reasons, and writes its reports; with ``--stand-in`` it runs everything on CPU stand-ins."""

import importlib.util
import json
import subprocess
import sys

import pytest

from helpers import ROOT
from xpnet.backends import gpu_backends


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_skips_with_the_reasons_and_writes_both_reports(gpu_check, tmp_path, capsys):
    if gpu_backends()[0]:
        pytest.skip("this machine has a CUDA GPU: the command would run for real")
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "no CUDA GPU found" in err and "cupy" in err and err.count("\n") == 1
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["skipped"] and set(report["no_gpu"]) == {"cupy", "torch", "jax"}
    assert "numpy" in report["versions"]
    assert "**Skipped: no CUDA GPU found" in (tmp_path / "gpu-check.md").read_text()


def test_missing_packages_are_named_with_how_to_get_them(gpu_check, tmp_path, capsys):
    assert gpu_check.missing({"numpy": "x", "xpnet_no_such_module": "carry its wheel"}) == {
        "xpnet_no_such_module": "carry its wheel"}
    code = gpu_check.main(["--out", str(tmp_path)], required={"xpnet_no_such_module": "pip install it"})
    err = capsys.readouterr().err
    assert code == 2 and "missing Python packages: xpnet_no_such_module (pip install it)" in err
    assert not (tmp_path / "gpu-check.json").exists()  # nothing was done


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--target", "-1"], ["--frobnicate"]])
def test_bad_arguments_exit_2(gpu_check, argv):
    with pytest.raises(SystemExit) as info:
        gpu_check.main(argv)
    assert info.value.code == 2


def test_the_markdown_report_has_every_table(gpu_check, tmp_path):
    (tmp_path / "t.xml").write_text(
        '<testsuites><testsuite><testcase name="a"/><testcase name="b"><failure message="x"/></testcase>'
        '<testcase name="c"><skipped/></testcase></testsuite></testsuites>')
    tests = gpu_check.parse_junit(tmp_path / "t.xml")
    assert tests == {"passed": 1, "failed": 1, "skipped": 1, "failures": ["b"]}
    bench = [{"implementation": "xpnet-cupy@cuda", "net": "small", "dtype": "float32", "batch_size": b,
              "samples_per_second": s, "min": s, "max": s} for b, s in ((1, 2000.0), (64, 128000.0))]
    bench += [{"implementation": "xpnet-cupy@cuda", "net": "small", "dtype": "float32", "batch_size": 1, "models": k,
               "samples_per_second": 2000.0, "min": 1, "max": 1} for k in (1, 64)]
    report = {"date": "today", "gpus": [{"backend": "cupy", "device": "cuda:0", "name": "NVIDIA H100", "memory_gib": 79.1,
                                         "cuda_runtime": "13.0", "cuda_driver": "13.0"}],
              "versions": {"cupy": "13.6"}, "no_gpu": {"jax": "no gpu"}, "tests": {**tests, "seconds": 3.0},
              "training": [{"backend": "cupy:cuda:0", "epochs": 2, "test_accuracy": 0.95, "samples_per_second": [1000, 2000]}],
              "benchmarks": bench}
    text = gpu_check.markdown(report)
    for expected in ("| cupy | cuda:0 | NVIDIA H100 | 79.1 | 13.0 | 13.0 |", "1 passed, 1 failed, 1 skipped",
                     "- FAILED b", "| cupy:cuda:0 | 2 | 95.00 % | 1,000, 2,000 |", "| xpnet-cupy@cuda | 2k | 128k (×64.0) |",
                     "| xpnet-cupy@cuda | 64 | 128k (×64.0) |", "- no GPU for jax: no gpu"):
        assert expected in text, expected
    json_path, md_path = gpu_check.write(report, tmp_path / "out")
    assert json.loads(json_path.read_text())["gpus"][0]["name"] == "NVIDIA H100" and md_path.read_text() == text


def test_the_whole_check_runs_on_cpu_stand_ins(gpu_check, tmp_path):
    """``--stand-in --quick``: the package probe, the GPU tests, an MNIST training per backend, timed
    cases and stacks, the reports -- the code that will run on a GPU, with PyTorch and JAX on the CPU.
    The first four timed cases (``--cases 4``) and a budget no stage reaches on a loaded machine: the
    budget's own rules are the next test's, on a clock of its own."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--stand-in", "--quick",
                           "--cases", "4", "--budget", "3600", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["stand_in"] and report["device"]["name"].startswith("CPU stand-in")
    tests = report["tests"]  # test_gpu.py's cases on the two stand-ins, but the per-sample ones (STAND_IN_QUICK)
    assert tests["failed"] == 0 and tests["passed"] >= 12 and tests["exit_status"] == 0 and "not b1" in tests["selection"]
    assert [r["backend"] for r in report["training"]] == ["torch:cpu", "jax:cpu:0"]
    # 1 epoch of 12,000 rows at batch 64 and lr 0.5 from the same initial weights: the same 73.59 % on both
    assert all(0.70 < r["test_accuracy"] < 0.78 for r in report["training"])
    assert report["training"][0]["test_accuracy"] == pytest.approx(report["training"][1]["test_accuracy"], abs=2e-3)
    timed = [r for r in report["benchmarks"] if "samples_per_second" in r]
    assert [(r["implementation"], r.get("models")) for r in timed] == [
        ("xpnet-torch", None), ("xpnet-jax", None), ("torch-eager", None), ("xpnet-torch", 16)]  # a stack ran
    for r in timed:
        assert {"implementation", "batch_size", "samples_per_second"} <= set(r) and r["samples_per_second"] > 0
    assert not [r for r in report["benchmarks"] if "error" in r]
    import xpnet

    every = len(gpu_check.plan([xpnet.get_backend("torch"), xpnet.get_backend("jax")], quick=True, stand_in=True))
    left = [n for n in report["not_run"] if f"of {every} timed cases" in n["what"]]  # what did not run is said
    assert len(left) == 1 and int(left[0]["what"].split()[0]) == every - 4 and left[0]["why"] == "--cases 4"
    text = (tmp_path / "gpu-check.md").read_text()
    assert "# GPU check on CPU stand-ins" in text and "| xpnet-torch |" in text



def test_a_failed_case_is_recorded_the_rest_run_and_the_budget_stops_the_cases(gpu_check, tmp_path, monkeypatch):
    import types

    from xpnet import bench, workers

    def measure(impl, net, dtype, batch, data, rounds, target, models, min_samples, deadline):
        assert min_samples == gpu_check.QUICK_MIN_SAMPLES and deadline <= report.t0 + report.budget  # no round past it
        if impl == "xpnet-torch" and batch == 64 and not models:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")
        return {"samples_per_second": 1000.0, "min": 1.0, "max": 1.0}

    monkeypatch.setattr(workers, "measure_case", measure)
    monkeypatch.setattr(bench, "load_training_set", lambda: None)
    found = [types.SimpleNamespace(name="torch"), types.SimpleNamespace(name="jax")]
    report = gpu_check.Report(tmp_path, budget=1000.0, stand_in=True)
    assert gpu_check.run_benchmarks(report, found, quick=True, stand_in=True, rounds=1, target=0.1) is False
    records = report.data["benchmarks"]
    assert len(records) == len(gpu_check.plan(found, True, True)) and not report.data["not_run"]
    assert records[0]["error"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert all("samples_per_second" in r for r in records[1:])
    saved = json.loads((tmp_path / "gpu-check.json").read_text())  # written as each case finished
    assert len(saved["benchmarks"]) == len(records) and "- FAILED xpnet-torch small batch 64" in (tmp_path / "gpu-check.md").read_text()

    late = gpu_check.Report(tmp_path / "late", budget=1.0, stand_in=True)  # less than any case needs
    assert gpu_check.run_benchmarks(late, found, quick=True, stand_in=True, rounds=1, target=0.1)
    assert late.data["benchmarks"] == [] and "the budget of 1 s" in late.data["not_run"][0]["why"]


def test_a_subprocess_that_hangs_is_killed_at_its_timeout_with_its_output_kept(gpu_check):
    import os

    code, output = gpu_check.stream([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"],
                                    dict(os.environ), timeout=2)
    assert code is None and output == "started\n"
