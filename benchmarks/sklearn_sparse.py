"""Sparse ``X`` as a user would bring it: TF-IDF-like rows (20 newsgroups' shape: many features, about 1 %
of them non-zero, 20 classes), made here from a seeded RNG. scikit-learn's MLPClassifier and xpnet's on
each backend, fitted on the same CSR matrix with the same parameters: seconds per epoch (median of
``--rounds``, one process, the order rotated every round) and the largest relative difference of the
fitted weights from scikit-learn's.

    python benchmarks/sklearn_sparse.py --rows 4000 --features 50000 --density 0.01 --epochs 3 --rounds 3

Prints a markdown table (docs/sklearn.md).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from common import fit_rounds


def tfidf_like(rows: int, features: int, density: float, classes: int, seed: int = 0):
    """L2-normalised non-negative rows whose non-zeros lean towards a few words per class."""
    import scipy.sparse

    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    per_row = max(1, int(round(density * features)))
    topical = rng.integers(0, features, (classes, per_row))  # each class's own vocabulary
    cols = np.where(rng.random((rows, per_row)) < 0.5, topical[y], rng.integers(0, features, (rows, per_row)))
    values = rng.exponential(1.0, (rows, per_row))
    X = scipy.sparse.csr_matrix((values.ravel(), (np.repeat(np.arange(rows), per_row), cols.ravel())),
                                shape=(rows, features))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    return scipy.sparse.diags(1.0 / norms) @ X, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--features", type=int, default=50000)
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--backends", default="numpy,torch,jax")
    args = parser.parse_args(argv)

    from sklearn.neural_network import MLPClassifier as Theirs

    from xpnet.sklearn import MLPClassifier as Ours

    X, y = tfidf_like(args.rows, args.features, args.density, args.classes)
    params = dict(hidden_layer_sizes=(args.hidden,), solver="adam", max_iter=args.epochs, random_state=0)
    makers = {"scikit-learn": lambda: Theirs(**params)}
    makers.update({f"xpnet ({b})": (lambda b=b: Ours(backend=b, **params)) for b in args.backends.split(",")})
    seconds, fitted = fit_rounds(makers, X, y, args.rounds, warm_up=True)
    seconds = {name: [s / args.epochs for s in times] for name, times in seconds.items()}
    names = list(makers)
    reference = fitted["scikit-learn"]
    print(f"{X.shape[0]} rows x {X.shape[1]} features, {X.nnz / np.prod(X.shape):.2%} non-zero (CSR, float64), "
          f"{args.classes} classes, {X.shape[1]}-{args.hidden}-{args.classes}, adam, {args.epochs} epochs, "
          f"{args.rounds} rounds\n")
    print("| | seconds per epoch (median) | / scikit-learn | largest relative weight difference |")
    print("|---|---|---|---|")
    base = statistics.median(seconds["scikit-learn"])
    for name in names:
        med = statistics.median(seconds[name])
        diff = max(float(np.abs(a - b).max() / np.abs(b).max())
                   for a, b in zip(fitted[name].coefs_ + fitted[name].intercepts_, reference.coefs_ + reference.intercepts_))
        print(f"| {name} | {med:.3f} | {med / base:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
