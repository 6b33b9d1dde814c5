"""Your own data on the command line (``--data FILE``): a .npz, a CSV file or a folder of IDX files, with
MNIST's scaling, digit selection and checks; its name and SHA-256 recorded, so that ``--resume`` and
``evaluate`` know it; every bad file one line, exit 2, before any work."""

import gzip
import json
import shutil

import numpy as np
import pytest

from xpnet.cli import main
from xpnet.datasets.idx import encode_idx

IRIS_RUN = ("--layers", "4-16-3", "--scale", "standardize", "--batch-size", "8", "--lr", "0.1", "--epochs", "30",
            "--no-progress")
NAMES = ["setosa", "versicolor", "virginica"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def iris():
    """scikit-learn's iris, shuffled once: 120 training rows and 30 test rows."""
    from sklearn.datasets import load_iris

    data = load_iris()
    order = np.random.default_rng(0).permutation(150)
    return data.data[order], data.target[order]


def write_csv(path, X, y, header=True, names=True, label_first=False):
    with open(path, "w") as f:
        if header:
            f.write(("species," if label_first else "") + "a,b,c,d" + ("" if label_first else ",species") + "\n")
        for row, label in zip(X, y):
            label = NAMES[label] if names else str(label)
            values = ",".join(map(str, row.tolist()))
            f.write(f"{label},{values}\n" if label_first else f"{values},{label}\n")
    return path


def test_a_npz_trains_to_iris_accuracy_and_records_its_name_and_sha256(capsys, tmp_path, iris):
    X, y = iris
    data = tmp_path / "iris.npz"
    np.savez(data, X=X[:120], y=y[:120], X_test=X[120:], y_test=y[120:], classes=np.array(NAMES))
    code, out, err = run(capsys, "train", "--data", data, *IRIS_RUN, "--json", "--save", tmp_path / "w.npz")
    result = json.loads(out)
    assert code == 0 and result["test_accuracy"] >= 0.9, (result["test_accuracy"], err)
    assert result["dataset"] == "iris.npz" and len(result["sha256"]) == 64
    assert result["run"]["data"]["file"] == str(data)
    import hashlib

    assert result["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    code, out, _ = run(capsys, "evaluate", "--weights", tmp_path / "w.npz", "--json")
    scored = json.loads(out)
    assert code == 0 and scored["n"] == 30 and scored["test_accuracy"] == result["test_accuracy"]


def test_the_same_rows_as_npz_csv_and_idx_folder_train_the_same_network(capsys, tmp_path):
    """Pixels 0..255 in three formats, scaled /255 (the default) as MNIST's: identical histories."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, size=(200, 16)).astype(np.uint8)
    y = ((X[:, :8].astype(int).sum(1) > X[:, 8:].astype(int).sum(1)) + 2 * (X[:, 0] > 128)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    write_csv(tmp_path / "d.csv", X, y, header=False, names=False, label_first=True)
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(X.reshape(200, 4, 4))))
    (folder / "train-labels-idx1-ubyte").write_bytes(encode_idx(y))
    histories = []
    for source in ("d.npz", "d.csv", "idx"):
        code, out, err = run(capsys, "train", "--data", tmp_path / source, "--layers", "16-8-4", "--epochs", "3",
                             "--lr", "0.5", "--batch-size", "4", "--json", "--no-progress")
        assert code == 0, err
        assert "has no test split: 40 of its 200 rows" in err and "held out as the test set, never trained on" in err
        histories.append([{k: v for k, v in r.items() if k not in ("samples_per_second", "seconds")} for r in json.loads(out)["history"]])
    assert histories[0] == histories[1] == histories[2]
    assert histories[0][-1]["test_loss"] < histories[0][0]["test_loss"]


@pytest.mark.parametrize("layout", ["header, names last", "no header, names last", "header, numbers first"])
def test_a_csv_finds_its_label_column_and_class_names(capsys, tmp_path, iris, layout):
    X, y = iris
    path = write_csv(tmp_path / "iris.csv", X, y, header=layout.startswith("header"), names="names" in layout,
                     label_first="first" in layout)
    code, out, err = run(capsys, "train", "--data", path, *IRIS_RUN, "--save", tmp_path / "w.npz")
    assert code == 0 and float(out.split("test accuracy ")[-1].split("%")[0]) >= 90, out + err
    code, out, _ = run(capsys, "evaluate", "--weights", tmp_path / "w.npz", "--json")
    assert code == 0 and json.loads(out)["n"] == 30  # the held-out fifth of each class, as in training


def test_digits_select_two_classes_of_ones_own_data(capsys, tmp_path, iris):
    X, y = iris
    np.savez(tmp_path / "iris.npz", X=X, y=y)
    code, out, err = run(capsys, "train", "--data", tmp_path / "iris.npz", "--digits", "1,2", "--layers", "4-8-1",
                         "--loss", "logistic", "--scale", "standardize", "--batch-size", "4", "--lr", "0.3",
                         "--epochs", "20", "--json", "--no-progress")
    result = json.loads(out)
    assert code == 0 and result["test_accuracy"] > 0.85 and result["digits"] == "1,2"


def test_resume_and_evaluate_know_the_data_by_its_sha256(capsys, tmp_path, iris):
    X, y = iris
    data, weights = tmp_path / "iris.npz", tmp_path / "w.npz"
    np.savez(data, X=X[:120], y=y[:120], X_test=X[120:], y_test=y[120:])
    common = ("--layers", "4-16-3", "--scale", "standardize", "--no-progress", "--save", weights)
    assert run(capsys, "train", "--data", data, *common, "--epochs", "2", "--checkpoint-every", "1")[0] == 0
    saved = weights.read_bytes()
    changed = tmp_path / "changed.npz"
    X2 = X.copy()
    X2[0, 0] += 0.1
    np.savez(changed, X=X2[:120], y=y[:120], X_test=X2[120:], y_test=y[120:])
    code, _, err = run(capsys, "train", "--data", changed, *common, "--epochs", "4", "--resume")
    assert code == 2 and "not a checkpoint of this run" in err and "sha256" in err and len(err.splitlines()) == 1
    assert weights.read_bytes() == saved
    assert run(capsys, "train", "--data", data, *common, "--epochs", "3", "--resume")[0] == 0

    shutil.move(data, tmp_path / "moved.npz")  # evaluate reads the recorded file: gone
    code, _, err = run(capsys, "evaluate", "--weights", weights)
    assert code == 2 and f"--data {data}: no such file" in err
    np.savez(data, X=X2[:120], y=y[:120], X_test=X2[120:], y_test=y[120:])  # back, but other data
    code, _, err = run(capsys, "evaluate", "--weights", weights)
    assert code == 2 and "not the data this run was made with" in err
    code, out, _ = run(capsys, "evaluate", "--weights", weights, "--data", tmp_path / "moved.npz", "--json")
    assert code == 0 and json.loads(out)["dataset"] == "moved.npz"


def test_a_sweep_records_the_data_and_refuses_another_on_resume(capsys, tmp_path, iris):
    X, y = iris
    np.savez(tmp_path / "a.npz", X=X, y=y)
    np.savez(tmp_path / "b.npz", X=X[::-1], y=y[::-1])
    grid = ("--layers", "4-8-3", "--scale", "standardize", "--lr", "0.1,0.3", "--batch-size", "8", "--epochs", "2",
            "--out", tmp_path / "s.jsonl", "--no-progress")
    assert run(capsys, "sweep", "--data", tmp_path / "a.npz", *grid)[0] == 0
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert {r["dataset"] for r in records} == {"a.npz"} and len({r["sha256"] for r in records}) == 1
    assert "file" not in records[0]  # where the file lies is not what the run is
    code, _, err = run(capsys, "sweep", "--data", tmp_path / "b.npz", *grid, "--resume")
    assert code == 2 and "s.jsonl, line 1: a configuration of another sweep" in err and "sha256" in err


def test_pixel_scaling_is_refused_for_features_that_are_not_pixels(capsys, tmp_path, iris):
    np.savez(tmp_path / "iris.npz", X=iris[0], y=iris[1])
    code, _, err = run(capsys, "train", "--data", tmp_path / "iris.npz", "--layers", "4-8-3", "--scale", "255")
    assert code == 2 and "not pixel values 0..255" in err and "give --scale auto (the default)" in err


def _npz(**arrays):
    def write(path):
        np.savez(path, **arrays)
    return write


def _text(text):
    def write(path):
        path.write_text(text)
    return write


GOOD_X, GOOD_Y = np.arange(12.0).reshape(4, 3), np.array([0, 1, 2, 1])
BAD_FILES = {
    "missing file": ("x.npz", None, "no such file or folder"),
    "unknown format": ("x.json", _text("{}"), "not a .npz, .csv or folder of IDX files"),
    "npz not a zip": ("x.npz", _text("PK? no"), "not a .npz file"),
    "npz without y": ("x.npz", _npz(X=GOOD_X), "no array y"),
    "npz X_test alone": ("x.npz", _npz(X=GOOD_X, y=GOOD_Y, X_test=GOOD_X), "X_test and y_test come together"),
    "npz 1-D X": ("x.npz", _npz(X=np.arange(4.0), y=GOOD_Y), "must be a table of rows and features"),
    "npz rows differ": ("x.npz", _npz(X=GOOD_X, y=GOOD_Y[:3]), "one label per row"),
    "npz NaN": ("x.npz", _npz(X=np.where(GOOD_X == 7, np.nan, GOOD_X), y=GOOD_Y), "row 2 feature 1 is nan"),
    "npz inf in test": ("x.npz", _npz(X=GOOD_X, y=GOOD_Y, X_test=np.full((2, 3), np.inf), y_test=GOOD_Y[:2]),
                        "X_test row 0 feature 0 is inf"),
    "npz text features": ("x.npz", _npz(X=GOOD_X.astype(str), y=GOOD_Y), "X must hold numbers"),
    "npz fractional labels": ("x.npz", _npz(X=GOOD_X, y=GOOD_Y + 0.5), "whole-number labels"),
    "npz negative label": ("x.npz", _npz(X=GOOD_X, y=GOOD_Y - 1), "negative label -1"),
    "npz one class": ("x.npz", _npz(X=GOOD_X, y=0 * GOOD_Y), "needs two classes"),
    "npz features differ": ("x.npz", _npz(X=GOOD_X, y=GOOD_Y, X_test=GOOD_X[:, :2], y_test=GOOD_Y),
                            "X_test has 2 features, X has 3"),
    "npz Keras' names without y_train": ("x.npz", _npz(x_train=GOOD_X, x_test=GOOD_X, y_test=GOOD_Y), "no array y"),
    "npz images of two sizes": ("x.npz", _npz(x_train=np.zeros((4, 3, 3)), y_train=GOOD_Y, x_test=np.zeros((4, 2, 2)),
                                              y_test=GOOD_Y), "X_test holds rows of shape (2, 2), X of (3, 3)"),
    "npz names and numbers": ("x.npz", _npz(X=GOOD_X, y=np.array(list("abab")), X_test=GOOD_X, y_test=GOOD_Y),
                              "both hold names or both numbers"),
    "npz a name not in classes": ("x.npz", _npz(X=GOOD_X, y=np.array(list("abac")), classes=np.array(["a", "b"])),
                                  "label 'c', which classes does not name"),
    "npz too few names": ("x.npz", _npz(X=GOOD_X, y=GOOD_Y, classes=np.array(["a", "b"])), "2 class names"),
    "csv empty": ("x.csv", _text(""), "empty"),
    "csv ragged": ("x.csv", _text("0,1,2\n1,2\n"), "x.csv"),
    "csv text feature": ("x.csv", _text("0,1,2\n1,two,3\n"), "could not convert"),
    "csv nan": ("x.csv", _text("0,1,2\n1,nan,3\n"), "row 1 feature 0 is nan"),
    "csv one column": ("x.csv", _text("0\n1\n"), "one column"),
    "idx folder without labels": ("idx", lambda p: p.mkdir(), "a folder needs train-images-idx3-ubyte"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("command", ["train", "sweep", "evaluate"])
def test_every_bad_file_is_one_line_exit_2_before_any_work(capsys, tmp_path, kind, command):
    name, write, message = BAD_FILES[kind]
    path = tmp_path / name
    if write:
        write(path)
    argv = {"train": ["train", "--layers", "3-4-3", "--scale", "none", "--save", tmp_path / "w.npz"],
            "sweep": ["sweep", "--layers", "3-4-3", "--scale", "none", "--lr", "0.1,0.2", "--out", tmp_path / "s.jsonl"],
            "evaluate": ["evaluate", "--weights", _weights(tmp_path)]}[command]
    code, out, err = run(capsys, *argv, "--data", path)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "w.npz").exists() and not (tmp_path / "s.jsonl").exists()


def _weights(folder):
    from xpnet import MLP

    path = folder / "net.npz"
    MLP("3-4-3", seed=0).save(path)
    return path
