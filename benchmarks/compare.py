"""Before against after: the same training cases timed on two (or more) source trees of xpnet, in fresh
processes, in alternating rounds, with an A/A pair to show the noise.

    python benchmarks/compare.py OLD=/path/to/old/src NEW=src [--rounds 5] [--cases numpy-b1,...] [--json out.json]
    python benchmarks/compare.py OLD=/path/to/old/src NEW=src --instructions [--cases numpy-b1,numpy-b64] [--count-rows N]

Each measurement is one fresh Python process with ``PYTHONPATH`` set to one tree's ``src``: it loads MNIST,
builds the case's network with the public API both trees share (``MLP``/``Stack`` and ``fit``), trains
one untimed epoch over the case's rows (allocations; JAX compiles), then three more, and reports the
median of their ``samples_per_second`` (the training loop only, as ``fit`` measures it). A round measures
every case on every tree, the first tree twice (``OLD`` and ``OLD'``: the A/A pair), in an order that
rotates from round to round. Reported per case: each tree's median over rounds, and the median over
rounds of the same-round ratios to the first tree (with their range). The seeds' net, float32 (sigmoid;
the ``-relu`` cases relu).

Where the machine's noise is larger than the difference to be seen, ``--instructions`` counts instead of
timing: each tree's case runs under ``valgrind --tool=callgrind`` twice, training one and three epochs
after the same warm-up, and the difference of the two counts over the rows of two epochs is the
instructions per sample the training loop executes -- the same count on every run of the same code
(one BLAS and one OpenMP thread, so that the count does not depend on which thread ran what or on
threads spinning while they wait; one hash seed, ``PYTHONHASHSEED=0``, so that sets and dicts of strings
iterate alike: with random seeds, counts of the same code were seen 2 % apart). What a ``fit`` call costs
besides its rows (building the run's specification, moving data, the epoch's checks) is spread over the
counted rows: ``--count-rows`` (default an eighth of the timed rows, at least 256) says how many, and a
difference that shrinks as they grow is one of those per-call costs, not of the steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from common import fresh

#: name -> (backend, batch size, networks in a stack (None: one MLP), rows trained per epoch)
CASES = {
    "numpy-b1": ("numpy", 1, None, 8192),
    "numpy-b64": ("numpy", 64, None, 60000),
    "numpy-b1024": ("numpy", 1024, None, 60000),
    "torch-b1": ("torch", 1, None, 4096),
    "torch-b64": ("torch", 64, None, 60000),
    "torch-b1024": ("torch", 1024, None, 60000),
    "jax-b1": ("jax", 1, None, 32768),
    "jax-b64": ("jax", 64, None, 60000),
    "jax-b1024": ("jax", 1024, None, 60000),
    "numpy-b1-K64": ("numpy", 1, 64, 2048),
    "torch-b1-K64": ("torch", 1, 64, 1024),
    "jax-b1-K64": ("jax", 1, 64, 2048),
}
#: Every case also runs with relu hidden layers: its name with ``-relu`` (``numpy-b1-relu``); and with Adam
#: instead of plain SGD: its name with ``-adam`` (``numpy-b64-adam``, lr 0.001).
CASES.update({f"{name}-relu": case for name, case in list(CASES.items()) if case[2] is None})
CASES.update({f"{name}-adam": case for name, case in list(CASES.items()) if not name.endswith("-relu")})


def activation(case: str) -> str:
    return "relu" if case.endswith("-relu") else "sigmoid"


def optimizer(case: str) -> dict:
    """What ``fit`` trains the case with: plain SGD at lr 0.01, or Adam at 0.001."""
    return dict(optimizer="adam", lr=0.001) if case.endswith("-adam") else dict(lr=0.01)


def measure(case: str, epochs: int = 3, mnist: bool = True, rows: int | None = None) -> float:
    """Median samples/s (model-samples/s for a stack) of ``epochs`` epochs of ``case``, in this process
    (on MNIST, or on as many uniform random images when not ``mnist``: loading MNIST costs minutes under
    callgrind, and the count of a step does not depend on the pixels)."""
    import numpy as np

    import xpnet
    from xpnet import datasets

    backend, batch, models, n = CASES[case]
    if not mnist:
        n = rows or counted_rows(case)
    if mnist:
        X, y, _, _ = datasets.prepare(datasets.load_mnist(), dtype="float32")
        X, y = X[:n], y[:n]
    else:
        rng = np.random.default_rng(0)
        X, y = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
    net_args = dict(layers="784-32-32-10", activation=activation(case), init="normal-max", backend=backend,
                    dtype="float32")
    if models is None:
        net = xpnet.MLP(**net_args, seed=0)
    else:
        net = xpnet.Stack(**net_args, seeds=list(range(models)))
    Xd = net.inputs(X)  # on the device once, as fit would move it
    rates = []
    for epoch in range(epochs + 1):
        history = net.fit(Xd, y, epochs=1, batch_size=batch, shuffle=False, progress=False, **optimizer(case))
        record = history[0] if models is None else history[0][0]
        if epoch:
            rates.append(record["samples_per_second"] * (models or 1))
    return statistics.median(rates)


def counted_rows(case: str) -> int:
    """Rows per epoch under callgrind: an eighth of the timed rows (at least 256 and two batches)."""
    _, batch, _, n = CASES[case]
    return min(n, max(256, 2 * batch, n // 8))


def instructions(case: str, src: str, rows: int | None = None) -> float:
    """Instructions per sample (per model-sample for a stack) of ``case``'s training loop under
    callgrind: the count of three epochs less that of one, over two epochs' rows (``rows`` per epoch,
    default :func:`counted_rows`; what an epoch costs besides its rows is spread over them)."""
    rows = rows or counted_rows(case)
    import re
    import subprocess

    counts = []
    for epochs in (1, 3):
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                               __file__, "--count", case, str(epochs), str(rows)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": src, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                                   "PYTHONHASHSEED": "0"},
                              check=True)
        counts.append(int(re.search(r"Collected : (\d+)", proc.stderr).group(1)))
    models = CASES[case][2]
    return (counts[1] - counts[0]) / (2 * rows * (models or 1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", help="NAME=SRC_DIR, the first one the reference")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--instructions", action="store_true", help="count instructions per sample (callgrind) "
                        "instead of timing")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # what each fresh process measures
    parser.add_argument("--count-rows", type=int, help="rows per counted epoch (default: an eighth of the timed "
                        "rows, at least 256)")
    parser.add_argument("--count", nargs=3, help=argparse.SUPPRESS)  # what runs under callgrind
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    if args.count:
        measure(args.count[0], int(args.count[1]), mnist=False, rows=int(args.count[2]))
        return 0
    trees = dict(t.split("=", 1) for t in args.trees)
    if len(trees) < 2:
        parser.error("give at least two trees, NAME=SRC_DIR each")
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    first = next(iter(trees))
    if args.instructions:
        print(f"instructions per sample of the training loop (callgrind; ratio to {first})\n")
        print("| case | " + " | ".join(trees) + " | " + " | ".join(f"{t} / {first}" for t in list(trees)[1:]) + " |")
        print("|---" * (2 * len(trees)) + "|")
        for case in cases:
            counts = {t: instructions(case, str(Path(src).resolve()), args.count_rows) for t, src in trees.items()}
            print(f"| {case} | " + " | ".join(f"{c:,.0f}" for c in counts.values()) + " | "
                  + " | ".join(f"{counts[t] / counts[first]:.3f}" for t in list(trees)[1:]) + " |", flush=True)
        return 0
    sides = [first, f"{first}'", *list(trees)[1:]]  # the first tree twice: the A/A pair
    source = {side: str(Path(trees[side.rstrip("'")]).resolve()) for side in sides}
    rates = {case: {side: [] for side in sides} for case in cases}
    for r in range(args.rounds):
        for case in cases:
            order = sides[r % len(sides):] + sides[: r % len(sides)]
            for side in order:
                rates[case][side].append(fresh(__file__, case, env={"PYTHONPATH": source[side]}))
            shown = ", ".join(f"{s} {rates[case][s][-1]:,.0f}" for s in sides)
            print(f"round {r + 1}/{args.rounds} {case}: {shown}", file=sys.stderr, flush=True)
    print(f"median samples/s of {args.rounds} rounds (model-samples/s for stacks) and the median same-round ratio "
          f"to {first} (range)\n")
    print("| case | " + " | ".join(sides) + " | " + " | ".join(f"{s} / {first}" for s in sides[1:]) + " |")
    print("|---" * (2 * len(sides)) + "|")
    for case in cases:
        cells = [f"{statistics.median(rates[case][s]):,.0f}" for s in sides]
        for s in sides[1:]:
            ratios = [a / b for a, b in zip(rates[case][s], rates[case][first])]
            cells.append(f"{statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f})")
        print(f"| {case} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"trees": trees, "rounds": args.rounds, "samples_per_second": rates},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
