"""A dependency-free progress bar for long loops (epochs, downloads, benchmarks)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "epoch 1") as bar: bar.update(n)`` draws ``label [####----] 40% ...``.

    Drawn on stderr, only when it is a terminal (or ``enabled=True``), at most ten times a second.
    """

    def __init__(self, total: int, label: str = "", enabled: bool | None = None, unit: str = "samples", stream=None):
        self.total, self.label, self.unit = max(int(total), 1), label, unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self.start = self._last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0)
        rate = self.done / max(now - self.start, 1e-9)
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        self.stream.write(f"\r{self.label} [{bar}] {100 * frac:3.0f}% {self.done}/{self.total} {rate:,.0f} {self.unit}/s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
