"""Sweeps on a Dask cluster: each stack of a sweep is one Dask task.

Nothing here schedules, retries or talks to another machine itself: Dask's distributed scheduler does.
A sweep's task (:func:`xpnet.sweep.run_stack_task`) is one stack, with the stack's run specifications and where the data comes
from: the specification's :class:`~xpnet.spec.Data` group (a few names), which each worker loads and
prepares itself, once per process (MNIST ships inside the package; Fashion-MNIST comes from the worker's
``--data-dir`` or cache), so no task carries the 188 MB of training images and a task that Dask reruns
elsewhere after a worker died needs nothing from the one that died -- or, for arrays a user passed in,
those arrays scattered to every worker once (:func:`share`).
Needs the ``distributed`` extra: ``pip install "xpnet[distributed]"``.
"""

from __future__ import annotations

import contextlib
import warnings

from .errors import BackendError, XpnetError
from .progress import Progress

#: The warning distributed prints when it cannot probe for a network address offline (its issue 8559).
_OFFLINE_WARNING = "Couldn't detect a suitable IP address"


def _import():
    try:
        import distributed
    except ImportError as exc:
        raise BackendError(f"a sweep on Dask needs the 'distributed' package ({exc.msg}); "
                           "pip install 'xpnet[distributed]'") from None
    return distributed


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None):
    """A Dask client, and a line that says what it is connected to: the scheduler at ``scheduler``
    (``tcp://HOST:PORT``), or a ``LocalCluster`` of ``workers`` worker processes started here (one thread
    each, bound to 127.0.0.1) and closed on exit."""
    distributed = _import()
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.filterwarnings("ignore", message=_OFFLINE_WARNING, category=RuntimeWarning)
        if scheduler is not None:
            try:
                client = stack.enter_context(distributed.Client(scheduler, timeout="5s"))
            except (OSError, TimeoutError) as exc:
                raise XpnetError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else 'no answer'})") from None
            where = f"Dask scheduler {scheduler} with {len(client.scheduler_info()['workers'])} worker(s)"
        else:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:0"))
            client = stack.enter_context(distributed.Client(cluster))
            where = f"a local Dask cluster of {workers} worker process(es); dashboard {cluster.dashboard_link}"
        yield client, where


def share(client, data):
    """``data`` (host arrays) sent to every worker once; what :func:`run` takes as its source."""
    return client.scatter({"xpnet-sweep-data": data}, broadcast=True)["xpnet-sweep-data"]


def run(client, task, arguments, on_result=None, progress: bool | None = None, unit: str = "stacks") -> list:
    """``task(*a)`` for each tuple ``a`` of ``arguments`` as a Dask task on ``client``'s cluster; the
    results in ``arguments``' order. ``on_result`` is called with each result as its task finishes (in
    finishing order). A worker that dies costs only the tasks it was running, which Dask runs again on
    another worker."""
    distributed = _import()
    futures = {client.submit(task, *a, pure=False): i for i, a in enumerate(arguments)}
    results = {}
    try:
        with Progress(len(futures), "sweep", enabled=progress, unit=unit) as bar:
            for future in distributed.as_completed(futures):
                result = future.result()  # an error in a task (or a task that kills workers) raises here
                results[futures[future]] = result
                bar.update(1)
                if on_result is not None:
                    on_result(result)
    except distributed.KilledWorker as exc:
        raise XpnetError(f"a task killed Dask workers again and again ({exc}); it was given up") from None
    finally:
        client.cancel(list(futures))
    return [results[i] for i in range(len(futures))]
