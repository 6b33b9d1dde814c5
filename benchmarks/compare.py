"""Before against after: the same training cases timed on two (or more) source trees of xpnet, in fresh
processes, in alternating rounds, with an A/A pair to show the noise.

    python benchmarks/compare.py OLD=/path/to/old/src NEW=src [--rounds 5] [--cases numpy-b1,...] [--json out.json]

Each measurement is one fresh Python process with ``PYTHONPATH`` set to one tree's ``src``: it loads MNIST,
builds the case's network with the public API both trees share (``MLP``/``Stack`` and ``fit``), trains
one untimed epoch over the case's rows (allocations; JAX compiles), then three more, and reports the
median of their ``samples_per_second`` (the training loop only, as ``fit`` measures it). A round measures
every case on every tree, the first tree twice (``OLD`` and ``OLD'``: the A/A pair), in an order that
rotates from round to round. Reported per case: each tree's median over rounds, and the median over
rounds of the same-round ratios to the first tree (with their range). The seeds' net, float32.
"""

from __future__ import annotations

import argparse
import json
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


def measure(case: str) -> float:
    """Median samples/s (model-samples/s for a stack) of three epochs of ``case``, in this process."""
    import xpnet
    from xpnet import datasets

    backend, batch, models, n = CASES[case]
    X, y, _, _ = datasets.prepare(datasets.load_mnist(), dtype="float32")
    X, y = X[:n], y[:n]
    net_args = dict(layers="784-32-32-10", activation="sigmoid", init="normal-max", backend=backend, dtype="float32")
    if models is None:
        net = xpnet.MLP(**net_args, seed=0)
    else:
        net = xpnet.Stack(**net_args, seeds=list(range(models)))
    Xd = net.inputs(X)  # on the device once, as fit would move it
    rates = []
    for epoch in range(4):
        history = net.fit(Xd, y, epochs=1, lr=0.01, batch_size=batch, shuffle=False, progress=False)
        record = history[0] if models is None else history[0][0]
        if epoch:
            rates.append(record["samples_per_second"] * (models or 1))
    return statistics.median(rates)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", help="NAME=SRC_DIR, the first one the reference")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # what each fresh process measures
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    trees = dict(t.split("=", 1) for t in args.trees)
    if len(trees) < 2:
        parser.error("give at least two trees, NAME=SRC_DIR each")
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    first = next(iter(trees))
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
