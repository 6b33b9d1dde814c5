"""The resident memory of a K = 256 per-sample Adam sweep of the seeds' net over time, trained on the first
N MNIST rows (one epoch; the 10,000 test rows scored): does it grow with the samples trained?

    python benchmarks/sweep_rss.py [N] [--models 256] [--every 5]

Prints the peak RSS, and the RSS sampled every ``--every`` seconds while the sweep runs.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time

from xpnet import spec
from xpnet.sweep import Sweep


def rss_mib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=4000, help="training rows (default 4000)")
    parser.add_argument("--models", type=int, default=256)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    args = parser.parse_args(argv)
    samples, t0 = [], time.time()

    def watch():
        while True:
            samples.append((round(time.time() - t0), rss_mib()))
            time.sleep(args.every)

    threading.Thread(target=watch, daemon=True).start()
    grid = spec.grid(optimizer="adam", seed=list(range(args.models)), epochs=1, dtype="float32")
    full = spec.load_data(grid.data, "float32")
    sweep = Sweep(grid, (full.X[: args.n], full.y[: args.n], full.X_test, full.y_test))
    records = sweep.run(progress=False)
    print(f"{args.models} networks, {args.n} rows: {time.time() - t0:.0f} s, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, median test accuracy "
          f"{sorted(r['test_accuracy'] for r in records)[len(records) // 2]:.4f}")
    print("RSS (s, MiB):", samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
