"""benchmarks/gpu_check.py, the one GPU command, on a machine without a GPU: it says what it lacks, skips
with the reasons, and writes its reports."""

import importlib.util
import json

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
