"""Where ``xpnet bench`` measures: each implementation in a process of its own, so that no other library's
threads or workers run beside it (in one process, a library's thread pools and workers left running
slowed the next case down 50-140x).

A *pool* prepares a benchmark case for an implementation (builds its learner, calibrates it, returns what
it found), times one round of it (``round``: seconds of one pass, measured where the learner runs, after
which the process waits until its own threads are quiet, ``settle`` -- a BLAS or OpenMP pool spins a
while after its last call, and would slow the next implementation's round), releases it, or runs a
time-to-accuracy case. Two pools have the same methods:

- :class:`Local`: in this process (``xpnet bench --in-process``; what every worker runs);
- :class:`Processes`: one worker process per implementation (``python -m xpnet.workers``), started on
  first use, each with the data from files the pool writes once (a worker loads nothing else), talking
  JSON lines over its standard input and output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import bench, spec
from .errors import Unavailable, XpnetError

#: How long a process waits at most, after a round, for its own threads to stop using the CPU.
SETTLE_SECONDS = 0.5
#: The CPU seconds per 10 ms below which a process counts as quiet (a fifth of one core).
QUIET_CPU = 0.002


def settle(limit: float = SETTLE_SECONDS) -> float:
    """Wait until this process's threads use less than a fifth of a core (measured over 10 ms), at most
    ``limit`` seconds; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        c0 = time.process_time()
        time.sleep(0.01)
        if time.process_time() - c0 < QUIET_CPU:
            break
    return time.perf_counter() - t0


class _Counted:
    """A learner whose passes (``train`` calls) are counted: what a record reports as ``passes``."""

    def __init__(self, learner):
        self.learner, self.passes = learner, 0

    def __getattr__(self, name):
        return getattr(self.learner, name)

    def train(self, start, stop):
        self.passes += 1
        return self.learner.train(start, stop)


class Local:
    """Measurements in this process, one learner per implementation at a time, on ``data`` (a
    :class:`xpnet.spec.Arrays`, or a callable ``dtype -> Arrays`` that loads it)."""

    def __init__(self, data):
        self.data, self.held, self._loaded = data, {}, {}

    def arrays(self, dtype: str):
        if not callable(self.data):
            return self.data
        if dtype not in self._loaded:
            self._loaded = {dtype: self.data(dtype)}  # one dtype at a time: the cases come grouped by dtype
        return self._loaded[dtype]

    def prepare(self, case: "bench.Case") -> dict:
        """Build ``case``'s learner, set its threads and size its rounds (:func:`xpnet.bench.calibrate`,
        which also warms it up; or one untimed pass of ``case.n``): what the record says of it
        (``samples_per_round``, ``device``, ``threads``, ``passes``, ``ran_in_dtype``), or ``skipped``."""
        self.release(case.implementation)
        data = self.arrays(case.dtype)
        try:
            learner = _Counted(bench.make_learner(case.implementation, bench.case_run(case, len(data.y)), data,
                                                  case.models))
        except Unavailable as exc:
            return {"skipped": str(exc)}
        threads = bench.learner_threads(learner)
        count = threads.__enter__()
        try:
            if case.n is None:
                n = bench.calibrate(learner, bench.resolve_batch(case.batch_size, len(data.y)), len(data.y),
                                    case.target, case.min_samples)
            else:
                n = case.n
                learner.start_epoch(1)
                learner.train(0, n)
            settle()
        except BaseException:
            threads.__exit__(*sys.exc_info())
            raise
        self.held[case.implementation] = (learner, n, threads)
        info = {"samples_per_round": n, "device": str(getattr(learner, "device", "cpu")), "threads": count,
                "passes": learner.passes}
        if getattr(learner, "dtype", case.dtype) != case.dtype:  # a learner with a dtype of its own (the seeds' loop)
            info["ran_in_dtype"] = learner.dtype
        return info

    def round(self, implementation: str, quiet: bool = True) -> dict:
        """One timed pass of the prepared case: ``seconds`` (the pass alone) and ``passes`` so far; then
        (``quiet``) the wait until this process's threads are quiet (:func:`settle`)."""
        learner, n, _ = self.held[implementation]
        t0 = time.perf_counter()
        learner.train(0, n)
        seconds = time.perf_counter() - t0
        if quiet:
            settle()
        return {"seconds": seconds, "passes": learner.passes}

    def settle(self, implementation: str) -> float:
        return settle()

    def release(self, implementation: str) -> None:
        held = self.held.pop(implementation, None)
        if held is not None:
            held[2].__exit__(None, None, None)

    def to_accuracy(self, case: "bench.Case", targets, max_seconds: float, run: dict) -> dict:
        """:func:`xpnet.bench.time_to_accuracy` of ``case`` trained as ``run`` (:meth:`xpnet.spec.Run.to_dict`)
        says, or ``skipped``."""
        data = self.arrays(case.dtype)
        try:
            learner = bench.make_learner(case.implementation, spec.Run.from_dict(run), data)
        except Unavailable as exc:
            return {"skipped": str(exc)}
        return bench.time_to_accuracy(learner, targets, len(data.y), max_seconds=max_seconds)

    def close(self) -> None:
        for implementation in list(self.held):
            self.release(implementation)


# -- worker processes ------------------------------------------------------------------------------
class WorkerFailed(XpnetError):
    """A worker process ended, or answered with an error."""


class Worker:
    """One worker process measuring for one implementation: ``call(op, **arguments)`` sends a request and
    returns its answer."""

    def __init__(self, data_dir: Path, env: dict | None = None):
        self.log = tempfile.TemporaryFile(mode="w+")
        package = str(Path(__file__).resolve().parent.parent)  # where this xpnet lives, whatever sys.path says
        paths = [package, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        self.proc = subprocess.Popen([sys.executable, "-m", "xpnet.workers", str(data_dir)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1,
                                     env={**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(paths)})

    def call(self, op: str, **arguments):
        try:
            self.proc.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise WorkerFailed(f"the worker process ended (exit status {self.proc.wait()}): {self._last_error()}")
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerFailed(answer["error"])
        return answer["result"]

    def _last_error(self) -> str:
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().splitlines() if line.strip()]
        return lines[-1] if lines else "it said nothing"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Processes:
    """One worker process per implementation, started on first use; the data is written once, for every
    dtype asked, to files in a folder of the pool's own (``data``: as :class:`Local` takes it)."""

    def __init__(self, data, env: dict | None = None):
        self.data, self.env, self.workers = data, env, {}
        self._dir = tempfile.TemporaryDirectory(prefix="xpnet-bench-")
        self.dir, self._written = Path(self._dir.name), set()

    def _write(self, dtype: str) -> None:
        if dtype in self._written:
            return
        arrays = self.data(dtype) if callable(self.data) else self.data
        for name in ("X", "y", "X_test", "y_test"):
            a = np.asarray(getattr(arrays, name))
            np.save(self.dir / f"{dtype}-{name}.npy", a.astype(dtype) if a.dtype.kind == "f" else a)
        self._written.add(dtype)

    def worker(self, implementation: str) -> Worker:
        if implementation not in self.workers:
            self.workers[implementation] = Worker(self.dir, self.env)
        return self.workers[implementation]

    def start(self, implementations, dtype: str) -> None:
        """Start the workers of ``implementations`` at once (their imports overlap), the data of ``dtype``
        written for them."""
        self._write(dtype)
        for implementation in implementations:
            self.worker(implementation)

    def prepare(self, case: "bench.Case") -> dict:
        self._write(case.dtype)
        return self._call(case.implementation, "prepare", case=dataclasses.asdict(case))

    def round(self, implementation: str, quiet: bool = True) -> dict:
        return self._call(implementation, "round", implementation=implementation, quiet=quiet)

    def settle(self, implementation: str) -> float:
        return self._call(implementation, "settle", implementation=implementation)

    def release(self, implementation: str) -> None:
        if implementation in self.workers:
            self._call(implementation, "release", implementation=implementation)

    def to_accuracy(self, case: "bench.Case", targets, max_seconds: float, run: dict) -> dict:
        self._write(case.dtype)
        return self._call(case.implementation, "to_accuracy", case=dataclasses.asdict(case), targets=list(targets),
                          max_seconds=max_seconds, run=run)

    def _call(self, name, op, **arguments):
        worker = self.worker(name)
        try:
            return worker.call(op, **arguments)
        except WorkerFailed as exc:
            if worker.proc.poll() is not None:  # it ended: the next case of it starts a fresh worker
                self.workers.pop(name).close()
            raise WorkerFailed(f"{name}: {exc}") from None

    def stop(self, implementation: str) -> None:
        worker = self.workers.pop(implementation, None)
        if worker is not None:
            worker.close()

    def close(self) -> None:
        for implementation in list(self.workers):
            self.stop(implementation)
        self._dir.cleanup()


# -- measuring: cells, rounds, the alone check ------------------------------------------------------
def cells(implementations_, cases, rounds=5, target=0.25, optimizer=None, threads=None, min_samples=bench.MIN_SAMPLES):
    """Every implementation on every case ``(net, dtype, batch_size, models)``: one
    :class:`~xpnet.workers.Case` each, grouped by case (the cells whose rounds interleave)."""
    opt = None if optimizer is None else dataclasses.asdict(optimizer)
    return [[bench.Case(impl, net, dtype, batch, models, opt, threads, target, min_samples) for impl in implementations_]
            for net, dtype, batch, models in cases]


def measure_cells(pool, group, rounds=5, deadline=None, on_round=None) -> list[dict]:
    """The cells of one case (``group``: :class:`~xpnet.workers.Case`, one per implementation) measured in
    ``pool`` (:mod:`xpnet.workers`): each prepared (calibrated, warmed up), then ``rounds`` rounds
    interleaved across the implementations, the order rotated every round (as asv does: drift hits every
    side alike); a cell whose rounds spread more than :data:`bench.UNSTABLE_SPREAD` is measured again, and
    marked ``unstable`` if it still does. Past ``deadline`` (a :func:`time.monotonic` instant) no further
    round starts. ``on_round(case)`` is called after each round. One record per cell, in order."""
    infos = {}
    for c in group:
        try:
            infos[c.implementation] = pool.prepare(c)
        except XpnetError as exc:  # a worker that failed: the cell says so, the others are measured
            infos[c.implementation] = {"failed": str(exc)}
    live = [c for c in group if "samples_per_round" in infos[c.implementation]]
    rates = _interleaved(pool, live, infos, rounds, deadline, on_round)
    again = [c for c in live if rates.get(c.implementation) and len(rates[c.implementation]) > 1
             and bench.summary(rates[c.implementation])["spread"] > bench.UNSTABLE_SPREAD]
    first = {}
    if again and (deadline is None or time.monotonic() < deadline):
        first = {c.implementation: rates[c.implementation] for c in again}
        rates.update(_interleaved(pool, again, infos, rounds, deadline, on_round))
    for c in group:
        pool.release(c.implementation)
    records = []
    for c in group:
        info = infos[c.implementation]
        base = _base(c)
        if "skipped" in info or "failed" in info:
            records.append({**base, **info})
            continue
        if not rates.get(c.implementation):  # a worker that failed in its rounds
            records.append({**base, "failed": info.get("failed", "no round ran")})
            continue
        stats = bench.summary(rates[c.implementation])
        record = {**base, **stats, **info, "passes": info["passes"] + len(stats["rounds"])
                  + len(first.get(c.implementation, ())), "remeasured": c.implementation in first,
                  "unstable": stats["spread"] > bench.UNSTABLE_SPREAD}
        if c.implementation in first:
            record["first_rounds"] = first[c.implementation]
        records.append(record)
    return records


def _interleaved(pool, live, infos, rounds, deadline, on_round) -> dict:
    """``rounds`` rounds of each cell of ``live``, one cell after another within a round, the order
    rotated every round: samples/s per implementation."""
    rates = {c.implementation: [] for c in live}
    for r in range(rounds if live else 0):
        if r and deadline is not None and time.monotonic() >= deadline:
            break
        for c in live[r % len(live):] + live[: r % len(live)]:
            name = c.implementation
            if name not in rates:
                continue
            try:
                seconds = pool.round(name)["seconds"]
            except XpnetError as exc:
                infos[name] = {**infos[name], "failed": str(exc)}
                rates.pop(name)
                continue
            rates[name].append(infos[name]["samples_per_round"] / seconds)
            if on_round is not None:
                on_round(c)
    return rates


def _base(c) -> dict:
    base = {"implementation": c.implementation, "net": c.net, "dtype": c.dtype, "batch_size": c.batch_size,
            "layers": bench.NETS[c.net].layers if c.net in bench.NETS else None}
    if c.models is not None:
        base["models"] = c.models
    if c.optimizer is not None:
        base["optimizer"] = bench.described(spec.Optimizer(**c.optimizer))
    return base


def measure_case(implementation, net, dtype, batch_size, data, rounds=5, target=0.25, models=None,
                 optimizer=None, min_samples=bench.MIN_SAMPLES, deadline=None, threads=None) -> dict:
    """One throughput cell measured in this process (:class:`xpnet.workers.Local`): the record of
    :func:`measure_cells`, or ``skipped`` with the reason. ``optimizer`` (a :class:`xpnet.spec.Optimizer`;
    default plain SGD at :data:`LR`) is what the implementation trains with; ``min_samples`` is
    :func:`calibrate`'s shortest pass; ``threads`` is xpnet's thread choice (``Training.threads``: ``None``
    auto, 0 the library's own, N)."""
    (group,) = cells([implementation], [(net, dtype, batch_size, models)], rounds, target, optimizer, threads,
                     min_samples)
    pool = Local(data)
    try:
        (result,) = measure_cells(pool, group, rounds, deadline)
    finally:
        pool.close()
    return result


def run_suite(implementations_, cases, data=None, rounds=5, target=0.25, on_result=None, optimizer=None,
              threads=None, isolate=True, check_alone=False, on_round=None) -> list[dict]:
    """Measure every implementation on every case ``(net, dtype, batch_size, models)``, each
    implementation in a process of its own (``isolate``; otherwise all in this one), the rounds of a
    case's cells interleaved (:func:`measure_cells`); ``check_alone`` measures each cell again in a fresh
    process with no other implementation started (:func:`alone`). Skipped cells carry a reason.
    ``on_result(record)`` is called as each cell is measured, ``on_round(case)`` after each round."""
    groups = cells(implementations_, cases, rounds, target, optimizer, threads)
    source = bench.load_training_set if data is None else data
    results = []
    with pool(source, isolate) as workers:
        if isolate and groups:
            workers.start(implementations_, groups[0][0].dtype)
        for group in groups:
            for record in measure_cells(workers, group, rounds, on_round=on_round):
                results.append(record)
                if on_result is not None:
                    on_result(record)
    if check_alone:
        alone(results, groups, source, rounds, on_round)
    return results


def alone(results, groups, data, rounds=5, on_round=None, pools=None) -> None:
    """Each measured cell of ``results`` measured again in a fresh worker process of its implementation,
    started when no other implementation's is (its rounds of the same samples, one implementation at a
    time): ``alone`` in each record holds that median and ``alone_ratio`` the ratio of the cell's median
    to it. A cell off by more than :data:`bench.ALONE_FACTOR` either way is measured alone once more (the
    machine's load may have changed in between); if it is still that far off, it is marked ``differs``
    and ``unstable``: its number could not be reproduced. ``pools(data)`` makes each implementation's
    pool (default :class:`Processes`)."""
    by_cell = {(r["implementation"], r["net"], r["dtype"], r["batch_size"], r.get("models")): r for r in results}
    for implementation in dict.fromkeys(c.implementation for group in groups for c in group):
        workers = (pools or Processes)(data)
        try:
            for group in groups:
                for c in group:
                    record = by_cell.get((c.implementation, c.net, c.dtype, c.batch_size, c.models))
                    if c.implementation != implementation or record is None or "samples_per_round" not in record:
                        continue
                    for attempt in range(2):
                        (measured,) = measure_cells(workers, [c.with_n(record["samples_per_round"])], rounds,
                                                    on_round=on_round)
                        if "samples_per_second" not in measured:
                            break
                        ratio = record["samples_per_second"] / measured["samples_per_second"]
                        record["alone"] = {k: measured[k] for k in ("samples_per_second", "min", "max", "spread",
                                                                    "unstable")}
                        record["alone_ratio"], record["alone_attempts"] = ratio, attempt + 1
                        record["differs"] = not 1 / bench.ALONE_FACTOR <= ratio <= bench.ALONE_FACTOR
                        if not record["differs"]:
                            break
                    if record.get("differs"):
                        record["unstable"] = True
        finally:
            workers.close()


def expected_seconds(groups, rounds: int, target: float, busy_cores: int = 0) -> float:
    """About how long :func:`run_suite` takes for ``groups`` (:func:`cells`): each cell's rounds and about
    three more (its calibration and warm-up, and the rounds of the cells measured twice), plus 1.5 s per
    implementation to start its process; beside ``busy_cores`` busy cores, as much longer as the cores
    left are fewer (measured on 2 cores, 2026-12-05: 157 s quiet against 158 s estimated, 281 s beside
    one busy core against 316 s). Cells of the GPU implementations on a machine without one take no
    time."""
    implementations_ = {c.implementation for group in groups for c in group}
    gpu = os.path.exists("/dev/nvidia0")  # an estimate: a GPU cell where there is none is skipped at once
    here = [c for group in groups for c in group if gpu or "@" not in c.implementation]
    quiet = len(here) * (rounds + 3) * target + 1.5 * len(implementations_)
    cores = os.cpu_count() or 1
    return quiet * cores / max(cores - busy_cores, 1)


@contextlib.contextmanager
def pool(data, isolate: bool = True, env: dict | None = None):
    """A :class:`Processes` pool (``isolate``) or a :class:`Local` one, closed when the block ends."""
    made = Processes(data, env) if isolate else Local(data)
    try:
        yield made
    finally:
        made.close()


def _serve(data_dir: str) -> int:
    """A worker's loop: requests on standard input, answers on what was standard output (anything a
    library prints goes to standard error instead)."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    folder = Path(data_dir)

    def load(dtype):
        return spec.Arrays(*(np.load(folder / f"{dtype}-{name}.npy") for name in ("X", "y", "X_test", "y_test")))

    local = Local(load)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op == "prepare":
                result = local.prepare(bench.Case(**request["case"]))
            elif op == "round":
                result = local.round(request["implementation"], request.get("quiet", True))
            elif op == "settle":
                result = local.settle(request["implementation"])
            elif op == "release":
                result = local.release(request["implementation"])
            elif op == "to_accuracy":
                result = local.to_accuracy(bench.Case(**request["case"]), request["targets"], request["max_seconds"],
                                           request["run"])
            else:
                raise ValueError(f"unknown request {op!r}")
            answers.write(json.dumps({"result": result}) + "\n")
        except Exception as exc:  # said to the parent in one line, and the worker goes on
            answers.write(json.dumps({"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}) + "\n")
    local.close()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1]))
