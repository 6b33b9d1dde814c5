"""The speed targets of issue #5, each measured in fresh processes that take turns.

    python benchmarks/targets.py [--repeats 5] [--json targets.json]

One measurement is one fresh Python process timing one case with :mod:`xpnet.bench`'s calibration and
rounds (~0.25 s each, median of 5). Besides the cases the targets name, it times the hand-tuned NumPy
loop (``hand-tuned-numpy`` of :mod:`xpnet.peers`): what NumPy itself reaches per sample on this machine today. Every repeat measures every case once, in turn, so the two sides of a
ratio meet the same machine drift; and no other library's thread pool is alive while a case is timed (in
one process, one library's threads, still spinning after its last call, slowed the next library's rounds
by as much as half in a trial). Reported per target: the median over repeats of each case, and of the ratio within a repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from common import fresh

#: name -> (implementation, net, dtype, batch size)
CASES = {
    "numpy-b1": ("xpnet-numpy", "small", "float32", 1),
    "seeds-b1": ("seeds-loop", "small", "float64", 1),
    "torch-b1": ("torch-eager", "small", "float32", 1),
    "numpy-b1024": ("xpnet-numpy", "small", "float32", 1024),
    "torch-b1024": ("torch-eager", "small", "float32", 1024),
    "jax-b1": ("xpnet-jax", "small", "float32", 1),
    "jax-b1024": ("xpnet-jax", "small", "float32", 1024),
    "numpy-large-b64": ("xpnet-numpy", "large", "float32", 64),
    "torch-large-b64": ("torch-eager", "large", "float32", 64),
    "hand-tuned-b1": ("hand-tuned-numpy", "small", "float32", 1),
}
#: (what, case, reference case or None for samples/s, at least)
TARGETS = [
    ("NumPy batch 1, samples/s", "numpy-b1", None, 30_000),
    ("NumPy batch 1 / seeds' loop", "numpy-b1", "seeds-b1", 4.5),
    ("NumPy batch 1 / PyTorch eager batch 1", "numpy-b1", "torch-b1", 10),
    ("NumPy batch 1024 / PyTorch eager batch 1024", "numpy-b1024", "torch-b1024", 1.3),
    ("JAX compiled batch 1, samples/s", "jax-b1", None, 200_000),
    ("JAX compiled batch 1024, samples/s", "jax-b1024", None, 600_000),
    ("large ReLU net batch 64: NumPy / PyTorch eager", "numpy-large-b64", "torch-large-b64", 2.5),
]
#: (what, case, reference case): ratios that put the targets in context
CONTEXT = [
    ("hand-tuned NumPy batch 1, samples/s", "hand-tuned-b1", None),
    ("hand-tuned NumPy batch 1 / seeds' loop", "hand-tuned-b1", "seeds-b1"),
    ("xpnet NumPy batch 1 / hand-tuned NumPy", "numpy-b1", "hand-tuned-b1"),
]


def measure_in_a_fresh_process(case) -> float:
    value = fresh(__file__, case)
    if isinstance(value, str):
        raise SystemExit(f"{case} cannot run here: {value}")
    return value


def measure_one(case):
    """Samples/s of one case in this process, or the reason it cannot run (a string)."""
    from xpnet import bench, workers

    implementation, net, dtype, batch_size = CASES[case]
    result = workers.measure_case(implementation, net, dtype, batch_size, bench.load_training_set())
    return result.get("samples_per_second", result.get("skipped"))


def row(case, reference, rates) -> tuple[float, str]:
    if reference is None:
        value = statistics.median(rates[case])
        return value, f"{value:,.0f} (range {min(rates[case]):,.0f}–{max(rates[case]):,.0f})"
    ratios = [a / b for a, b in zip(rates[case], rates[reference])]
    value = statistics.median(ratios)
    return value, (f"{value:.2f}× (range {min(ratios):.2f}–{max(ratios):.2f}; "
                   f"{statistics.median(rates[case]):,.0f} vs {statistics.median(rates[reference]):,.0f} samples/s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write every measurement here")
    parser.add_argument("--one", choices=CASES, help=argparse.SUPPRESS)  # what each fresh process runs
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one)))
        return 0
    rates = {case: [] for case in CASES}
    for repeat in range(args.repeats):
        for case in CASES:
            rates[case].append(measure_in_a_fresh_process(case))
            print(f"repeat {repeat + 1}/{args.repeats} {case}: {rates[case][-1]:,.0f} samples/s", file=sys.stderr)
    print("| target | measured (median of repeats) | goal | met |\n|---|---|---|---|")
    for what, case, reference, goal in TARGETS:
        value, shown = row(case, reference, rates)
        print(f"| {what} | {shown} | ≥ {goal:,} | {'yes' if value >= goal else 'no'} |")
    print("\n| for context | measured (median of repeats) |\n|---|---|")
    for what, case, reference in CONTEXT:
        print(f"| {what} | {row(case, reference, rates)[1]} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": CASES, "samples_per_second": rates}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
