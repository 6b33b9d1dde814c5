"""Stacks of networks: model-samples per second against the number of networks K, beside the peers' own
ensembling, and the targets.

    python benchmarks/stacks.py [--models 1,4,16,64,256] [--rounds 3] [--json stacks.json] [--png stacks.png]

For xpnet on NumPy, PyTorch and compiled JAX, and the peers' ways of training many models at once
(``torch-func``: ``torch.func.stack_module_state`` + ``vmap(grad)``; ``jax-vmap``: ``jax.vmap`` of a
jitted ``lax.scan`` of ``jax.grad`` steps), per-sample (batch 1) and batch 64, the seeds' net
(784-32-32-10, sigmoid), float32, every network on the same rows: each case is :mod:`xpnet.bench`'s
learner with K networks, calibrated and timed like every other case (rounds of at least 1,024 samples,
about ``--target`` seconds). Model-samples/s is K x samples/s. Each implementation runs in a fresh
process (``benchmarks/common.py``), its cases one after another; the rounds of all implementations take
turns (``--repeats``), so the ratios between them compare measurements of the same stretch of time. The
GEMM-bound ceiling divides this machine's measured SGEMM rate (NumPy's BLAS, 2048 x 2048, median of 7) by
the FLOPs one model-sample of per-sample SGD takes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit

import numpy as np

from common import figure, fresh

from xpnet import bench, workers

IMPLEMENTATIONS = ("xpnet-numpy", "xpnet-torch", "xpnet-jax", "torch-func", "jax-vmap")
#: xpnet's implementation -> the peer it is compared with, case by case
PAIRS = {"xpnet-torch": "torch-func", "xpnet-jax": "jax-vmap"}


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
    parser.add_argument("--repeats", type=int, default=1, help="fresh-process runs of every implementation, taking turns")
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
        cases = [("small", "float32", batch, k) for batch in (1, 64) for k in models]
        results = workers.run_suite([args.one], cases, rounds=args.rounds, target=args.target, on_result=show,
                                     isolate=False)
        print(json.dumps(results))
        return 0
    runs = [fresh(__file__, name, "--models", args.models, "--rounds", args.rounds, "--target", args.target)
            for _ in range(args.repeats) for name in IMPLEMENTATIONS]
    results = _median_over_repeats(runs)
    sgemm = sgemm_rate()
    flops = flops_per_model_sample(bench.NETS["small"].sizes)
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
    for name in IMPLEMENTATIONS[:3]:
        value = rate.get((name, 1, 256))
        if value:
            print(f"| per-sample {name}, K = 256, of the GEMM-bound ceiling | {value / ceiling:.0%} ({value:,.0f}) | ≥ 50% | "
                  f"{'yes' if value >= ceiling / 2 else 'no'} |")
    print(pairs_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": bench.environment(), "sgemm_flops": sgemm, "flops_per_model_sample": flops,
                       "results": results}, f, indent=1)
    if args.png:
        plot(results, ceiling, args.png)
    return 0


def _median_over_repeats(runs) -> list[dict]:
    """One record per case: the median over the fresh-process repeats of each case's median, its
    ``repeats`` kept."""
    cases: dict[tuple, list[dict]] = {}
    for run in runs:
        for r in run:
            cases.setdefault((r["implementation"], r["batch_size"], r["models"]), []).append(r)
    out = []
    for rs in cases.values():
        measured = [r for r in rs if "skipped" not in r]
        if not measured:
            out.append(rs[0])
            continue
        rates = sorted(r["samples_per_second"] for r in measured)
        out.append({**measured[0], "samples_per_second": statistics.median(rates), "repeats": rates})
    return out


def pairs_table(results) -> str:
    """xpnet against the peer's own ensembling, case by case: model-samples/s of each and their ratio."""
    rate = {(r["implementation"], r["batch_size"], r["models"]): r["models"] * r["samples_per_second"]
            for r in results if "skipped" not in r}
    lines = ["| case | xpnet | model-samples/s | peer | model-samples/s | xpnet / peer |", "|---|---|---|---|---|---|"]
    for ours, peer in PAIRS.items():
        for (name, batch, k), value in sorted(rate.items()):
            other = rate.get((peer, batch, k))
            if name == ours and other:
                lines.append(f"| batch {batch}, K = {k} | {ours} | {value:,.0f} | {peer} | {other:,.0f} | "
                             f"{value / other:.1f}× |")
    return "\n".join(lines)


def plot(results, ceiling, path) -> None:
    fig, axes = figure(1, 2, width=6, sharey=True)
    axes = axes[0]
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
