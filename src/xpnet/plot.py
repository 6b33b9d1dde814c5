"""The plots people expect from a training run, as PNG files (matplotlib, the ``plot`` extra).

Each function draws one figure from host data and writes it to ``path``; ``xpnet plot`` draws them all
from a weights file written by ``xpnet train --save`` (which holds the run's history).
"""

from __future__ import annotations

import math

import numpy as np

from .spec import SWEPT

try:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
    raise ImportError("xpnet.plot needs matplotlib: pip install 'xpnet[plot]'") from exc


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def history(records, path, title=""):
    """Train and test loss (left) and test accuracy (right) per epoch."""
    epochs = [r["epoch"] for r in records]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in records], "o-", label="train loss")
    if any(r.get("test_loss") is not None for r in records):
        left.plot(epochs, [r["test_loss"] for r in records], "s-", label="test loss")
        right.plot(epochs, [100 * r["test_accuracy"] for r in records], "s-", color="C1", label="test accuracy")
    left.set(xlabel="epoch", ylabel="mean loss per sample", title="loss")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="test accuracy")
    left.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _show(ax, row, shape):
    """One sample drawn as the image of ``shape`` its features make (MNIST's 28 x 28)."""
    ax.imshow(np.reshape(row, shape), cmap="gray_r", aspect="equal")


def image_shape(n_features: int):
    """The image a feature count makes where it is a square of 64 or more (8 x 8 and up), else ``None``:
    four features are a table's row, not a 2 x 2 image."""
    side = math.isqrt(n_features)
    return (side, side) if side * side == n_features and side >= 8 else None


def misclassified(images, y_true, y_pred, classes, path, count=25, shape=None):
    """A grid of the first ``count`` misclassified images (``shape``: each row's image shape; default a
    square feature count), each titled 'predicted (true)'."""
    shape = shape or image_shape(images.shape[1])
    if shape is None:
        raise ValueError(f"{images.shape[1]} features are not an image; write the rows as a table (misclassified_table)")
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))[:count]
    cols = 5
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        _show(ax, images[i], shape)
        ax.set_title(f"{classes[y_pred[i]]} ({classes[y_true[i]]})", fontsize=9, color="C3")
    fig.suptitle(f"misclassified: predicted (true) — {len(wrong)} shown of "
                 f"{int(np.sum(np.asarray(y_true) != np.asarray(y_pred)))}")
    return _save(fig, path)


def misclassified_table(features, y_true, y_pred, probs, classes, path, names=None):
    """The misclassified rows of a table of features as CSV: the row of the test set, the true and the
    predicted class (by name), the predicted probability, then the features (``features``: as the data
    holds them, before scaling)."""
    import csv

    probs = probs if probs.shape[1] > 1 else np.hstack([1 - probs, probs])
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    names = names or [f"feature_{j}" for j in range(features.shape[1])]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["test_row", "true", "predicted", "probability", *names])
        for i in wrong:
            out.writerow([int(i), classes[y_true[i]], classes[y_pred[i]], f"{probs[i, y_pred[i]]:.4f}",
                          *(f"{v:.6g}" for v in features[i])])
    return path


def weight_histograms(weights, path):
    """One histogram of weights per layer (biases excluded)."""
    fig, axes = plt.subplots(1, len(weights), figsize=(3.6 * len(weights), 3.2), squeeze=False)
    for l, (ax, (W, _)) in enumerate(zip(axes[0], weights)):
        ax.hist(np.ravel(W), bins=60, color=f"C{l}")
        ax.set(title=f"W{l} {W.shape[0]}×{W.shape[1]}", xlabel="weight")
        ax.text(0.02, 0.95, f"mean {W.mean():.3f}\nstd {W.std():.3f}", transform=ax.transAxes, va="top", fontsize=8)
    axes[0][0].set_ylabel("count")
    return _save(fig, path)


def probabilities(images, probs, y_true, classes, path, count=6, shape=None):
    """The ``count`` least confident predictions: bars of each one's predicted class probabilities (the
    true class in green), beside its image where the features are images (``shape``; default a square
    feature count of 64 or more), else named by its test row (confident, correct predictions teach little)."""
    probs = probs if probs.shape[1] > 1 else np.hstack([1 - probs, probs])
    shape = shape or image_shape(images.shape[1])
    picks = np.argsort(probs.max(axis=1))[: min(count, len(images))]
    k = probs.shape[1]
    fig, axes = plt.subplots(len(picks), 2 if shape else 1, figsize=(7, max(1.5, 0.25 * k + 0.6) * len(picks)),
                             squeeze=False, gridspec_kw={"width_ratios": [1, 3]} if shape else None)
    for row, i in zip(axes, picks):
        if shape:
            _show(row[0], images[i], shape)
            row[0].axis("off")
        bars = row[-1]
        bars.barh(range(k), probs[i], color=["C2" if c == y_true[i] else "C0" for c in range(k)])
        bars.set_yticks(range(k), [str(c) for c in classes], fontsize=7)
        bars.set_xlim(0, 1)
        bars.invert_yaxis()
        if not shape:
            bars.set_ylabel(f"test row {i}", fontsize=8)
    axes[0][-1].set_title("the least confident predictions (green: true class)", fontsize=10)
    axes[-1][-1].set_xlabel("predicted probability")
    return _save(fig, path)


def confusion(matrix, classes, path):
    """The confusion matrix: rows are true classes, columns predictions, labelled with the class names;
    counts in the cells (up to 30 classes), the figure sized to the class count and the names."""
    matrix = np.asarray(matrix)
    n = len(classes)
    labels = [str(c) if len(str(c)) <= 18 else str(c)[:17] + "…" for c in classes]
    room = 0.09 * max(map(len, labels))  # inches the longest name needs
    side = min(max(4.0, 0.45 * n + 1.5), 24.0)
    fig, ax = plt.subplots(figsize=(side + room, side + room))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    size = max(4, min(10, 240 / max(n, 1) / 2))
    ax.set_xticks(range(n), labels, rotation=45 if n > 3 or room > 0.5 else 0, ha="right" if n > 3 else "center",
                  fontsize=size)
    ax.set_yticks(range(n), labels, fontsize=size)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title(f"confusion matrix\n{matrix.sum()} test samples, {np.trace(matrix)} right", fontsize=10)
    if n <= 30:
        threshold = matrix.max() / 2
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=size, color="white" if v > threshold else "black")
    return _save(fig, path)


def _setting_label(key, names):  # settings an optimizer lacks (None) are left out
    return ", ".join(f"{n} {v}" for n, v in zip(names, key) if v is not None) or "all"


def sweep_accuracy(records, path, metric="test_accuracy", title=""):
    """Accuracy against learning rate (log axis) for a sweep's records: one line per combination of the
    other varied settings (the mean over seeds), the spread over seeds (min to max) as a band; diverged
    networks count as not reached and are marked with an x at the bottom."""
    others = [k for k in SWEPT if k not in ("lr", "seed") and len({str(r.get(k)) for r in records}) > 1]
    groups = {}
    for r in records:
        groups.setdefault(tuple(r.get(k) for k in others), []).append(r)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (key, members) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        lrs = sorted({r["lr"] for r in members})
        stats = []
        for lr in lrs:
            accs = [100 * r[metric] for r in members if r["lr"] == lr and not r.get("diverged") and r.get(metric) is not None]
            stats.append((np.mean(accs), min(accs), max(accs)) if accs else (np.nan, np.nan, np.nan))
        mean, low, high = (np.array(s) for s in zip(*stats))
        colour = f"C{i % 10}"
        ax.plot(lrs, mean, "o-", color=colour, label=_setting_label(key, others))
        ax.fill_between(lrs, low, high, color=colour, alpha=0.2, linewidth=0)
        bad = [r["lr"] for r in members if r.get("diverged")]
        if bad:
            ax.plot(bad, [0.0] * len(bad), "x", color=colour, markersize=9)
    ax.set_xscale("log")
    seeds = len({r["seed"] for r in records})
    ax.set(xlabel="learning rate", ylabel=f"{metric.replace('_', ' ')} (%)",
           title=title or f"{metric.replace('_', ' ')} against learning rate (mean of {seeds} seed(s), band: min-max)")
    ax.grid(alpha=0.3, which="both")
    if len(groups) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


def sweep_curves(records, path):
    """The learning curve (test accuracy per epoch) of every configuration, coloured by learning rate."""
    lrs = sorted({r["lr"] for r in records})
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for r in records:
        epochs = [h["epoch"] for h in r["history"] if h.get("test_accuracy") is not None]
        accs = [100 * h["test_accuracy"] for h in r["history"] if h.get("test_accuracy") is not None]
        if not epochs:
            continue
        colour = cmap(lrs.index(r["lr"]) / max(1, len(lrs) - 1))
        ax.plot(epochs, accs, "o-", color=colour, alpha=0.7, linewidth=1, markersize=4)  # a one-epoch run: a dot
    scalar = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, max(1, len(lrs) - 1)))
    bar = fig.colorbar(scalar, ax=ax, ticks=range(len(lrs)))
    bar.ax.set_yticklabels([f"{lr:g}" for lr in lrs], fontsize=8)
    bar.set_label("learning rate")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"learning curves of {len(records)} configurations")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return _save(fig, path)
