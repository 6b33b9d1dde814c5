"""Every plot renders to a non-empty PNG (Agg backend), and `xpnet plot` writes them all."""

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'xpnet[plot]')")

from xpnet import plot  # noqa: E402
from xpnet.cli import main  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 2000


def test_each_plot_function(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((30, 784))
    y = rng.integers(0, 10, 30)
    pred = (y + (rng.random(30) < 0.3)) % 10
    probs = rng.dirichlet(np.ones(10), 30)
    records = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.2 / e, "test_accuracy": 0.8 + e / 100} for e in (1, 2, 3)]
    classes = [str(c) for c in range(10)]
    paths = [
        plot.history(records, tmp_path / "h.png"),
        plot.misclassified(images, y, pred, classes, tmp_path / "m.png"),
        plot.weight_histograms([(rng.normal(size=(784, 32)), np.zeros(32)), (rng.normal(size=(32, 10)), np.zeros(10))], tmp_path / "w.png"),
        plot.probabilities(images, probs, y, classes, tmp_path / "p.png"),
        plot.confusion(np.diag(np.arange(10)) + 1, classes, tmp_path / "c.png"),
    ]
    assert all(_is_png(p) for p in paths)


def test_xpnet_plot_from_a_saved_run(tmp_path, capsys):
    weights = tmp_path / "w.npz"
    assert main(["train", "--digits", "3,9", "--layers", "784-8-1", "--loss", "logistic", "--lr", "0.1",
                 "--batch-size", "32", "--epochs", "2", "--save", str(weights), "--no-progress", "--json"]) == 0
    capsys.readouterr()
    assert main(["plot", "--weights", str(weights), "--out", str(tmp_path / "plots")]) == 0
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["confusion.png", "history.png", "misclassified.png", "probabilities.png", "weights.png"]
    assert all(_is_png(tmp_path / "plots" / n) for n in names)
