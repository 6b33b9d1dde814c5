"""Your own data the way a newcomer brings it: `xpnet train --data FILE` and no other option trains (the
scaling, the layer ends and the epochs chosen from the data), scores on rows it never trained on, and its
evaluation and plots show what the data is; a mistyped name gets the nearest one suggested."""

import json

import numpy as np
import pytest

from xpnet import datasets, spec
from xpnet.cli import main

from test_own_data import NAMES, run, write_csv


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, data.target


def five_features(n=300, seed=0):
    """Three classes in 5 real-valued features of very different scales (none of them pixels)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = rng.normal(0, 3, (3, 5))
    X = (centres[y] + rng.normal(0, 1.5, (n, 5))) * [1, 10, 0.1, 100, 1] + [0, 500, -3, 1e4, 7]
    return X, y


def test_own_npz_and_csv_train_with_no_option_at_all(capsys, tmp_path, iris):
    X, y = five_features()
    np.savez(tmp_path / "five.npz", X=X, y=y)
    write_csv(tmp_path / "iris.csv", *iris)
    for path, features, rows in ((tmp_path / "five.npz", 5, 300), (tmp_path / "iris.csv", 4, 150)):
        code, out, err = run(capsys, "train", "--data", path, "--json", "--no-progress")
        assert code == 0, err
        result = json.loads(out)
        held = 60 if rows == 300 else 30
        assert result["layers"] == f"{features}-32-32-3" and result["epochs"] == min(200, -(-180_000 // (rows - held)))
        assert result["input_scaling"]["chose"] == "standardize each feature" and result["scaling"] == "auto"
        assert len(result["held_out_rows"]) == held and result["test_accuracy"] > 0.8, (path, result["test_accuracy"])
        assert err.count("standardized with the training rows' mean") == 1 and err.count("held out as the test set") == 1


def test_keras_and_scikit_learn_named_npz_files_and_a_csv_labelled_last_train_with_no_option(capsys, tmp_path, iris):
    """The files a newcomer has at hand: Keras' layout (x_train as images of rows x height x width, with
    x_test), scikit-learn's names (data, target, target_names), a CSV without a header whose labels are its
    last column (and one whose labels are its first, as MNIST's CSV files), labels given as names."""
    pytest.importorskip("matplotlib")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, y = (digits.images * 16).clip(0, 255).astype(np.uint8), digits.target  # 8x8 pixels 0..255
    np.savez(tmp_path / "keras.npz", x_train=images[:1400], y_train=y[:1400], x_test=images[1400:], y_test=y[1400:])
    X, labels = iris
    np.savez(tmp_path / "sklearn.npz", data=X, target=labels, target_names=np.array(NAMES))
    np.savez(tmp_path / "names.npz", X=X, y=np.array(NAMES)[labels])  # labels as names, numbered sorted
    write_csv(tmp_path / "last.csv", X, labels, header=False, names=False)
    write_csv(tmp_path / "first.csv", X, labels, header=False, names=False, label_first=True)
    for name, layers, test_rows, said, better in (("keras.npz", "64-32-32-10", 397, None, 0.5),  # chance: 0.1
                                                  ("sklearn.npz", "4-32-32-3", 30, None, 0.8),
                                                  ("names.npz", "4-32-32-3", 30, None, 0.8),
                                                  ("last.csv", "4-32-32-3", 30, "the labels are its last column", 0.8),
                                                  ("first.csv", "4-32-32-3", 30, "the labels are its first column",
                                                   0.8)):
        weights = tmp_path / f"{name}.w.npz"
        epochs = ["--epochs", "30"] if name == "keras.npz" else []  # iris: its own default, 200
        code, out, err = run(capsys, "train", "--data", tmp_path / name, *epochs, "--save", weights, "--json",
                             "--no-progress")
        assert code == 0, err
        result = json.loads(out)
        assert result["layers"] == layers and result["test_accuracy"] > better, (name, result["test_accuracy"])
        assert (said is None and "labels are its" not in err) or err.count(said) == 1, err
        code, out, _ = run(capsys, "evaluate", "--weights", weights, "--json")
        assert code == 0 and sum(map(sum, json.loads(out)["confusion"])) == test_rows
    for name in ("sklearn.npz", "names.npz"):  # target_names, or the names themselves, are the class names
        code, out, _ = run(capsys, "evaluate", "--weights", tmp_path / f"{name}.w.npz")
        assert code == 0 and out.splitlines()[-1].split()[0] == "virginica"
    plots = tmp_path / "plots"
    code, _, err = run(capsys, "plot", "--weights", tmp_path / "keras.npz.w.npz", "--out", plots)
    assert code == 0 and (plots / "misclassified.png").exists() and not (plots / "misclassified.csv").exists(), err


def test_the_held_out_rows_are_the_test_set_stratified_seeded_and_never_trained_on(tmp_path, iris):
    X, y = iris
    np.savez(tmp_path / "iris.npz", X=X, y=y)
    data = spec.Data(file=str(tmp_path / "iris.npz"), scaling="none")
    arrays = spec.load_data(data)
    held = np.array(arrays.held_out)
    train = np.setdiff1d(np.arange(150), held)
    np.testing.assert_array_equal(arrays.X_test, X[held])  # the test rows are exactly the held-out ones
    np.testing.assert_array_equal(arrays.X, X[train])  # and the training rows all the others
    assert np.bincount(y[held]).tolist() == [10, 10, 10]  # a fifth of each class
    other = spec.load_data(spec.Data(file=str(tmp_path / "iris.npz"), scaling="none", split_seed=1))
    assert sorted(other.held_out) != sorted(held.tolist())  # chosen by the split seed
    # --validation holds its rows out of the training rows, never out of the test rows
    validated = spec.load_data(spec.Data(file=str(tmp_path / "iris.npz"), scaling="none", validation=0.25))
    assert validated.held_out == arrays.held_out and len(validated.y) + len(validated.validation[1]) == 120
    # a file with its own test split keeps it
    np.savez(tmp_path / "split.npz", X=X[:100], y=y[:100], X_test=X[100:], y_test=y[100:])
    assert spec.load_data(spec.Data(file=str(tmp_path / "split.npz"))).held_out is None


def test_auto_scaling_is_recorded_and_applied_again_to_other_data(capsys, tmp_path):
    X, y = five_features()
    np.savez(tmp_path / "five.npz", X=X, y=y)
    weights = tmp_path / "w.npz"
    code, out, _ = run(capsys, "train", "--data", tmp_path / "five.npz", "--epochs", "5", "--save", weights, "--json",
                       "--no-progress")
    trained = json.loads(out)
    held = np.array(trained["held_out_rows"])
    rest = np.setdiff1d(np.arange(len(y)), held)
    numbers = trained["input_scaling"]
    np.testing.assert_allclose(numbers["mean"], X[rest].mean(axis=0))  # the training rows' own, not the test rows'
    np.testing.assert_allclose(numbers["std"], X[rest].std(axis=0))
    # evaluated on another file holding the same test rows (and other training rows), the scaling is the
    # recorded one: the same accuracy as at the end of training
    np.savez(tmp_path / "other.npz", X=X[:10] * 3, y=y[:10], X_test=X[held], y_test=y[held])
    code, out, _ = run(capsys, "evaluate", "--weights", weights, "--data", tmp_path / "other.npz", "--json")
    assert code == 0 and json.loads(out)["test_accuracy"] == trained["test_accuracy"]


def test_pixels_are_divided_by_255_and_mnist_runs_as_before():
    rng = np.random.default_rng(0)
    pixels = datasets.Dataset("p", rng.integers(0, 256, (20, 64)).astype(np.float64), np.zeros(20), None, None, [], "")
    pixels.X_test = pixels.X_train
    assert datasets.choose_scaling(pixels) == {"method": "auto", "chose": "255"}
    assert spec.Data().scaling == "255" and spec.Data(dataset="fashion-mnist").scaling == "255"


def test_the_layer_ends_come_from_the_data_and_a_contradiction_is_one_line(capsys, tmp_path, iris):
    write_csv(tmp_path / "iris.csv", *iris)
    for argv, layers in ((["--hidden", "8"], "4-8-3"), (["--layers", "in-8-4-out"], "4-8-4-3"),
                         (["--hidden", "", "--loss", "logistic", "--digits", "0,1"], "4-1")):
        code, out, err = run(capsys, "train", "--data", tmp_path / "iris.csv", *argv, "--epochs", "1", "--json",
                             "--no-progress")
        assert code == 0 and json.loads(out)["layers"] == layers, err
    for argv, message in ((["--layers", "5-8-3"], "--layers must start with the input size 4; got 5"),
                          (["--layers", "in-8"], "leave both ends to the data"),
                          (["--hidden", "8", "--layers", "4-8-3"], "give --hidden (the hidden layers")):
        code, out, err = run(capsys, "train", "--data", tmp_path / "iris.csv", *argv)
        assert code == 2 and message in err and err.count("\n") == 1 and out == ""
    code, out, err = run(capsys, "sweep", "--data", tmp_path / "iris.csv", "--hidden", "4,8-8", "--epochs", "1",
                         "--json", "--no-progress")
    assert code == 0 and sorted(json.loads(line)["layers"] for line in out.splitlines()) == ["4-4-3", "4-8-8-3"]


def test_evaluate_and_plot_show_the_class_names_and_no_image_of_a_table(capsys, tmp_path, iris):
    pytest.importorskip("matplotlib")
    write_csv(tmp_path / "iris.csv", *iris)
    weights, plots = tmp_path / "w.npz", tmp_path / "plots"
    assert run(capsys, "train", "--data", tmp_path / "iris.csv", "--epochs", "20", "--save", weights,
               "--no-progress")[0] == 0
    code, out, _ = run(capsys, "evaluate", "--weights", weights)
    assert code == 0 and "setosa" in out and "virginica" in out.splitlines()[-1] and "30 samples" in out
    code, out, err = run(capsys, "plot", "--weights", weights, "--out", plots)
    assert code == 0 and "not an image" in err and not (plots / "misclassified.png").exists()
    table = (plots / "misclassified.csv").read_text().splitlines()
    assert table[0].startswith("test_row,true,predicted,probability")
    assert all(row.split(",")[1] in NAMES and row.split(",")[2] in NAMES for row in table[1:])
    assert {p.name for p in plots.iterdir()} == {"history.png", "misclassified.csv", "weights.png",
                                                 "probabilities.png", "confusion.png"}


def test_a_one_epoch_sweeps_curves_are_drawn_not_blank(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    from xpnet import plot

    records = [{"lr": lr, "history": [{"epoch": 1, "test_accuracy": acc}]} for lr, acc in ((0.1, 0.8), (1.0, 0.9))]
    image = matplotlib.image.imread(plot.sweep_curves(records, tmp_path / "curves.png"))
    axes = image[60:-60, 80:-150, :3]  # inside the axes, away from the labels and the colour bar
    coloured = np.abs(axes - axes.mean(axis=2, keepdims=True)).sum(axis=2) > 0.2  # not white, grey or black
    assert coloured.sum() > 20  # each single-epoch curve is a visible marker


def test_a_square_feature_count_of_64_or_more_is_an_image_and_four_features_are_not():
    pytest.importorskip("matplotlib")
    from xpnet import plot

    assert plot.image_shape(784) == (28, 28) and plot.image_shape(64) == (8, 8)
    assert plot.image_shape(4) is None and plot.image_shape(10) is None


@pytest.mark.parametrize("argv,suggestion", [
    (["trian"], "did you mean 'train'?"),
    (["train", "--lrr", "0.1"], "unknown option --lrr; did you mean --lr?"),
    (["sweep", "--bach-size", "4"], "did you mean --batch-size?"),
    (["train", "--optimizer", "adamm"], "did you mean 'adam'?"),
    (["train", "--schedule", "cosin"], "did you mean 'cosine'?"),
])
def test_a_misspelt_name_gets_the_nearest_suggested(capsys, argv, suggestion):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2 and suggestion in err and err.count("\n") == 1


def test_cuda_on_a_host_backend_names_the_backends_that_have_it(capsys):
    code, _, err = run(capsys, "train", "--device", "cuda")
    assert code == 2 and "--backend cupy" in err and "torch" in err and err.count("\n") == 1


def test_a_sweeps_weights_record_the_scaling_and_evaluate_applies_it(capsys, tmp_path):
    X, y = five_features()
    np.savez(tmp_path / "five.npz", X=X, y=y)
    code, out, err = run(capsys, "sweep", "--data", tmp_path / "five.npz", "--epochs", "2", "--save-dir", tmp_path / "w",
                       "--json", "--no-progress")
    assert code == 0 and err.count("held out as the test set") == 1, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    saved = np.load(record["weights"])
    scaling = json.loads(str(saved["meta"]))["input_scaling"]
    assert code == 0 and scaling["chose"] == "standardize each feature" and len(scaling["mean"]) == 5
    code, out, _ = run(capsys, "evaluate", "--weights", record["weights"], "--data", tmp_path / "five.npz", "--json")
    assert code == 0 and json.loads(out)["test_accuracy"] == record["test_accuracy"]
