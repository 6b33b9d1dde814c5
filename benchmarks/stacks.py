"""Stacks of networks: model-samples per second against the number of networks K, and the targets.

    python benchmarks/stacks.py [--models 1,4,16,64,256] [--rounds 3] [--json stacks.json] [--png stacks.png]

For NumPy, PyTorch and compiled JAX, per-sample (batch 1, chunks of 32) and batch 64, the seeds' net
(784-32-32-10, sigmoid), float32: each case is :mod:`xpnet.bench`'s runner with a stack of K networks,
calibrated and timed like every other case (rounds of at least 1,024 samples, about ``--target``
seconds). Model-samples/s is K x samples/s. Each implementation runs in a fresh process (another
library's threads, still spinning after its last call, slow the next one down), its cases one after
another, so each ratio compares cases of one process. The GEMM-bound ceiling divides this machine's measured SGEMM
rate (NumPy's BLAS, 2048 x 2048, median of 7) by the FLOPs one model-sample of per-sample SGD takes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import timeit

import numpy as np

from xpnet import bench

IMPLEMENTATIONS = ("xpnet-numpy", "xpnet-torch", "xpnet-jax")


def flops_per_model_sample(sizes) -> int:
    """Multiply-adds (2 FLOPs each) of one per-sample step: the forward products, the weight gradients
    (outer products, as large as the forward products) and the deltas sent back through every layer but
    the first."""
    forward = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    back = sum(2 * a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    return 2 * forward + back


def sgemm_rate(n=2048, repeats=7) -> float:
    a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in range(2))
    times = timeit.repeat(lambda: a @ b, number=3, repeat=repeats)
    return 2 * n**3 / (statistics.median(times) / 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="1,4,16,64,256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--png", help="plot model-samples/s against K here")
    parser.add_argument("--one", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)  # what each fresh process runs
    args = parser.parse_args(argv)
    models = [int(k) for k in args.models.split(",")]

    def show(r):
        if "skipped" in r:
            print(f"{r['implementation']} batch {r['batch_size']} K={r['models']}: skipped ({r['skipped']})", file=sys.stderr)
        else:
            print(f"{r['implementation']} batch {r['batch_size']} K={r['models']}: "
                  f"{r['models'] * r['samples_per_second']:,.0f} model-samples/s", file=sys.stderr, flush=True)

    if args.one:
        results = bench.run_suite([args.one], ["small"], ["float32"], [1, 64], rounds=args.rounds, target=args.target,
                                  on_result=show, models=models)
        print(json.dumps(results))
        return 0
    results = []
    for name in IMPLEMENTATIONS:
        command = [sys.executable, __file__, "--one", name, "--models", args.models, "--rounds", str(args.rounds),
                   "--target", str(args.target)]
        results += json.loads(subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout)
    sgemm = sgemm_rate()
    flops = flops_per_model_sample(bench.NETS["small"]["layers"])
    ceiling = sgemm / flops
    print(bench.models_table(results, "small", "float32"))
    rate = {(r["implementation"], r["batch_size"], r["models"]): r["models"] * r["samples_per_second"]
            for r in results if "skipped" not in r}
    print(f"\nSGEMM {sgemm / 1e9:.0f} GFLOP/s; {flops:,} FLOPs per model-sample; GEMM-bound ceiling "
          f"{ceiling:,.0f} model-samples/s\n")
    print("| target | measured | goal | met |\n|---|---|---|---|")
    rows = [("per-sample NumPy, K = 64 / K = 1", rate.get(("xpnet-numpy", 1, 64)), rate.get(("xpnet-numpy", 1, 1)), 15),
            ("per-sample compiled JAX, K = 64 / K = 1", rate.get(("xpnet-jax", 1, 64)), rate.get(("xpnet-jax", 1, 1)), 3)]
    for what, value, one, goal in rows:
        if value and one:
            print(f"| {what} | {value / one:.1f}× ({value:,.0f} / {one:,.0f}) | ≥ {goal}× | {'yes' if value / one >= goal else 'no'} |")
    for name in IMPLEMENTATIONS:
        value = rate.get((name, 1, 256))
        if value:
            print(f"| per-sample {name}, K = 256, of the GEMM-bound ceiling | {value / ceiling:.0%} ({value:,.0f}) | ≥ 50% | "
                  f"{'yes' if value >= ceiling / 2 else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": bench.environment(), "sgemm_flops": sgemm, "flops_per_model_sample": flops,
                       "results": results}, f, indent=1)
    if args.png:
        plot(results, ceiling, args.png)
    return 0


def plot(results, ceiling, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for ax, batch in zip(axes, (1, 64)):
        for i, name in enumerate(IMPLEMENTATIONS):
            rows = sorted((r for r in results if r["implementation"] == name and r["batch_size"] == batch
                           and "skipped" not in r), key=lambda r: r["models"])
            if rows:
                ax.plot([r["models"] for r in rows], [r["models"] * r["samples_per_second"] for r in rows], "o-",
                        color=f"C{i}", label=name)
        ax.axhline(ceiling, color="grey", linestyle="--", label="GEMM-bound ceiling")
        ax.set(xscale="log", yscale="log", xlabel="networks in the stack (K)",
               title=f"{'per-sample (batch 1)' if batch == 1 else 'batch 64'}, 784-32-32-10 sigmoid, float32")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("model-samples per second")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
