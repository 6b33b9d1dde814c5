"""A dependency-free progress bar for long loops (epochs, downloads, benchmarks)."""

from __future__ import annotations

import sys
import time


def duration(seconds: float) -> str:
    """``seconds`` as a person says it: ``45 s``, ``2 min 10 s``, ``1 h 5 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Progress:
    """``with Progress(total, "epoch 1") as bar: bar.update(n)`` draws ``label [####----] 40% ...`` and,
    once a tenth of the work is done, the time left at the rate so far.

    Drawn on stderr, only when it is a terminal (or ``enabled=True``), at most ten times a second.
    ``write(line)`` prints a line above the bar. ``total`` may change as the work turns out larger or
    smaller than planned.
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
        frac = min(self.done / max(self.total, 1), 1.0)
        rate = self.done / max(now - self.start, 1e-9)
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        left = f" {duration((self.total - self.done) / rate)} left" if frac >= 0.1 and rate > 0 and frac < 1 else ""
        self.stream.write(f"\r{self.label} [{bar}] {100 * frac:3.0f}% {self.done}/{self.total} {rate:,.0f} "
                          f"{self.unit}/s{left}   ")
        self.stream.flush()

    def write(self, line: str) -> None:
        """``line`` on its own line, the bar drawn again below it."""
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(line + "\n")
        if self.enabled:
            self._draw(time.perf_counter())
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
