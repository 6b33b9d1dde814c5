"""The ``xpnet`` command: ``xpnet train | sweep | evaluate | export | plot | gradcheck | bench``.

Each ``cmd_*`` parses, calls the Python API and prints. The run options of ``train`` and ``sweep`` come
from one declaration (:mod:`xpnet.spec`, made into argparse options by :mod:`xpnet.cli.options`), so the
same flag means the same thing in both. User mistakes
(an unknown name, a bad file, a missing backend) print one line on stderr and exit with status 2; a
diverged training run exits with status 3 after saving the last finite weights if asked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import time

import numpy as np

from .. import checks, datasets, optim, spec
from . import options
from ..errors import DivergenceError, ValidationError, XpnetError


# -- train ---------------------------------------------------------------------------------------
def _epoch_line(r) -> str:
    line = f"epoch {r['epoch']:3d}  lr {r['lr']:.3g}  train loss {r['train_loss']:.4f}"
    for name in ("val", "test"):
        if r.get(f"{name}_loss") is not None:
            line += f"  {name} loss {r[f'{name}_loss']:.4f}  {name} acc {100 * r[f'{name}_accuracy']:6.2f}%"
    return line + f"  {r['samples_per_second']:,.0f} samples/s"


def cmd_train(args) -> int:
    from ..io import check_writable
    from ..runs import start
    from ..session import Checkpoint

    run = options.from_args(args)
    if (args.resume or args.checkpoint_every) and not args.save:
        raise ValidationError("--resume and --checkpoint-every need --save PATH (where the checkpoint lives)")
    if args.save:
        check_writable(args.save, "--save")
    progress = False if args.no_progress else None
    data = spec.load_data(run.data, run.placement.dtype, progress=progress)
    run = run.fitted(data.X.shape[1], len(data.classes), len(data.y))
    spec.check_fits(run.model.sizes, data.X.shape[1], len(data.classes))
    recorded = {"input_scaling": data.scaling, "classes": data.classes,
                **({"held_out_rows": data.held_out} if data.held_out is not None else {})}
    checkpoint = Checkpoint(args.save, args.checkpoint_every, recorded) if args.save else None
    session = start([run], data, checkpoint=checkpoint, resume=args.resume)
    scaled = datasets.describe_scaling(data.scaling) if run.data.sha256 else None  # own data: said once
    for note in (data.note, scaled, session.note):
        for line in (note or "").splitlines():
            print(f"xpnet train: {line}", file=sys.stderr)
    if session.finished:
        print(f"xpnet train: {session.finished}", file=sys.stderr)
        return 0
    net = session.model
    initial = session.scores()["test"][0]
    warned_loss, threads = [], []

    def report(records):
        record = records[0]
        threads.append(net.backend.thread_count())  # read while training runs
        if not args.json:
            print(_epoch_line(record), flush=True)
        if record["test_loss"] > 1.5 * initial["loss"] and not warned_loss:
            warned_loss.append(record["epoch"])
            print(f"xpnet train: warning: the test loss rose from {initial['loss']:.3g} before training to "
                  f"{record['test_loss']:.3g}; the learning rate {record['lr']:g} is probably too high", file=sys.stderr)
        if record.get("stopped") and not args.json:
            print(f"xpnet train: early stopping after epoch {record['epoch']}", file=sys.stderr)

    if not args.json:
        print(f"{net!r}\ntraining on {len(data.y)} {run.data.dataset} samples for {run.training.epochs} epoch(s), "
              f"testing on {len(data.y_test)}; "
              f"before {'this run' if session.initial_epoch else 'training'}: test accuracy "
              f"{100 * initial['accuracy']:.2f}%", flush=True)
    status = 0
    try:
        session.train(progress=progress, on_epoch=report)
        final = session.final["test"][0]
    except DivergenceError as exc:
        print(f"xpnet train: {exc}", file=sys.stderr)
        status, final = 3, session.scores()["test"][0]
    if args.save and not args.json:
        print(f"saved {'the last finite ' if status else ''}weights to {args.save}", file=sys.stderr if status else sys.stdout)
    if args.json:
        print(json.dumps({"history": net.state.history[0], "test_accuracy": final["accuracy"], "test_loss": final["loss"],
                          "initial_test_accuracy": initial["accuracy"], "initial_test_loss": initial["loss"],
                          **run.record(), "run": run.to_dict(), "model": net.config(), "input_scaling": data.scaling,
                          "held_out_rows": data.held_out,
                          "trained_with_threads": threads[-1] if threads else None}))
    elif status == 0:
        print(f"test accuracy {100 * final['accuracy']:.2f}%  test loss {final['loss']:.4f}")
    return status


# -- sweep ---------------------------------------------------------------------------------------
def cmd_sweep(args) -> int:
    from ..sweep import Sweep, summary_table, table

    if args.workers is not None and args.scheduler is not None:
        raise ValidationError("give --workers (a local cluster) or --scheduler (a running one), not both")
    grid = options.from_args(args, lists=True)
    sweep = Sweep(grid, out=args.out, resume=args.resume, save_dir=args.save_dir, stack_size=args.stack_size,
                  memory=args.memory * 2**20)
    for note in sweep.notes:
        print(f"xpnet sweep: {note}", file=sys.stderr, flush=True)
    if args.resume and sweep.done:
        print(f"xpnet sweep: resuming: {len(sweep.done)} configuration(s) already in {args.out}, {len(sweep.todo)} "
              "to train", file=sys.stderr, flush=True)
    progress = False if args.no_progress else None

    def announce(where):
        if not args.json and sweep.stacks:
            print(f"{len(sweep.todo)} configurations in {len(sweep.stacks)} stack(s) of at most "
                  f"{max(map(len, sweep.stacks))} networks, {sweep.runs[0].training.epochs} epoch(s) each, on "
                  f"{grid.placement.backend}{where}", file=sys.stderr, flush=True)

    def show(records):
        if args.json:
            for r in records:
                print(json.dumps(r), flush=True)

    if args.workers is None and args.scheduler is None:
        announce("")
        records = sweep.run(progress=progress, on_stack=show)
    else:
        from .. import distributed

        with distributed.connect(args.scheduler, args.workers) as (client, where):
            announce(f"; {where}")
            records = sweep.run(client, progress=progress, on_stack=show)
    if not args.json and records:
        print(table(records))
        if len({r["seed"] for r in records}) > 1:
            print("\nover seeds:\n" + summary_table(records))
    return 0


# -- saved runs: evaluate, export, plot ----------------------------------------------------------
def _saved_run(args, backend="numpy", device=None, dtype=None, data: dict | None = None):
    """A network saved by ``xpnet train --save`` (or a sweep) and the test set it was trained for (or the
    one ``data`` names: dataset, scaling, digits). Returns ``(net, data group, arrays)``: the data's
    :class:`xpnet.spec.Arrays`, its test set scaled as the network's training data was."""
    from ..mlp import MLP

    net = MLP.load(args.weights, backend=backend, device=device, dtype=dtype)
    trained = spec.from_meta(net.meta).data
    chosen = _test_data(trained, args, data)
    arrays = _test_arrays(chosen, trained, net.meta, net.sizes)
    for line in (arrays.note or "").splitlines():
        print(f"xpnet {args.command}: {line}", file=sys.stderr)
    return net, chosen, arrays


def _test_arrays(chosen: spec.Data, trained: spec.Data, meta: dict, sizes) -> spec.Arrays:
    """The test data ``chosen`` names, scaled as the network's training data was (the numbers its file
    recorded, where the scaling is still the one it was trained with), checked against its layers."""
    recorded = meta.get("input_scaling") if chosen.scaling == trained.scaling else None
    arrays = spec.load_data(chosen, progress=False, scaling=recorded)
    spec.check_fits(sizes, arrays.X_test.shape[1], len(arrays.classes))
    return arrays


def _test_data(trained: spec.Data, args, given: dict | None) -> spec.Data:
    """The data to test on: the one a network was trained on (its own data verified by its SHA-256), or
    what the command's options choose (``--data FILE``: that file, whichever it is)."""
    given = {k: v for k, v in (given or {}).items() if v is not None}
    file = getattr(args, "file", None)
    if file is not None:
        if given.get("dataset"):
            raise ValidationError(f"give --data FILE or --dataset {given['dataset']}, not both")
        given.update(file=file, sha256=None, dataset="mnist")
    elif given.get("dataset"):
        given.update(file=None, sha256=None)
    return dataclasses.replace(trained, validation=None, data_dir=args.data_dir, **given)


def _evaluate_onnx(args) -> int:
    from ..export import Exported
    from ..metrics import accuracy, confusion_matrix

    exported = Exported(args.onnx)
    meta = exported.metadata
    trained = spec.Data(dataset=meta.get("dataset") or "mnist", scaling=meta.get("scaling") or "255",
                        digits=meta.get("digits"), file=meta.get("file"), sha256=meta.get("sha256"))
    data = _test_data(trained, args, {"dataset": args.dataset, "scaling": args.scaling, "digits": args.digits})
    arrays = _test_arrays(data, trained, meta, meta["sizes"])
    pred = exported.labels(arrays.X_test)
    result = {"test_accuracy": accuracy(arrays.y_test, pred), "n": len(arrays.y_test), "dataset": data.dataset,
              "confusion": confusion_matrix(arrays.y_test, pred, max(meta["sizes"][-1], 2)).tolist()}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.onnx} (onnxruntime)\n{data.dataset} test set ({result['n']} samples): accuracy "
              f"{100 * result['test_accuracy']:.2f}%")
    return 0


def cmd_evaluate(args) -> int:
    if args.onnx:
        return _evaluate_onnx(args)
    net, data, arrays = _saved_run(args, args.backend, args.device, args.dtype,
                                   {"dataset": args.dataset, "scaling": args.scaling, "digits": args.digits})
    result = net.evaluate(arrays.X_test, arrays.y_test)
    if args.json:
        print(json.dumps({"test_accuracy": result["accuracy"], "test_loss": result["loss"], "n": result["n"],
                          "confusion": result["confusion"].tolist(), "dataset": data.dataset, "digits": data.digits,
                          "scaling": data.scaling, "classes": arrays.classes, "backend": str(net.backend),
                          "dtype": net.dtype}))
        return 0
    print(f"{net!r}\n{data.dataset} test set ({result['n']} samples): accuracy {100 * result['accuracy']:.2f}%  "
          f"loss {result['loss']:.4f}")
    print("confusion matrix (rows: true class, columns: predicted class):")
    names = [str(c) for c in arrays.classes][: len(result["confusion"])]
    names += [str(j) for j in range(len(names), len(result["confusion"]))]
    width = max(5, *map(len, names))
    first = max(10, width)
    print("  " + "true\\pred".rjust(first) + " " + " ".join(n.rjust(width) for n in names))
    for name, row in zip(names, result["confusion"]):
        print("  " + name.rjust(first) + " " + " ".join(f"{v:{width}d}" for v in row))
    return 0


def cmd_export(args) -> int:
    from ..export import check, opset
    from ..io import check_writable
    from ..mlp import MLP

    check_writable(args.onnx, "--onnx")
    net = MLP.load(args.weights)
    data = spec.from_meta(net.meta).data
    meta = {"dataset": data.dataset, "scaling": data.scaling, "digits": data.digits, "file": data.file,
            "sha256": data.sha256, "input_scaling": net.meta.get("input_scaling")}
    if "test_accuracy" in net.meta:
        meta["test_accuracy"] = net.meta["test_accuracy"]
    proto = net.to_onnx(args.onnx, label=not args.no_label, metadata=meta)
    info = {"onnx": args.onnx, "opset": opset(proto), "input": "input", "input_shape": ["N", net.sizes[0]],
            "outputs": [o.name for o in proto.graph.output], "dtype": net.dtype}
    status = 0
    if args.check:
        _, data, arrays = _saved_run(args)
        result = check(net, args.onnx, arrays.X_test, (1, min(1000, len(arrays.X_test))))
        info["check"] = {**result, "max_abs_diff": {str(k): v for k, v in result["max_abs_diff"].items()}}
        status = 0 if result["passed"] else 1
    if args.json:
        print(json.dumps(info))
        return status
    print(f"wrote {args.onnx}: opset {info['opset']}, input 'input' ({info['dtype']}, N x {net.sizes[0]}), "
          f"outputs {', '.join(repr(o) for o in info['outputs'])}")
    if args.check:
        diffs = ", ".join(f"batch {b}: {d:.1e}" for b, d in result["max_abs_diff"].items())
        verdict = "passed" if result["passed"] else "FAILED"
        print(f"check {verdict}: onnxruntime against xpnet on {data.dataset} test rows, largest probability "
              f"difference {diffs} (tolerance {result['tolerance']:.0e}); labels "
              f"{'identical' if result['labels_equal'] else 'DIFFER'}")
    return status


def cmd_plot(args) -> int:
    from ..io import check_directory
    from ..metrics import confusion_matrix, predicted_classes

    try:
        from .. import plot
    except ImportError as exc:
        raise ValidationError(str(exc)) from None
    out = check_directory(args.out, "--out")
    if args.sweep:
        from ..sweep import load_records, selection_metric

        records = load_records(args.sweep)
        for path in (plot.sweep_accuracy(records, out / "sweep-accuracy.png", selection_metric(records)),
                     plot.sweep_curves(records, out / "sweep-curves.png")):
            print(path)
        return 0
    net, data, arrays = _saved_run(args)
    X_test, y_test, classes = arrays.X_test, arrays.y_test, arrays.classes
    probs = net.predict_proba(X_test)
    pred = np.asarray(predicted_classes(probs))
    written = []
    if net.meta.get("history"):
        title = f"{'-'.join(map(str, net.sizes))} {'/'.join(net.activation_names)}, {net.head.loss}, {data.dataset}"
        written.append(plot.history(net.meta["history"], out / "history.png", title=title))
    shape = arrays.image_shape if arrays.image_shape is not None else plot.image_shape(X_test.shape[1])
    if shape is not None and int(np.prod(shape)) == X_test.shape[1]:
        written.append(plot.misclassified(X_test, y_test, pred, classes, out / "misclassified.png", shape=shape))
    else:
        shape = None
        print(f"xpnet plot: the {X_test.shape[1]} features are not an image: the misclassified test rows are a table "
              "(misclassified.csv), not pictures", file=sys.stderr)
        written.append(plot.misclassified_table(datasets.unscale(X_test, arrays.scaling), y_test, pred, probs, classes,
                                                out / "misclassified.csv"))
    written.append(plot.weight_histograms(net.get_weights(), out / "weights.png"))
    written.append(plot.probabilities(X_test, probs, y_test, classes, out / "probabilities.png", shape=shape))
    written.append(plot.confusion(confusion_matrix(y_test, pred, net.n_classes), classes, out / "confusion.png"))
    for path in written:
        print(path)
    return 0


# -- gradcheck -----------------------------------------------------------------------------------
def cmd_gradcheck(args) -> int:
    from ..gradcheck import gradcheck
    from ..mlp import MLP

    run = options.from_args(args, base=spec.Run(placement=spec.Placement(dtype="float64")))
    net = MLP.from_spec(run.fitted(784, 10, 60000))  # no data: layer ends left to it are MNIST's
    rng = np.random.default_rng(run.seed)
    # Random biases too, so that no ReLU unit sits exactly on its kink at z = 0.
    net.set_weights([(W, rng.normal(0.0, 0.1, size=b.shape)) for W, b in net.get_weights()])
    X = rng.normal(size=(args.samples, net.sizes[0]))
    y = rng.integers(0, net.n_classes, size=args.samples)
    result = gradcheck(net, X, y, eps=args.eps, max_entries=args.max_entries, seed=run.seed)
    result["layers"] = net.sizes
    result["activations"] = net.activation_names
    result["output"], result["loss"], result["backend"] = net.head.output, net.head.loss, str(net.backend)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"gradient check of {net!r} on {args.samples} random samples")
        for name, err in result["arrays"].items():
            print(f"  {name:>4}  relative error {err:.2e}")
        verdict = "passed" if result["passed"] else "FAILED"
        print(f"{verdict}: worst {result['max_rel_error']:.2e} (tolerance {result['tolerance']:.0e})")
    return 0 if result["passed"] else 1


# -- bench ---------------------------------------------------------------------------------------
def _list(text, parse=str, name="list"):
    """Comma-separated values, parsed; a one-line error for an empty item or a value that fails."""
    items = [t.strip() for t in str(text).split(",")]
    if not all(items):
        raise ValidationError(f"{name} has an empty item: {text!r}")
    try:
        return [parse(t) for t in items]
    except ValueError as exc:
        raise ValidationError(f"{name}: {exc}") from None


def _bench_optimizer(args):
    """The optimizer ``xpnet bench`` measures with, ``None`` for plain SGD (the cases' own)."""
    optimizer = options.from_args(args).optimizer
    return None if optimizer.plain else optimizer


def _bench_to_accuracy(args, bench) -> int:
    from ..workers import pool

    targets = sorted(_list(args.to_accuracy, float, "--to-accuracy"))
    if not all(0 < t < 1 for t in targets):
        raise ValidationError(f"--to-accuracy takes accuracies between 0 and 1, e.g. 0.92,0.96; got {args.to_accuracy}")
    impls = _list(args.impl, name="--impl") if args.impl else ["xpnet-numpy"]
    for impl in impls:
        bench.parse(impl)
    nets = _list(args.net, name="--net")
    batches = _list(args.batch_sizes, lambda b: b if b == "full" else int(b), "--batch-sizes") if args.batch_sizes else [
        1, 16, 64, 256, 1024]
    bad = [b for b in batches if b not in bench.BATCH_SIZES or b == "full"] + [n for n in nets if n not in bench.NETS]
    if bad:
        raise ValidationError(f"--to-accuracy takes --batch-sizes from 1, 16, 64, 256, 1024 and --net small/large; "
                              f"got {', '.join(map(str, bad))}")
    data = bench.load_training_set("float32")
    optimizer = _bench_optimizer(args)
    results = []
    with bench.busy_cores(args.busy_cores), pool(data, not args.in_process) as workers:
        for net in nets:
            for batch in batches:
                lr, scores = bench.choose_lr(net, batch, data, optimizer=optimizer)
                if not args.json:
                    print(f"{net} net, batch {batch}: lr {lr:g} (validation accuracy after 2 epochs: "
                          + ", ".join(f"{k:g}: {100 * v:.1f}%" for k, v in scores.items()) + ")", file=sys.stderr,
                          flush=True)
                for impl in impls:
                    for seed in range(args.seeds):
                        run = bench.with_optimizer(bench.case(net, "float32", batch, lr, seed, shuffle=None), optimizer)
                        run = run.replace(threads=args.threads)
                        base = {"implementation": impl, "net": net, "batch_size": batch, "lr": lr, "seed": seed,
                                "optimizer": bench.described(run.optimizer)}
                        result = {**base, **workers.to_accuracy(bench.Case(impl, net, "float32", batch), targets,
                                                                args.max_seconds, run.to_dict())}
                        if not args.json and "skipped" not in result:
                            got = ", ".join(f"{100 * float(t):g}%: " + (f"{r['seconds']:.2f} s" if r else "not reached")
                                            for t, r in result["reached"].items())
                            print(f"  {impl} seed {seed}: {got}", file=sys.stderr, flush=True)
                        results.append(result)
    if args.json:
        print(json.dumps({"environment": {**bench.environment(), "busy_cores": args.busy_cores}, "targets": targets,
                          "results": results}))
        return 0
    for net in nets:
        print(f"\n{net} net {bench.NETS[net].layers}, float32: training seconds until the test accuracy first "
              f"reaches each target (median of {args.seeds} seed(s); accuracy read every {bench.CHECK_EVERY} samples, "
              f"off the clock; at most {args.max_seconds:g} s of training)")
        print(bench.to_accuracy_table([r for r in results if r["net"] == net], targets))
    return 0


def _cell_line(result) -> str:
    """One measured (or skipped) cell, as ``xpnet bench`` reports it while it runs."""
    from .. import bench

    what = f"{result['implementation']} {result['net']} {result['dtype']} batch {result['batch_size']}"
    if result.get("models"):
        what += f", {result['models']} models"
    if "skipped" in result or "failed" in result:
        return f"{what}: {'skipped' if 'skipped' in result else 'FAILED'} ({result.get('skipped') or result['failed']})"
    again = ", measured twice" if result.get("remeasured") else ""
    return (f"{what}: {result['samples_per_second']:,.0f} samples/s (min {result['min']:,.0f}, max {result['max']:,.0f}"
            f"{again}; {result['samples_per_round']} samples a round){bench.flags(result)}")


def cmd_bench(args) -> int:
    import itertools

    from .. import bench, workers
    from ..progress import Progress, duration

    if args.to_accuracy:
        return _bench_to_accuracy(args, bench)
    if args.check_alone and args.in_process:
        raise ValidationError("--check-alone measures in processes of their own; it does not go with --in-process")
    impls = _list(args.impl, name="--impl") if args.impl else [
        i for i in bench.implementations(("cpu", "cuda")) if i not in ("xpnet-array_api_strict", "hand-tuned-numpy")]
    for impl in impls:
        bench.parse(impl)
    nets, dtypes = _list(args.net, name="--net"), _list(args.dtype, name="--dtype")
    batches = _list(args.batch_sizes or "1,16,64,256,1024,full", lambda b: b if b == "full" else int(b), "--batch-sizes")
    models = [None] if args.models is None else _list(args.models, int, "--models")
    for name, values, allowed in (("--net", nets, bench.NETS), ("--dtype", dtypes, ("float32", "float64")),
                                  ("--batch-sizes", batches, bench.BATCH_SIZES)):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValidationError(f"{name} takes {', '.join(map(str, allowed))}; got {', '.join(map(str, bad))}")
    if any(k is not None and k < 1 for k in models):
        raise ValidationError(f"--models takes network counts >= 1; got {args.models}")
    optimizer = _bench_optimizer(args)
    cases = list(itertools.product(nets, dtypes, batches, models))
    groups = workers.cells(impls, cases, args.rounds, args.target, optimizer, args.threads)
    total = len(impls) * len(cases)
    expected = workers.expected_seconds(groups, args.rounds, args.target, args.busy_cores) * (
        2 if args.check_alone else 1)
    where = "all in this process" if args.in_process else "each implementation in a process of its own"
    print(f"xpnet bench: {total} cells ({len(impls)} implementations x {len(cases)} cases), {args.rounds} rounds of "
          f"about {args.target:g} s each, {where}{', then each cell alone' if args.check_alone else ''}: expect "
          f"about {duration(expected)}", file=sys.stderr, flush=True)
    done = []
    bar = Progress(total * args.rounds * (2 if args.check_alone else 1), "bench", enabled=None if not args.no_progress
                   else False, unit="rounds")

    def show(result):
        done.append(result)
        ran = len(result.get("rounds", ())) + len(result.get("first_rounds", ()))
        bar.total += (ran - args.rounds) * (2 if args.check_alone else 1)
        if not args.json:
            bar.write(f"[{len(done)}/{total}] {_cell_line(result)}")

    with bar, bench.busy_cores(args.busy_cores):
        results = workers.run_suite(impls, cases, rounds=args.rounds, target=args.target, on_result=show,
                                  optimizer=optimizer, threads=args.threads, isolate=not args.in_process,
                                  check_alone=args.check_alone, on_round=lambda c: bar.update(1))
    seconds = bar.done and time.perf_counter() - bar.start
    if args.json:
        print(json.dumps({"environment": {**bench.environment(), "busy_cores": args.busy_cores,
                                          "isolated": not args.in_process, "seconds": seconds}, "results": results},
                         indent=1))
        return 0
    for net, dtype in itertools.product(nets, dtypes):
        if args.models is None:
            print(f"\n{net} net {bench.NETS[net].layers}, {dtype}: median samples/s of {args.rounds} rounds "
                  "(ratio to the same implementation at batch 1)")
            print(bench.markdown_table(results, net, dtype))
        else:
            print(f"\n{net} net {bench.NETS[net].layers}, {dtype}: median model-samples/s (networks x "
                  f"samples/s) of {args.rounds} rounds (ratio to one network)")
            print(bench.models_table(results, net, dtype))
    if any(bench.flags(r) for r in results):
        print(f"\n{bench.LEGEND}")
    checked = [r for r in results if "alone_ratio" in r]
    if checked:
        ratios = [r["alone_ratio"] for r in checked]
        off = sum(r["differs"] for r in checked)
        print(f"alone check: {len(checked) - off} of {len(checked)} cells within {bench.ALONE_FACTOR:g}× of the same "
              f"case measured alone (ratios {min(ratios):.2f} to {max(ratios):.2f})"
              + (f"; {off} not reproduced, marked [! alone V]" if off else ""))
    print(f"xpnet bench: {len(results)} cells in {duration(seconds)}", file=sys.stderr)
    return 0


# -- the parser ----------------------------------------------------------------------------------
def _at_least(low):
    """An argparse type: an integer >= ``low``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}; got {value}")
        return value

    return parse


def _one(parse):
    """An argparse type for one of ``xpnet sweep``'s own options: one value, not a list."""
    return options.one_value(parse, options.SWEPT_FLAGS)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (status 2), like every other user error."""

    def error(self, message):
        wrong = re.match(r"argument .*: invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if wrong:
            message += checks.nearest(wrong.group(1), re.findall(r"'([^']*)'", wrong.group(2)))
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _unknown(parser, command: str, extras) -> str:
    """One line for the arguments no option of ``command`` took, naming the nearest option of each."""
    flags = set(re.findall(r"--[a-z][a-z0-9-]*", parser.commands[command].format_help()))
    first = extras[0]
    if not first.startswith("-"):
        return f"unexpected argument {first!r}"
    flag = first.split("=")[0]
    return f"unknown option {flag}" + checks.nearest(flag, flags).replace("'", "")


def _command(sub, name: str, summary: str, example: str):
    """A command's parser: its one-line summary (in ``xpnet --help`` too) and an example under its options."""
    return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                          epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def _output(p, *flags):
    if "json" in flags:
        p.add_argument("--json", action="store_true", help="print JSON instead of lines")
    if "progress" in flags:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _train_parser(sub):
    p = _command(sub, "train", "train a network on MNIST or Fashion-MNIST",
                 "xpnet train --layers 784-128-10 --activation relu --batch-size 64 --epochs 5 --lr 0.1 --save w.npz")
    options.add_arguments(p)
    options.add_hidden(p)
    p.add_argument("--save", default=None, metavar="PATH", help="write weights, run and history to this .npz (atomically)")
    p.add_argument("--checkpoint-every", type=_at_least(1), default=None, metavar="N",
                   help="also write --save after every N epochs (N >= 1; default: only at the end)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint at --save, if there is one; "
                   "the result equals an uninterrupted run")
    _output(p, "json", "progress")
    p.set_defaults(run=cmd_train)


def _sweep_parser(sub):
    p = _command(sub, "sweep", "train a grid of configurations, many networks at once (stacks)",
                 "xpnet sweep --lr 0.01,0.1,1 --seed 0-2 --epochs 1 --out sweep.jsonl")
    options.add_arguments(p, lists=True)
    options.add_hidden(p, lists=True)
    p.add_argument("--stack-size", type=_one(_at_least(1)), default=None, metavar="K",
                   help="at most K networks per stack (default: as many as --memory allows)")
    p.add_argument("--memory", type=_one(_at_least(1)), default=1024, metavar="MIB",
                   help="device memory one stack may use for its networks, MiB (default 1024)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the JSON records to FILE (one per line), "
                   "rewritten atomically as each stack finishes")
    p.add_argument("--save-dir", default=None, metavar="DIR", help="write each configuration's weights to DIR "
                   "(loadable by xpnet evaluate)")
    p.add_argument("--resume", action="store_true", help="train only the configurations that --out does not hold yet")
    p.add_argument("--workers", type=_one(_at_least(1)), default=None, metavar="N",
                   help="run the stacks on a local Dask cluster of N worker processes (needs xpnet[distributed])")
    p.add_argument("--scheduler", type=_one(str), default=None, metavar="tcp://HOST:PORT",
                   help="run the stacks on the Dask cluster of this scheduler (needs xpnet[distributed])")
    _output(p, "json", "progress")
    p.set_defaults(run=cmd_sweep)


SAVED_DATA = ("dataset", "file", "data_dir", "scaling", "digits")


def _saved_parsers(sub):
    p = _command(sub, "evaluate", "score saved weights (or an exported ONNX model) on a test set",
                 "xpnet evaluate --weights w.npz")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--weights", metavar="PATH", help="an .npz written by 'xpnet train --save'")
    which.add_argument("--onnx", metavar="PATH", help="an .onnx written by 'xpnet export', run in onnxruntime")
    options.add_arguments(p, ("backend", "device", "dtype", *SAVED_DATA),
                       defaults={"dtype": None, "dataset": None, "scaling": None, "digits": None})
    _output(p, "json")
    p.set_defaults(run=cmd_evaluate)

    p = _command(sub, "export", "write a trained network as an ONNX model (its own forward kernels, traced)",
                 "xpnet export --weights w.npz --onnx w.onnx --check")
    p.add_argument("--weights", required=True, metavar="PATH", help="an .npz written by 'xpnet train --save'")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write (atomically)")
    p.add_argument("--no-label", action="store_true", help="export the probabilities only, no 'label' output")
    p.add_argument("--check", action="store_true", help="run the export in onnxruntime on test images and compare "
                   "with xpnet (batch 1 and 1000, or all the test rows of a smaller set; exit status 1 if it differs)")
    options.add_arguments(p, ("file", "data_dir"))
    _output(p, "json")
    p.set_defaults(run=cmd_export)

    p = _command(sub, "plot", "write PNG plots of a saved run (history, mistakes, weights, probabilities, confusion) "
                 "or of a sweep (accuracy against learning rate, learning curves)", "xpnet plot --weights w.npz --out plots")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--weights", metavar="PATH", help="an .npz written by 'xpnet train --save'")
    which.add_argument("--sweep", metavar="FILE", help="the records 'xpnet sweep --out FILE' wrote")
    p.add_argument("--out", default="plots", metavar="DIR", help="directory for the PNG files (default ./plots)")
    options.add_arguments(p, ("file", "data_dir"))
    p.set_defaults(run=cmd_plot)


def _bench_parser(sub):
    p = _command(sub, "bench", "training throughput per implementation and batch size, beside the peers",
                 "xpnet bench --impl xpnet-numpy,torch-eager,sklearn --batch-sizes 1,64")
    p.add_argument("--impl", default=None, help="comma-separated implementations (default: every one installed "
                   "here except xpnet-array_api_strict and hand-tuned-numpy; e.g. xpnet-numpy,torch-eager,sklearn)")
    p.add_argument("--net", default="small", help="small (784-32-32-10 sigmoid) and/or large (784-256-128-64-10 relu)")
    p.add_argument("--dtype", default="float32", help="float32 and/or float64, comma-separated")
    p.add_argument("--batch-sizes", default=None, help="comma-separated; 'full' is the whole training set "
                   "(default 1,16,64,256,1024,full; with --to-accuracy 1,16,64,256,1024)")
    p.add_argument("--rounds", type=_at_least(1), default=5, help="timed rounds per case; the table shows their median")
    p.add_argument("--target", type=float, default=0.25, help="seconds per timed round (default 0.25)")
    p.add_argument("--models", default=None, metavar="K,...", help="train stacks of K networks at once and report "
                   "model-samples/s, e.g. 1,4,16,64,256 (xpnet's implementations, torch-func and jax-vmap)")
    p.add_argument("--to-accuracy", default=None, metavar="A[,B]", help="time to accuracy instead of throughput: "
                   "training seconds until the test accuracy first reaches A (and B), lr chosen per batch size "
                   "(default impl xpnet-numpy)")
    p.add_argument("--seeds", type=_at_least(1), default=1, help="seeds per time-to-accuracy case; tables show the median (1)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="training budget per time-to-accuracy run (20)")
    p.add_argument("--busy-cores", type=_at_least(0), default=0, metavar="N",
                   help="keep N cores busy (a busy loop each) while measuring: a shared CPU (default 0)")
    p.add_argument("--in-process", action="store_true", help="measure every implementation in this process "
                   "(default: each in a process of its own, where no other library's threads run; in one process "
                   "they can slow each other down many times over)")
    p.add_argument("--check-alone", action="store_true", help="then measure every cell again in a fresh process "
                   "with no other implementation started, and mark a cell more than 2x away from that")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the raw measurements as JSON")
    options.add_arguments(p, ("optimizer", *optim.options(), "threads"))
    p.set_defaults(run=cmd_bench)


def _gradcheck_parser(sub):
    p = _command(sub, "gradcheck", "check backward() against central finite differences (float64)",
                 "xpnet gradcheck --activation relu --loss squared --output sigmoid")
    options.add_arguments(p, ("layers", "activation", "loss", "output", "init", "init_scale", "seed", "backend", "device"),
                       defaults={"layers": "20-16-16-10"})
    p.add_argument("--samples", type=_at_least(1), default=8, help="random samples in the batch (default 8)")
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (default 1e-6)")
    p.add_argument("--max-entries", type=_at_least(1), default=64, help="entries checked per array (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_gradcheck)


def _version() -> str:
    import xpnet

    return xpnet.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xpnet", description="A multilayer perceptron with hand-written gradients, on NumPy, CuPy, "
                     "PyTorch, JAX and any Array API library: train, sweep, evaluate, export, plot, check, measure.",
                     epilog="'xpnet COMMAND --help' describes a command, with an example.")
    parser.add_argument("--version", action="version", version=f"xpnet {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for add in (_train_parser, _sweep_parser, _saved_parsers, _bench_parser, _gradcheck_parser):
        add(sub)
    parser.commands = sub.choices
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        print(f"xpnet {args.command}: error: {_unknown(parser, args.command, extras)} (see 'xpnet {args.command} "
              "--help')", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except XpnetError as exc:
        print(f"xpnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xpnet {args.command}: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``xpnet`` command (its console script and ``python -m xpnet.cli``): :func:`main`'s status. An
    interrupted run (Ctrl-C: 130) leaves at once, its output flushed, before the interpreter's teardown:
    there XLA's own threads, cut short in the middle of JAX's work, crashed the process (exit 139 in 4 of
    10 tries). Whatever it wrote is whole: files are written beside their target and moved into place."""
    try:
        code = main()
    except KeyboardInterrupt:  # before main's own handler was reached (parsing the options)
        print("xpnet: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # the reader of the output left (``| head``): stop quietly, as 'yes | head' does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush would fail too
        code = 128 + signal.SIGPIPE
    if code != 130:
        sys.exit(code)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut the flush short
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(130)

