"""scikit-learn's MLPClassifier and xpnet's, side by side on MNIST: the same parameters on the same
float64 data, the largest relative difference of the fitted weights and loss curves from scikit-learn's,
and the seconds of each fit (median of ``--rounds``, in one process, the order rotated every round).

    python benchmarks/sklearn_side_by_side.py --samples 10000 --max-iter 5 --rounds 3

Prints a markdown table (docs/sklearn.md).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from common import fit_rounds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--max-iter", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--solver", default="adam")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--backends", default="numpy,torch,jax")
    args = parser.parse_args(argv)

    from sklearn.neural_network import MLPClassifier as Theirs

    from xpnet import datasets
    from xpnet.sklearn import MLPClassifier as Ours

    X, y, X_test, y_test = datasets.prepare(datasets.load_mnist())
    X, y = X[: args.samples].astype(np.float64), y[: args.samples]
    params = dict(hidden_layer_sizes=(args.hidden,), solver=args.solver, max_iter=args.max_iter, random_state=0)
    makers = {"scikit-learn": lambda: Theirs(**params)}
    makers.update({f"xpnet ({b})": (lambda b=b: Ours(backend=b, **params)) for b in args.backends.split(",")})
    seconds, fitted = fit_rounds(makers, X, y, args.rounds)
    ref = fitted["scikit-learn"]

    def rel(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))

    base = statistics.median(seconds["scikit-learn"])
    print(f"{args.samples} MNIST samples, 784-{args.hidden}-10, solver={args.solver}, max_iter={args.max_iter}, "
          f"float64, {args.rounds} rounds\n")
    print("| fit | test accuracy | max rel. diff. of coefs_ / intercepts_ | of loss_curve_ | seconds (median) | "
          "scikit-learn's seconds / these |")
    print("|---|---|---|---|---|---|")
    for name, model in fitted.items():
        weights = max(rel(a, b) for a, b in zip(model.coefs_ + model.intercepts_, ref.coefs_ + ref.intercepts_))
        curve = rel(model.loss_curve_, ref.loss_curve_)
        median = statistics.median(seconds[name])
        print(f"| {name} | {model.score(X_test, y_test):.4f} | {weights:.1e} | {curve:.1e} | {median:.2f} | "
              f"{base / median:.2f} |")


if __name__ == "__main__":
    main()
