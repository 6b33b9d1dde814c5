"""Turn benchmark JSON into markdown tables and a log-log PNG plot.

    python benchmarks/report.py RUN.json [--png docs/benchmarks.png] [--compare OTHER.json]

RUN.json is what `python -m pytest benchmarks --benchmark-json=RUN.json` or `xpnet bench --json` wrote.
Tables: one per network and dtype; rows are implementations, columns batch sizes, cells the median
samples/s and the ratio to the same implementation at batch 1. With --compare, a second run of the same
cases is set beside the first: for each case the ratio of the two medians, against the spread (max/min
of the rounds) each run measured.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys

from common import figure

from xpnet import bench


def load(path) -> list[dict]:
    with open(path) as f:
        data = json.load(f)
    if "benchmarks" in data:  # pytest-benchmark
        return [b["extra_info"] for b in data["benchmarks"] if "samples_per_second" in b.get("extra_info", {})]
    return [r for r in data["results"] if "skipped" not in r]


def tables(results) -> str:
    out = []
    for net in bench.NETS:
        for dtype in ("float32", "float64"):
            if any(r["net"] == net and r["dtype"] == dtype and r.get("models") for r in results):
                out.append(f"**stacks of the {net} net, {dtype}**: median model-samples/s (× ratio to one network)\n\n"
                           + bench.models_table(results, net, dtype) + "\n")
    for net in bench.NETS:
        for dtype in ("float32", "float64"):
            if any(r["net"] == net and r["dtype"] == dtype for r in results):
                model = bench.NETS[net]
                out.append(f"**{net} net ({model.layers}, {model.activation}), {dtype}**: median samples/s "
                           "(× ratio to batch 1)\n\n" + bench.markdown_table(results, net, dtype) + "\n")
    return "\n".join(out)


def _key(r):
    return (r["implementation"], r["net"], r["dtype"], str(r["batch_size"])) + ((f"K={r['models']}",) if r.get("models") else ())


def compare(first, second) -> str:
    """Per case: second median / first median, and each run's own max/min spread."""
    a, b = {_key(r): r for r in first}, {_key(r): r for r in second}
    rows, ratios, spreads = [], [], []
    for key in a:
        if key not in b:
            continue
        ratio = b[key]["samples_per_second"] / a[key]["samples_per_second"]
        spread = max(r["max"] / r["min"] for r in (a[key], b[key]))
        ratios.append(ratio)
        spreads.append(spread)
        inside = min(a[key]["max"], b[key]["max"]) >= max(a[key]["min"], b[key]["min"])
        rows.append((key, ratio, spread, inside))
    if not rows:
        return "no common cases"
    overlap = sum(r[3] for r in rows)
    devs = sorted(abs(math.log(r)) for r in ratios)

    def pct(d):
        return f"{math.exp(d) - 1:.0%}"

    lines = [
        f"{len(rows)} common cases. Ratio of medians (second / first): median {statistics.median(ratios):.2f}, "
        f"range {min(ratios):.2f}-{max(ratios):.2f}; a case's two medians differ by {pct(statistics.median(devs))} "
        f"(median over cases), by at most {pct(devs[int(0.9 * (len(devs) - 1))])} in 90% of cases, by "
        f"{pct(devs[-1])} at worst. Within-run spread (max/min of a case's rounds): median "
        f"{statistics.median(spreads):.2f}. Cases whose [min, max] ranges overlap between the runs: "
        f"{overlap} of {len(rows)}.",
        "",
        "| case | second / first | spread (max/min) | ranges overlap |",
        "|---|---|---|---|",
    ]
    for key, ratio, spread, inside in sorted(rows, key=lambda r: -abs(r[1] - 1))[:10]:
        lines.append(f"| {' '.join(key)} | {ratio:.2f} | {spread:.2f} | {'yes' if inside else 'no'} |")
    return "\n".join(lines)


def plot(results, path) -> None:
    results = [r for r in results if not r.get("models")]  # stacks have their own plot (benchmarks/stacks.py)
    panels = [(n, d) for n in bench.NETS for d in ("float32", "float64")
              if any(r["net"] == n and r["dtype"] == d for r in results)]
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = figure(rows, cols, sharey=True)
    names = list(dict.fromkeys(r["implementation"] for r in results))
    style = {name: (f"C{i % 10}", "osD^v<>ph*"[i % 10]) for i, name in enumerate(names)}
    for ax, (net, dtype) in zip(axes.flat, panels):
        for name in names:
            rows_ = sorted((r for r in results if r["implementation"] == name and r["net"] == net and r["dtype"] == dtype),
                           key=lambda r: bench.resolve_batch(r["batch_size"], 60000))
            if not rows_:
                continue
            x = [bench.resolve_batch(r["batch_size"], 60000) for r in rows_]
            y = [r["samples_per_second"] for r in rows_]
            err = [[m - r["min"] for m, r in zip(y, rows_)], [r["max"] - m for m, r in zip(y, rows_)]]
            colour, marker = style[name]
            ax.errorbar(x, y, yerr=err, marker=marker, ms=5, capsize=2, label=name, color=colour)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{net} net ({bench.NETS[net].layers}, {bench.NETS[net].activation}), {dtype}", fontsize=10)
        ax.set_xlabel("batch size (60000 = full batch)")
        ax.grid(True, which="both", alpha=0.3)
    for row in axes:
        row[0].set_ylabel("training samples / s\n(median of rounds; bars: min-max)")
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(len(handles), 4), fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="benchmark JSON (pytest-benchmark or xpnet bench --json)")
    parser.add_argument("--png", help="write the throughput plot here")
    parser.add_argument("--compare", help="a second run's JSON: report how the two agree")
    args = parser.parse_args(argv)
    try:
        results = load(args.run)
        other = load(args.compare) if args.compare else None
    except (OSError, ValueError, KeyError) as exc:
        print(f"report.py: error: cannot read benchmark JSON: {exc}", file=sys.stderr)
        return 2
    print(tables(results))
    if other is not None:
        print(compare(results, other))
    if args.png:
        plot(results, args.png)
        print(f"\nplot written to {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
