"""What the scripts in benchmarks/ share: one case measured in a fresh Python process, and a figure.

A fresh process per measurement keeps one library's threads (still spinning after its last call) from
slowing the next one down, and gives every case the same cold start. A script that uses :func:`fresh`
answers ``--one ARGS...`` by measuring in its own process and printing the result as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def fresh(script, *args, env=None, timeout=1800):
    """``python SCRIPT --one ARGS...`` in a new process; what it printed, as JSON. ``env`` adds to the
    environment (``PYTHONPATH`` to time another source tree)."""
    command = [sys.executable, str(script), "--one", *map(str, args)]
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit status {proc.returncode}")
    return json.loads(proc.stdout)


def fit_rounds(makers: dict, X, y, rounds: int, warm_up: bool = False):
    """Each estimator of ``makers`` (name -> a function making one) fitted on ``(X, y)`` in ``rounds``
    rounds in this process, the order rotated every round: ``(seconds, fitted)`` -- each name's fit times
    and its last fitted estimator. ``warm_up``: one untimed ``max_iter=1`` fit of each first (imports,
    JAX's compilations). scikit-learn's convergence warnings are silenced."""
    import time
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    names, seconds, fitted = list(makers), {name: [] for name in makers}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in names if warm_up else ():
            makers[name]().set_params(max_iter=1).fit(X, y)
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                model = makers[name]()
                start = time.perf_counter()
                model.fit(X, y)
                seconds[name].append(time.perf_counter() - start)
                fitted[name] = model
    return seconds, fitted


def figure(rows=1, cols=1, width=6.4, height=4.6, **kwargs):
    """``(fig, axes)`` for a PNG (matplotlib without a display), ``axes`` a 2-D array."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kwargs)
    return fig, axes
