"""Time to accuracy: per-sample against batched, per backend, beside the peers.

    python benchmarks/time_to_accuracy.py [--seeds 3] [--max-seconds 30] [--json run.json] [--png plot.png]

For the seeds' net (784-32-32-10 sigmoid; targets 92 % and 96 %) and the large ReLU net
(784-256-128-64-10; targets 97 % and 98 %), batch sizes 1, 16, 64, 256 and 1024, float32:

1. the learning rate of each (net, batch size) is chosen from :data:`xpnet.bench.LR_GRID` by the
   validation accuracy after 2 epochs (the last 6,000 training images held out; one seed; all rates
   trained together as one stack) -- the same rate then serves every backend, which run the same
   algorithm;
2. each implementation, in a fresh process (no other library's threads alive), trains from each of
   ``--seeds`` seeds until the test accuracy first reaches each target, reading it off the clock, for at
   most ``--max-seconds`` of training (20) or 50 epochs (:func:`xpnet.bench.time_to_accuracy`).

Implementations: xpnet on NumPy, PyTorch and compiled JAX (and CuPy, PyTorch on CUDA, which skip without
a GPU); PyTorch eager and scikit-learn at batch sizes 64 and 256, their best in a first run over 16 to
1024 (and their per-sample throughput is far below xpnet's, so batch 1 cannot be their best). Accuracy
is read every 4,096 samples for the small net and every 8,192 for the large one. Tables give the median
over seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from common import figure, fresh

from xpnet import bench

TARGETS = {"small": (0.92, 0.96), "large": (0.97, 0.98)}
BATCHES = (1, 16, 64, 256, 1024)
XPNET = ("xpnet-numpy", "xpnet-torch", "xpnet-jax", "xpnet-cupy@cuda", "xpnet-torch@cuda")
PEERS = ("torch-eager", "sklearn")
PEER_BATCHES = (64, 256)
#: Samples between two accuracy readings, per net: the small net reaches 92 % after ~30k samples, the large
#: net its targets after 100k-500k.
CHECK_EVERY = {"small": 4096, "large": 8192}


def data():
    from xpnet import datasets, spec

    return spec.Arrays(*datasets.prepare(datasets.load_mnist(), dtype=np.float32))


def run_one(implementation, lrs, seeds, max_seconds) -> list[dict]:
    """Every case of one implementation, in this process."""
    d = data()
    results = []
    for net, targets in TARGETS.items():
        for batch in PEER_BATCHES if implementation in PEERS else BATCHES:
            lr = lrs[f"{net}/{batch}"]
            for seed in range(seeds):
                base = {"implementation": implementation, "net": net, "batch_size": batch, "lr": lr, "seed": seed,
                        "targets": list(targets)}
                try:
                    learner = bench.make_learner(implementation, bench.case(net, "float32", batch, lr, seed, shuffle=None), d)
                except bench.Unavailable as exc:
                    results.append({**base, "skipped": str(exc)})
                    break
                result = {**base, **bench.time_to_accuracy(learner, targets, len(d.y), max_seconds=max_seconds,
                                                            check_every=CHECK_EVERY[net])}
                results.append(result)
                got = ", ".join(f"{t}: {r['seconds']:.2f} s" if r else f"{t}: not reached" for t, r in result["reached"].items())
                print(f"{implementation} {net} batch {batch} seed {seed}: {got}", file=sys.stderr, flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--json", help="write every run (curves included) here")
    parser.add_argument("--png", help="plot test accuracy against training seconds here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # what each fresh process runs
    parser.add_argument("--lrs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, json.loads(args.lrs), args.seeds, args.max_seconds)))
        return 0
    t0 = time.perf_counter()
    d = data()
    lrs, choices = {}, {}
    for net in TARGETS:
        for batch in BATCHES:
            lr, scores = bench.choose_lr(net, batch, d)
            lrs[f"{net}/{batch}"], choices[f"{net}/{batch}"] = lr, scores
            print(f"{net} batch {batch}: lr {lr:g}", file=sys.stderr, flush=True)
    results = []
    for implementation in XPNET + PEERS:
        results += fresh(__file__, implementation, "--lrs", json.dumps(lrs), "--seeds", args.seeds,
                         "--max-seconds", args.max_seconds)
    minutes = (time.perf_counter() - t0) / 60
    for net, targets in TARGETS.items():
        print(f"\n**{net} net**: training seconds to the target (median of {args.seeds} seeds), samples and epochs "
              f"of that run; accuracy read every {CHECK_EVERY[net]:,} samples\n")
        print(bench.to_accuracy_table([r for r in results if r["net"] == net], targets))
    print(f"\nthe whole run: {minutes:.1f} minutes")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": bench.environment(), "lr_choices": choices, "lrs": lrs, "minutes": minutes,
                       "max_seconds": args.max_seconds, "check_every": bench.CHECK_EVERY, "results": results}, f)
    if args.png:
        plot(results, args.png)
    return 0


def plot(results, path) -> None:
    """Test accuracy against training seconds, seed 0: one panel per net and implementation, one curve per
    batch size, the targets as dashed lines."""
    impls = [i for i in XPNET + PEERS if any(r["implementation"] == i and "skipped" not in r for r in results)]
    fig, axes = figure(len(TARGETS), len(impls), width=3.3, height=3.4, sharey="row")
    for row, (net, targets) in zip(axes, TARGETS.items()):
        for ax, impl in zip(row, impls):
            for i, batch in enumerate(BATCHES):
                runs = [r for r in results if r["implementation"] == impl and r["net"] == net and r["batch_size"] == batch
                        and r["seed"] == 0 and "skipped" not in r]
                if runs:
                    seconds, _, acc = zip(*runs[0]["curve"])
                    ax.plot(np.maximum(seconds, 1e-3), 100 * np.array(acc), color=f"C{i}", label=f"batch {batch}")
            for t in targets:
                ax.axhline(100 * t, color="grey", linestyle="--", linewidth=0.8)
            ax.set(xscale="log", title=f"{impl}, {net} net", xlabel="training seconds", ylim=(100 * targets[0] - 12, 100))
            ax.grid(alpha=0.3, which="both")
        row[0].set_ylabel("test accuracy (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
