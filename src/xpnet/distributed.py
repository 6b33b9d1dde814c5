"""Sweeps on a Dask cluster: each stack of a sweep is one Dask task.

Nothing here schedules, retries or talks to another machine itself: Dask's distributed scheduler does.
A task is :func:`xpnet.sweep.run_stack_task` with the stack's configurations, what they share
(:class:`~xpnet.sweep.Fixed`) and a description of the data (:class:`~xpnet.sweep.Data`, a few names):
each worker loads and prepares the data itself, once per process (MNIST ships inside the package;
Fashion-MNIST comes from the worker's ``--data-dir`` or cache), so no task carries the 188 MB of training
images, and a task that Dask reruns elsewhere after a worker died needs nothing from the one that died.
Needs the ``distributed`` extra: ``pip install "xpnet[distributed]"``.
"""

from __future__ import annotations

import contextlib
import warnings

from .errors import BackendError, XpnetError
from .progress import Progress
from .sweep import run_stack_task

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


def run(stacks, fixed, spec, client, on_stack=None, progress: bool | None = None, keep_models: bool = False):
    """Train ``stacks`` (lists of configurations, see :func:`xpnet.sweep.plan`) as Dask tasks on
    ``client``'s cluster and return their records, stack by stack, in ``stacks``' order. ``on_stack`` is
    called with each stack's records as it finishes (in finishing order). A worker that dies costs only
    the stacks it was running, which Dask runs again on another worker."""
    distributed = _import()
    futures = {client.submit(run_stack_task, list(members), fixed, spec, keep_models, pure=False): i
               for i, members in enumerate(stacks)}
    results = {}
    try:
        with Progress(len(stacks), "sweep", enabled=progress, unit="stacks") as bar:
            for future in distributed.as_completed(futures):
                records = future.result()  # an error in a task (or a task that kills workers) raises here
                results[futures[future]] = records
                bar.update(1)
                if on_stack is not None:
                    on_stack(records)
    except distributed.KilledWorker as exc:
        raise XpnetError(f"a stack killed Dask workers again and again ({exc}); it was given up") from None
    finally:
        client.cancel(list(futures))
    return [r for i in range(len(stacks)) for r in results[i]]
