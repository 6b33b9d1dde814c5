"""Dask: sweeps on a real LocalCluster of worker processes (equal to the in-process sweep, surviving a
killed worker and a killed client), scikit-learn's grid search on it, and the kernels on dask arrays."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="Dask is not installed (pip install 'xpnet[distributed]')")

import xpnet  # noqa: E402
from xpnet import kernels, spec  # noqa: E402
from xpnet import sweep as sw  # noqa: E402
from xpnet.cli import main  # noqa: E402
from xpnet.distributed import connect, run  # noqa: E402

from helpers import assert_same_weights, random_problem  # noqa: E402

SWEEP = ["sweep", "--digits", "1,5", "--layers", "784-8-1", "--loss", "logistic", "--activation", "tanh",
         "--dtype", "float64", "--epochs", "1", "--lr", "0.01,0.05", "--seed", "0-1", "--batch-size", "1,32",
         "--stack-size", "2", "--no-progress"]
#: What may differ between two runs of the same configurations: the clock, and the size of the stack.
TIMING = ("seconds", "samples_per_second", "stack_size")


def _same(records):
    """Records without their timings, keyed by settings."""
    def clean(r):
        r = {k: v for k, v in r.items() if k not in TIMING}
        r["history"] = [{k: v for k, v in h.items() if k not in TIMING} for h in r["history"]]
        return r

    return {tuple(str(r[k]) for k in sw.VARIED): clean(r) for r in records}


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "r.jsonl"
    assert main([*SWEEP, "--out", str(out), "--json"]) == 0
    return sw.load_records(out)


def test_a_local_cluster_gives_the_in_process_records(in_process, tmp_path, capfd):
    out = tmp_path / "r.jsonl"
    assert main([*SWEEP, "--workers", "2", "--out", str(out)]) == 0
    err = capfd.readouterr().err
    assert "a local Dask cluster of 2 worker process(es); dashboard http://127.0.0.1:" in err
    assert "Couldn't detect a suitable IP address" not in err
    records = sw.load_records(out)
    assert len(records) == 8 and _same(records) == _same(in_process)


def test_a_killed_worker_costs_only_its_stacks(in_process):
    """A worker is killed while it runs a stack (the stack said it had started and had not said it had
    finished): Dask runs that stack again elsewhere, and the records equal the in-process ones."""
    grid = spec.grid(lr=[0.01, 0.05], seed=[0, 1], layers="784-8-1", activation="tanh", batch_size=[1, 32],
                     epochs=1, loss="logistic", dtype="float64", digits="1,5")
    stacks = sw.plan(spec.expand(grid), 12000, stack_size=1)  # eight tasks for two workers
    killed = []
    with connect(workers=2) as (client, _):
        started, finished = distributed.Queue("started"), distributed.Queue("finished")

        def announced(index, members, data):  # sent by value: the workers need not import this file
            distributed.Queue("started").put((index, os.getpid()))
            records = sw.run_stack_task(members, data)
            distributed.Queue("finished").put(index)
            return records

        def drain(queue):
            return queue.get(batch=True)

        running, done = {}, set()

        def kill_a_running_stack(records):
            if killed:
                return
            running.update(dict(drain(started)))
            done.update(drain(finished))
            busy = {i: pid for i, pid in running.items() if i not in done}
            assert busy, "no stack was running when the first one finished"
            index, pid = next(iter(busy.items()))
            os.kill(pid, signal.SIGKILL)
            killed.append(index)

        results = run(client, announced, [(i, members, grid.data) for i, members in enumerate(stacks)],
                      kill_a_running_stack, progress=False)
        restarted = [i for i, _ in drain(started) if i in killed]
    assert killed and restarted == killed  # the killed stack started again, elsewhere
    records = [r for stack in results for r in stack]
    assert len(records) == 8 and _same(records) == _same(in_process)


def test_a_killed_client_resumes_where_its_records_end(in_process, tmp_path):
    out = tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "xpnet.cli", *SWEEP, "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while not (out.exists() and out.read_text().count("\n") >= 2):  # the event: the first stack's records
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the client and the cluster it started
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    first = sw.load_records(out)
    assert 2 <= len(first) < 8  # one or more stacks of two, not all four
    assert main([*SWEEP, "--out", str(out), "--resume"]) == 0
    records = sw.load_records(out)
    assert len(records) == 8 and _same(records) == _same(in_process)


def test_arrays_from_python_are_sent_to_the_workers_once(mnist):
    """sweep.sweep(grid, arrays, client=...) scatters the arrays (they have no description a worker could
    load) and gives the records of the sweep in this process."""
    X, y, X_test, y_test = mnist
    data = (X[:300], y[:300], X_test[:100], y_test[:100])
    grid = spec.grid(lr=[0.1, 0.3], seed=[0, 1], layers="784-8-10", batch_size=[1, 16], epochs=1, dtype="float64",
                     validation=0.2, split_seed=1)
    here = sw.sweep(grid, data, stack_size=2, progress=False)
    with connect(workers=2) as (client, _):
        there = sw.sweep(grid, data, client=client, stack_size=2, progress=False)
    assert len(there) == 8 and _same(there).keys() == _same(here).keys()
    for a, b in zip(here, there):  # unpickled arrays may be aligned otherwise: BLAS rounds the last bit apart
        assert a["test_accuracy"] == b["test_accuracy"] and a["val_accuracy"] == b["val_accuracy"]
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-12)
        assert [h["val_loss"] for h in a["history"]] == pytest.approx([h["val_loss"] for h in b["history"]], rel=1e-12)


def test_dask_mistakes_are_one_line(capsys, monkeypatch):
    code = main([*SWEEP, "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err and err.count("\n") == 1
    assert main([*SWEEP, "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "not both" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    assert main([*SWEEP, "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "needs the 'distributed' package" in err and "pip install 'xpnet[distributed]'" in err


def test_grid_search_under_joblibs_dask_backend(mnist):
    """scikit-learn users get the same cluster with no code of xpnet's: joblib's Dask backend."""
    pytest.importorskip("sklearn")
    from joblib import parallel_config
    from sklearn.model_selection import GridSearchCV

    from xpnet import datasets
    from xpnet.sklearn import MLPClassifier

    X, y, _, _ = datasets.prepare(datasets.load_mnist(), digits="3,9")
    grid = {"learning_rate_init": [0.001, 0.01], "hidden_layer_sizes": [(8,), (16,)]}
    alone = GridSearchCV(MLPClassifier(max_iter=2, random_state=0), grid, cv=2).fit(X[:600], y[:600])
    with connect(workers=2) as (client, _), parallel_config(backend="dask"):
        on_dask = GridSearchCV(MLPClassifier(max_iter=2, random_state=0), grid, cv=2).fit(X[:600], y[:600])
    assert on_dask.best_params_ == alone.best_params_
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"], alone.cv_results_["mean_test_score"])


# -- the kernels on dask arrays --------------------------------------------------------------------
def test_dask_gradients_equal_numpys():
    X, y = random_problem(30, 4, n=25000, seed=2)  # three chunks of rows
    got = {}
    for backend in ("numpy", "dask"):
        net = xpnet.MLP([30, 16, 16, 4], activation="tanh", seed=1, backend=backend, dtype="float64")
        Xd, T = net.inputs(X), net.backend.asarray(net.targets(y), "float64")
        loss, grads = kernels.loss_and_gradients(net.xp, net.network, net.params, Xd, T)
        got[backend] = [net.backend.to_host(loss)] + [net.backend.to_host(g) for pair in grads for g in pair]
        if backend == "dask":
            assert len(Xd.chunks[0]) == 3
    for a, b in zip(got["dask"], got["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


def test_full_batch_training_on_dask_ends_with_numpys_weights():
    X, y = random_problem(30, 4, n=25000, seed=3)
    nets = {}
    for backend in ("numpy", "dask"):
        nets[backend] = xpnet.MLP([30, 16, 4], seed=2, backend=backend, dtype="float64")
        history = nets[backend].fit(X, y, epochs=5, lr=0.5, batch_size=25000, X_test=X[:500], y_test=y[:500],
                                    progress=False)
        assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert_same_weights(nets["dask"].get_weights(), nets["numpy"].get_weights(), "float64")
    np.testing.assert_array_equal(nets["dask"].predict(X[:500]), nets["numpy"].predict(X[:500]))


def test_per_sample_training_on_dask_is_refused():
    X, y = random_problem(30, 4, n=600)
    with pytest.raises(xpnet.ValidationError, match="builds a task graph per step; batch_size must be at least 256"):
        xpnet.MLP([30, 4], backend="dask").fit(X, y, batch_size=1)

