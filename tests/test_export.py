"""ONNX export: xpnet's own forward kernels traced on ndonnx, run in onnxruntime on real test images, give
xpnet's probabilities and labels; bad input is one line."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("ndonnx", reason="ndonnx is not installed (pip install 'xpnet[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'xpnet[onnx]')")

import xpnet  # noqa: E402
from xpnet import export  # noqa: E402
from xpnet import functions as F  # noqa: E402
from xpnet.cli import main  # noqa: E402
from xpnet.errors import BackendError, ValidationError  # noqa: E402

from helpers import random_biases  # noqa: E402


@pytest.mark.parametrize("loss,output", [(h.loss, h.output) for h in F.HEADS.values()])
@pytest.mark.parametrize("activation", list(F.ACTIVATIONS))
def test_onnxruntime_gives_xpnets_probabilities_and_labels(tmp_path, mnist, activation, loss, output):
    _, _, X_test, _ = mnist
    n_out = 1 if loss == "logistic" else 10
    net = random_biases(xpnet.MLP([784, 24, 16, n_out], activation=activation, loss=loss, output=output,
                                  init="xavier", seed=1))
    proto = net.to_onnx(tmp_path / "m.onnx")
    assert export.opset(proto) >= 13
    result = export.check(net, tmp_path / "m.onnx", X_test, batch_sizes=(1, 1000))
    assert result["labels_equal"] and max(result["max_abs_diff"].values()) <= 1e-5, result
    exported = export.Exported(tmp_path / "m.onnx")
    assert exported.metadata["activations"] == [activation, activation]
    assert exported.probabilities(X_test[:7]).shape == (7, n_out) and exported.labels(X_test[:7]).dtype == np.int64


def test_cli_export_check_and_evaluate_agree_with_xpnet(tmp_path, capsys):
    weights, onnx = tmp_path / "w.npz", tmp_path / "w.onnx"
    assert main(["train", "--digits", "3,9", "--layers", "784-16-1", "--loss", "logistic", "--activation", "relu",
                 "--init", "he", "--lr", "0.1", "--batch-size", "64", "--epochs", "1", "--save", str(weights),
                 "--no-progress", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["export", "--weights", str(weights), "--onnx", str(onnx), "--check", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["check"]["passed"] and info["outputs"] == ["probabilities", "label"] and info["input"] == "input"
    assert main(["evaluate", "--onnx", str(onnx), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["test_accuracy"] == trained["test_accuracy"] and scored["n"] == 2019  # the 3s and 9s, as saved
    assert main(["export", "--weights", str(weights), "--onnx", str(tmp_path / "p.onnx"), "--no-label", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == ["probabilities"]
    assert main(["evaluate", "--onnx", str(tmp_path / "p.onnx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == trained["test_accuracy"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["export", "--weights", "{tmp}/junk.npz", "--onnx", "{tmp}/m.onnx"], "not a readable xpnet weights file"),
        (["export", "--weights", "{tmp}/w.npz", "--onnx", "/proc/xpnet-nowhere/m.onnx"], "--onnx /proc/xpnet-nowhere/m.onnx cannot be written"),
        (["export", "--weights", "{tmp}/w.npz", "--onnx", "{tmp}"], "is a directory"),
        (["evaluate", "--onnx", "{tmp}/junk.npz"], "not a loadable ONNX model"),
        (["evaluate", "--onnx", "{tmp}/missing.onnx"], "no such ONNX file"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    xpnet.MLP("784-10").save(tmp_path / "w.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_missing_extra_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ndonnx", None)  # `import ndonnx` fails
    with pytest.raises(BackendError, match=r"needs the 'ndonnx' package.*pip install 'xpnet\[onnx\]'"):
        xpnet.MLP("4-3").to_onnx(tmp_path / "m.onnx")


def test_ndonnx_arrays_run_the_forward_pass_but_do_not_train():
    net = xpnet.MLP("4-3", backend="ndonnx")
    with pytest.raises(ValidationError, match="cannot train"):
        net.fit(np.zeros((4, 4)), np.zeros(4, dtype=int))
    with pytest.raises(BackendError, match="holds no values to read back"):
        net.predict(np.zeros((2, 4)))
