"""Threads on a shared CPU: training throughput per backend and batch size with xpnet's thread choice on
(``--threads auto``) and off (``--threads 0``: the library's own setting), on a quiet machine and with
cores kept busy by other processes -- in fresh processes, in rounds that alternate the settings.

    python benchmarks/threads.py [--backends numpy,torch,jax] [--batches 1,64,1024] [--busy 0,1] [--rounds 5]
                                 [--json out.json]

Each measurement is one fresh Python process: the seeds' network (784-32-32-10 sigmoid, float32) on
MNIST's first rows (8,192 per sample, 60,000 by batch), one untimed epoch, then the median samples/s of
two timed epochs (``fit``'s own figure: the training loop only). The busy cores are Python busy loops
(:func:`xpnet.bench.busy_cores`), started before the process and stopped after it. Reported per case:
the median over rounds of each setting, and the median of the same-round ratios of on to off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import fresh  # noqa: E402

ROWS = {1: 8192}  # per sample; every batch size above: 60,000
SETTINGS = {"on": "auto", "off": "0"}


def measure(backend: str, batch: int, threads: str) -> dict:
    import xpnet
    from xpnet import datasets

    n = ROWS.get(batch, 60000)
    X, y, _, _ = datasets.prepare(datasets.load_mnist(), dtype="float32")
    net = xpnet.MLP("784-32-32-10", activation="sigmoid", backend=backend, seed=0)
    Xd = net.inputs(X[:n])
    chosen, seen = None if threads == "auto" else int(threads), []
    rates = [net.fit(Xd, y[:n], epochs=1, lr=0.01, batch_size=batch, shuffle=False, threads=chosen, progress=False,
                     on_epoch=lambda r: seen.append(net.backend.thread_count()))[0]["samples_per_second"]
             for _ in range(3)][1:]
    return {"samples_per_second": statistics.median(rates), "threads": seen[-1]}  # read while training ran


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,torch,jax")
    parser.add_argument("--batches", default="1,64,1024")
    parser.add_argument("--busy", default="0,1", help="busy cores, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.one[2])))
        return 0
    from xpnet.bench import busy_cores

    cases = [(b, int(n), int(k)) for b in args.backends.split(",") for n in args.batches.split(",")
             for k in args.busy.split(",")]
    found = {c: {s: [] for s in SETTINGS} for c in cases}
    for r in range(args.rounds):
        for case in cases:
            backend, batch, busy = case
            for setting in (list(SETTINGS) if r % 2 == 0 else list(SETTINGS)[::-1]):
                with busy_cores(busy):
                    found[case][setting].append(fresh(__file__, backend, batch, SETTINGS[setting]))
            print(f"round {r + 1}: {case} done", file=sys.stderr, flush=True)
    print(f"median samples/s of {args.rounds} rounds, fresh processes; on: --threads auto, off: --threads 0\n")
    print("| backend | batch | busy cores | threads on | samples/s on | threads off | samples/s off | on / off (range) |")
    print("|---|---|---|---|---|---|---|---|")
    for case, runs in found.items():
        on = [m["samples_per_second"] for m in runs["on"]]
        off = [m["samples_per_second"] for m in runs["off"]]
        ratios = [a / b for a, b in zip(on, off)]
        print(f"| {case[0]} | {case[1]} | {case[2]} | {runs['on'][0]['threads']} | {statistics.median(on):,.0f} | "
              f"{runs['off'][0]['threads']} | {statistics.median(off):,.0f} | {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) |")
    if args.json:
        Path(args.json).write_text(json.dumps({" ".join(map(str, c)): r for c, r in found.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
