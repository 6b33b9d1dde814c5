"""The ``xpnet`` command: ``xpnet train | sweep | evaluate | export | plot | gradcheck | bench``.

User mistakes (an unknown name, a bad file, a missing backend) print one line on stderr and exit with
status 2; a diverged training run exits with status 3 after saving the last finite weights if asked.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import functions
from .backends import LIBRARIES
from .errors import DivergenceError, ValidationError, XpnetError
from .init import INITIALISERS


def _add_model_args(p, layers="784-32-32-10"):
    p.add_argument("--layers", default=layers, help=f"layer sizes joined by '-' (default {layers})")
    p.add_argument("--activation", default="sigmoid", help=f"hidden activation: {', '.join(functions.ACTIVATIONS)}; "
                   "or one per hidden layer joined by ','")
    p.add_argument("--loss", default="cross-entropy", choices=functions.LOSSES)
    p.add_argument("--output", default=None, choices=functions.OUTPUTS, help="output activation (default: the loss's own)")
    p.add_argument("--init", default="normal-max", choices=list(INITIALISERS))
    p.add_argument("--init-scale", type=float, default=1.0, metavar="C",
                   help="multiply the initial weights by C (default 1)")
    p.add_argument("--seed", type=_at_least(0), default=0, help="random seed: initial weights, shuffling, data (default 0)")


#: The options of ``xpnet sweep`` that take comma-separated lists; the grid is their product.
SWEPT = ("--lr", "--seed", "--init", "--init-scale", "--layers", "--activation", "--batch-size")


def _one(parse=str):
    """An argparse type for an option a sweep shares among its configurations: one value, not a list."""

    def parse_one(text):
        if "," in text:
            raise argparse.ArgumentTypeError(f"takes one value in a sweep, not a list ({text!r}); only {', '.join(SWEPT)} "
                                             "take lists")
        return parse(text)

    return parse_one


def _add_backend_args(p, dtype="float32", sweep=False):
    """--backend, --device and (unless ``dtype`` is False) --dtype; ``dtype=None`` means 'as saved'."""
    one = _one() if sweep else str
    p.add_argument("--backend", default="numpy", type=one, help=f"array library: {', '.join(LIBRARIES)} (default numpy)")
    p.add_argument("--device", default=None, type=one, help="device, e.g. cpu, cuda:0, device1 (default: the backend's)")
    if dtype is not False:
        p.add_argument("--dtype", default=dtype, type=one, choices=["float32", "float64"],
                       help=f"floating-point type (default {dtype or 'as saved'})")


def _add_data_args(p, saved=False, sweep=False):
    from .datasets import DATASETS, SCALINGS

    one = _one() if sweep else str
    default = " (default: as saved)" if saved else ""
    p.add_argument("--dataset", default=None if saved else "mnist", type=one, choices=DATASETS,
                   help="data set" + (default or " (default mnist)"))
    p.add_argument("--data-dir", default=None, help="directory holding the IDX files (default: $XPNET_DATA, the package, the cache)")
    p.add_argument("--scale", default=None if saved else "255", type=one, choices=SCALINGS,
                   help="pixel scaling: /255, per-image max, standardize, or none (raw 0-255)" + (default or " (default 255)"))
    p.add_argument("--digits", default=None, metavar="A,B", help="use two classes only, labelled 0 and 1 (e.g. 3,9)" + default)


def _activation(text):
    return text.split(",") if "," in text else text


def _model(args, dtype=None):
    from .mlp import MLP

    return MLP(
        args.layers, _activation(args.activation), loss=args.loss, output=args.output, init=args.init,
        seed=args.seed, backend=args.backend, device=args.device, dtype=dtype or args.dtype,
        init_scale=args.init_scale,
    )


def cmd_gradcheck(args) -> int:
    from .gradcheck import gradcheck

    net = _model(args, dtype="float64")
    rng = np.random.default_rng(args.seed)
    # Random biases too, so that no ReLU unit sits exactly on its kink at z = 0.
    net.set_weights([(W, rng.normal(0.0, 0.1, size=b.shape)) for W, b in net.get_weights()])
    X = rng.normal(size=(args.samples, net.sizes[0]))
    y = rng.integers(0, net.n_classes, size=args.samples)
    result = gradcheck(net, X, y, eps=args.eps, max_entries=args.max_entries, seed=args.seed)
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


def _load_data(name, data_dir, scaling, digits, progress, dtype="float64"):
    from . import datasets

    data = datasets.load(name, data_dir, progress=progress)
    return data, datasets.prepare(data, scaling, digits, dtype=dtype)


def _check_layers(sizes, X, n_classes):
    if sizes[0] != X.shape[1]:
        raise ValidationError(f"--layers must start with the input size {X.shape[1]}; got {sizes[0]}")
    wanted = {n_classes} | ({1} if n_classes == 2 else set())
    if sizes[-1] not in wanted:
        raise ValidationError(
            f"--layers must end with the class count {' or '.join(map(str, sorted(wanted, reverse=True)))}; "
            f"got {sizes[-1]}"
        )


def _epoch_line(r) -> str:
    line = f"epoch {r['epoch']:3d}  train loss {r['train_loss']:.4f}"
    for name in ("val", "test"):
        if r.get(f"{name}_loss") is not None:
            line += f"  {name} loss {r[f'{name}_loss']:.4f}  {name} acc {100 * r[f'{name}_accuracy']:6.2f}%"
    return line + f"  {r['samples_per_second']:,.0f} samples/s"


#: Settings a checkpoint must share with the command that resumes it (besides the network itself).
RUN_SETTINGS = ("dataset", "scaling", "digits", "lr", "batch_size", "shuffle", "seed", "validation")


def _resume(net, args, meta):
    """``(epochs done, history)`` from the checkpoint at ``--save``, loaded into ``net``; (0, []) if none."""
    from pathlib import Path

    from .io import load_weights
    from .mlp import MLP

    if not Path(args.save).exists():
        print(f"xpnet train: no checkpoint at {args.save} yet; starting from the beginning", file=sys.stderr)
        return 0, []
    weights, saved = load_weights(args.save)
    if saved.get("diverged"):
        raise ValidationError(f"{args.save} holds a run that diverged ({saved['diverged'].split(':')[0]}); "
                              "start afresh, with a smaller --lr")
    theirs, ours = MLP.from_config(saved).config(), net.config()
    differ = [(k, theirs[k], ours[k]) for k in ours if theirs[k] != ours[k]]
    differ += [(k, saved.get(k), meta[k]) for k in RUN_SETTINGS if saved.get(k) != meta[k]]
    if differ or "epochs_done" not in saved:
        what = ", ".join(f"{k} {there!r} there, {here!r} here" for k, there, here in differ)
        raise ValidationError(f"{args.save} is not a checkpoint of this run ({what or 'no epochs_done entry'})")
    net.set_weights(weights)
    done = int(saved["epochs_done"])
    print(f"xpnet train: resuming from {args.save} after epoch {done}", file=sys.stderr)
    return done, list(saved.get("history", []))


def cmd_train(args) -> int:
    from . import datasets
    from .train import evaluate

    from .io import check_writable

    if (args.resume or args.checkpoint_every) and not args.save:
        raise ValidationError("--resume and --checkpoint-every need --save PATH (where the checkpoint lives)")
    if args.save:
        check_writable(args.save, "--save")
    progress = False if args.no_progress else None
    data, (X, y, X_test, y_test) = _load_data(args.dataset, args.data_dir, args.scale, args.digits, progress, args.dtype)
    net = _model(args)
    _check_layers(net.sizes, X, 2 if args.digits else len(data.classes))
    validation = None
    if args.validation:
        X, y, X_val, y_val = datasets.validation_split(X, y, args.validation, args.seed)
        validation = (X_val, y_val)
    meta = {"dataset": args.dataset, "scaling": args.scale, "digits": args.digits, "lr": args.lr,
            "batch_size": args.batch_size, "shuffle": args.shuffle, "seed": args.seed,
            "validation": args.validation, "backend": args.backend}
    done, history = _resume(net, args, meta) if args.resume else (0, [])
    initial = evaluate(net, X_test, y_test)
    warned = []

    def report(record):
        history.append(record)
        if not args.json:
            print(_epoch_line(record), flush=True)
        if record["test_loss"] > 1.5 * initial["loss"] and not warned:
            warned.append(record["epoch"])
            print(f"xpnet train: warning: the test loss rose from {initial['loss']:.3g} before training to "
                  f"{record['test_loss']:.3g}; the learning rate {args.lr:g} is probably too high", file=sys.stderr)
        if args.checkpoint_every and record["epoch"] % args.checkpoint_every == 0:
            net.save(args.save, **meta, history=history, epochs_done=record["epoch"])

    if not args.json:
        print(f"{net!r}\ntraining on {len(y)} {args.dataset} samples, testing on {len(y_test)}; "
              f"before {'this run' if done else 'training'}: test accuracy {100 * initial['accuracy']:.2f}%",
              flush=True)
    status = 0
    try:
        net.fit(
            X, y, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, shuffle=args.shuffle,
            seed=args.seed, X_test=X_test, y_test=y_test, validation=validation, compile=args.compile,
            progress=progress, on_epoch=report, initial_epoch=min(done, args.epochs),
        )
    except DivergenceError as exc:
        print(f"xpnet train: {exc}", file=sys.stderr)
        status = 3
        meta["diverged"] = str(exc)
    final = evaluate(net, X_test, y_test)
    result = {"history": history, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
              "initial_test_accuracy": initial["accuracy"], "initial_test_loss": initial["loss"], **meta,
              "model": net.config()}
    if args.save:
        epochs_done = history[-1]["epoch"] if history else done
        net.save(args.save, **meta, history=history, epochs_done=epochs_done, test_accuracy=final["accuracy"])
        if not args.json:
            print(f"saved {'the last finite ' if status else ''}weights to {args.save}", file=sys.stderr if status else sys.stdout)
    if args.json:
        print(json.dumps(result))
    elif status == 0:
        print(f"test accuracy {100 * final['accuracy']:.2f}%  test loss {final['loss']:.4f}")
    return status


def cmd_export(args) -> int:
    from .export import check, opset
    from .io import check_writable
    from .mlp import MLP

    check_writable(args.onnx, "--onnx")
    net = MLP.load(args.weights)
    meta = {k: net.meta.get(k) for k in ("dataset", "scaling", "digits", "test_accuracy") if k in net.meta}
    proto = net.to_onnx(args.onnx, label=not args.no_label, metadata=meta)
    info = {"onnx": args.onnx, "opset": opset(proto), "input": "input", "input_shape": ["N", net.sizes[0]],
            "outputs": [o.name for o in proto.graph.output], "dtype": net.dtype}
    status = 0
    if args.check:
        _, dataset, _, X_test, _ = _saved_run(args)
        result = check(net, args.onnx, X_test)
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
        print(f"check {verdict}: onnxruntime against xpnet on {dataset} test images, largest probability difference "
              f"{diffs} (tolerance {result['tolerance']:.0e}); labels {'identical' if result['labels_equal'] else 'DIFFER'}")
    return status


def _seeds(text):
    """``"0-3,8"`` -> [0, 1, 2, 3, 8]."""
    seeds = []
    for item in _list(text, name="--seed"):
        first, dash, last = item.partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ValidationError(f"--seed takes integers and ranges like 0-7; got {item!r}") from None
        if high < low:
            raise ValidationError(f"--seed range {item!r} is empty")
        seeds += range(low, high + 1)
    return seeds


def _weights_name(record) -> str:
    """A file name that says a sweep configuration's settings."""
    act = record["activation"].replace("/", "+")
    return (f"lr{record['lr']:g}_seed{record['seed']}_{record['init']}_scale{record['init_scale']:g}_"
            f"{record['layers']}_{act}_batch{record['batch_size']}.npz")


def _settings_key(record) -> tuple:
    """What identifies a configuration in sweep records."""
    from .sweep import VARIED

    return tuple(str(record[k]) for k in VARIED)


def cmd_sweep(args) -> int:
    from pathlib import Path

    from . import datasets
    from . import sweep as sw
    from .io import atomic_write, check_directory, check_writable

    if args.resume and not args.out:
        raise ValidationError("--resume needs --out FILE (the records of the configurations already trained)")
    if args.workers is not None and args.scheduler is not None:
        raise ValidationError("give --workers (a local cluster) or --scheduler (a running one), not both")
    if args.out:
        check_writable(args.out, "--out")
    if args.save_dir:
        check_directory(args.save_dir, "--save-dir")
    configs = sw.grid(
        lr=_list(args.lr, float, "--lr"), seed=_seeds(args.seed), init=_list(args.init, name="--init"),
        init_scale=_list(args.init_scale, float, "--init-scale"), layers=_list(args.layers, name="--layers"),
        activation=_list(args.activation, name="--activation"),
        batch_size=_list(args.batch_size, int, "--batch-size"),
    )
    progress = False if args.no_progress else None
    datasets.locate(args.dataset, args.data_dir, progress=progress)  # downloads Fashion-MNIST here if need be
    spec = sw.Data(args.dataset, args.data_dir, args.scale, args.digits, args.validation, args.dtype)
    (X, y, X_test, y_test), validation = sw.load_data(spec)
    n_classes = 2 if args.digits else len(datasets.CLASSES[args.dataset])
    for c in configs:
        _check_layers(c.layers, X, n_classes)
        if c.batch_size > len(y):
            raise ValidationError(f"--batch-size {c.batch_size} is more than the {len(y)} training samples")
    fixed = sw.Fixed(epochs=args.epochs, loss=args.loss, output=args.output, shuffle=args.shuffle,
                     backend=args.backend, device=args.device, dtype=args.dtype, compile=args.compile,
                     extra={"dataset": args.dataset, "scaling": args.scale, "digits": args.digits,
                            "validation": args.validation})
    sw.check(configs, fixed)
    done = []
    if args.resume and Path(args.out).exists():
        done = sw.load_records(args.out)
        finished_keys = {_settings_key(r) for r in done}
        configs = [c for c in configs if _settings_key(c.settings()) not in finished_keys]
        print(f"xpnet sweep: resuming: {len(done)} configuration(s) already in {args.out}, {len(configs)} to train",
              file=sys.stderr, flush=True)
    stacks = sw.plan(configs, len(y), args.stack_size, args.dtype, args.memory * 2**20) if configs else []

    def finished(records):
        for r in records:
            model = r.pop("model", None)
            if args.save_dir:
                r["weights"] = str(Path(args.save_dir) / _weights_name(r))
                model.save(r["weights"], dataset=args.dataset, scaling=args.scale, digits=args.digits, lr=r["lr"],
                           batch_size=r["batch_size"], shuffle=args.shuffle, validation=args.validation,
                           backend=args.backend, history=r["history"], epochs_done=len(r["history"]),
                           test_accuracy=r["test_accuracy"], diverged=r["diverged"] and r["diverged"]["at"])
            done.append(r)
            if args.json:
                print(json.dumps(r), flush=True)
        if args.out:
            text = "".join(json.dumps(r) + "\n" for r in done)
            atomic_write(args.out, lambda f: f.write(text.encode()))

    def announce(where):
        if not args.json and stacks:
            print(f"{len(configs)} configurations in {len(stacks)} stack(s) of at most {max(map(len, stacks))} networks, "
                  f"{args.epochs} epoch(s) each, on {args.backend}{where}", file=sys.stderr, flush=True)

    keep = bool(args.save_dir)
    if args.workers is None and args.scheduler is None:
        announce("")
        sw.run(stacks, fixed, (X, y, X_test, y_test), validation=validation, progress=progress, on_stack=finished,
               keep_models=keep)
    else:
        from . import distributed

        with distributed.connect(args.scheduler, args.workers) as (client, where):
            announce(f"; {where}")
            distributed.run(stacks, fixed, spec, client, on_stack=finished, progress=progress, keep_models=keep)
    if not args.json:
        print(sw.table(done))
        if len({r["seed"] for r in done}) > 1:
            print("\nover seeds:\n" + sw.summary_table(done))
    return 0


def _saved_run(args, backend="numpy", device=None, dtype=None, dataset=None, scale=None, digits=None):
    """A network saved by ``xpnet train --save`` and the test set it was trained for (or the one named).

    Returns ``(net, dataset name, class names, X_test, y_test)``.
    """
    from .mlp import MLP

    net = MLP.load(args.weights, backend=backend, device=device, dtype=dtype)
    dataset = dataset or net.meta.get("dataset", "mnist")
    digits = digits or net.meta.get("digits")
    data, (_, _, X_test, y_test) = _load_data(dataset, args.data_dir, scale or net.meta.get("scaling", "255"),
                                              digits, False)
    _check_layers(net.sizes, X_test, 2 if digits else len(data.classes))
    classes = [int(d) for d in digits.split(",")] if digits else data.classes
    return net, dataset, classes, X_test, y_test


def _evaluate_onnx(args) -> int:
    from .export import Exported
    from .metrics import accuracy, confusion_matrix

    exported = Exported(args.onnx)
    meta = exported.metadata
    dataset, digits = args.dataset or meta.get("dataset") or "mnist", args.digits or meta.get("digits")
    data, (_, _, X_test, y_test) = _load_data(dataset, args.data_dir, args.scale or meta.get("scaling") or "255",
                                              digits, False)
    _check_layers(meta["sizes"], X_test, 2 if digits else len(data.classes))
    pred = exported.labels(X_test)
    result = {"test_accuracy": accuracy(y_test, pred), "n": len(y_test), "dataset": dataset,
              "confusion": confusion_matrix(y_test, pred, max(meta["sizes"][-1], 2)).tolist()}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.onnx} (onnxruntime)\n{dataset} test set ({result['n']} samples): accuracy "
              f"{100 * result['test_accuracy']:.2f}%")
    return 0


def cmd_evaluate(args) -> int:
    if args.onnx:
        return _evaluate_onnx(args)
    net, dataset, _, X_test, y_test = _saved_run(args, args.backend, args.device, args.dtype, args.dataset,
                                                 args.scale, args.digits)
    result = net.evaluate(X_test, y_test)
    if args.json:
        print(json.dumps({"test_accuracy": result["accuracy"], "test_loss": result["loss"], "n": result["n"],
                          "confusion": result["confusion"].tolist(), "dataset": dataset}))
        return 0
    print(f"{net!r}\n{dataset} test set ({result['n']} samples): accuracy {100 * result['accuracy']:.2f}%  "
          f"loss {result['loss']:.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    for i, row in enumerate(result["confusion"]):
        print(f"  {i:>2} " + " ".join(f"{v:5d}" for v in row))
    return 0


def _list(text, parse=str, name="list"):
    """Comma-separated values, parsed; a one-line error for an empty item or a value that fails."""
    items = [t.strip() for t in str(text).split(",")]
    if not all(items):
        raise ValidationError(f"{name} has an empty item: {text!r}")
    try:
        return [parse(t) for t in items]
    except ValueError as exc:
        raise ValidationError(f"{name}: {exc}") from None


def _bench_to_accuracy(args, bench, peers) -> int:
    from . import datasets

    targets = sorted(_list(args.to_accuracy, float, "--to-accuracy"))
    if not all(0 < t < 1 for t in targets):
        raise ValidationError(f"--to-accuracy takes accuracies between 0 and 1, e.g. 0.92,0.96; got {args.to_accuracy}")
    impls = _list(args.impl, name="--impl") if args.impl else ["xpnet-numpy"]
    nets = _list(args.net, name="--net")
    batches = _list(args.batch_sizes, lambda b: b if b == "full" else int(b), "--batch-sizes") if args.batch_sizes else [
        1, 16, 64, 256, 1024]
    bad = [b for b in batches if b not in bench.BATCH_SIZES or b == "full"] + [n for n in nets if n not in bench.NETS]
    if bad:
        raise ValidationError(f"--to-accuracy takes --batch-sizes from 1, 16, 64, 256, 1024 and --net small/large; "
                              f"got {', '.join(map(str, bad))}")
    data = datasets.prepare(datasets.load_mnist(), dtype=np.float32)
    results = []
    for net in nets:
        for batch in batches:
            lr, scores = bench.choose_lr(net, batch, data)
            if not args.json:
                print(f"{net} net, batch {batch}: lr {lr:g} (validation accuracy after 2 epochs: "
                      + ", ".join(f"{k:g}: {100 * v:.1f}%" for k, v in scores.items()) + ")", file=sys.stderr, flush=True)
            for impl in impls:
                for seed in range(args.seeds):
                    base = {"implementation": impl, "net": net, "batch_size": batch, "lr": lr, "seed": seed}
                    try:
                        learner = bench.make_learner(impl, net, "float32", batch, lr, seed, data, peers)
                    except bench.Unavailable as exc:
                        results.append({**base, "skipped": str(exc)})
                        continue
                    result = {**base, **bench.time_to_accuracy(learner, targets, len(data[1]), max_seconds=args.max_seconds)}
                    results.append(result)
                    if not args.json:
                        got = ", ".join(f"{100 * float(t):g}%: " + (f"{r['seconds']:.2f} s" if r else "not reached")
                                        for t, r in result["reached"].items())
                        print(f"  {impl} seed {seed}: {got}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"environment": bench.environment(), "targets": targets, "results": results}))
        return 0
    for net in nets:
        print(f"\n{net} net {bench.NETS[net]['layers']}, float32: training seconds until the test accuracy first "
              f"reaches each target (median of {args.seeds} seed(s); accuracy read every {bench.CHECK_EVERY} samples, "
              f"off the clock; at most {args.max_seconds:g} s of training)")
        print(bench.to_accuracy_table([r for r in results if r["net"] == net], targets))
    return 0


def cmd_bench(args) -> int:
    from . import bench

    peers = bench.load_peers(args.peers)
    if args.to_accuracy:
        return _bench_to_accuracy(args, bench, peers)
    impls = _list(args.impl, name="--impl") if args.impl else [
        i for i in bench.implementations(("cpu", "cuda")) if i not in ("xpnet-array_api_strict", "hand-tuned-numpy")
    ]
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
    total = len(impls) * len(nets) * len(dtypes) * len(batches) * len(models)
    done = []

    def show(result):
        done.append(result)
        if args.json:
            return
        what = f"[{len(done)}/{total}] {result['implementation']} {result['net']} {result['dtype']} batch {result['batch_size']}"
        if result.get("models"):
            what += f", {result['models']} models"
        if "skipped" in result:
            line = f"{what}: skipped ({result['skipped']})"
        else:
            line = (f"{what}: {result['samples_per_second']:,.0f} samples/s "
                    f"(min {result['min']:,.0f}, max {result['max']:,.0f}; {result['samples_per_round']} samples a round)")
        print(line, file=sys.stderr, flush=True)

    results = bench.run_suite(impls, nets, dtypes, batches, rounds=args.rounds, target=args.target, on_result=show,
                              peers=peers, models=models)
    if args.json:
        print(json.dumps({"environment": bench.environment(), "results": results}, indent=1))
        return 0
    for net in nets:
        for dtype in dtypes:
            if args.models is None:
                print(f"\n{net} net {bench.NETS[net]['layers']}, {dtype}: median samples/s of {args.rounds} rounds "
                      "(ratio to the same implementation at batch 1)")
                print(bench.markdown_table(results, net, dtype))
            else:
                print(f"\n{net} net {bench.NETS[net]['layers']}, {dtype}: median model-samples/s (networks x "
                      f"samples/s) of {args.rounds} rounds (ratio to one network)")
                print(bench.models_table(results, net, dtype))
    return 0


def cmd_plot(args) -> int:

    from .io import check_directory
    from .metrics import confusion_matrix, predicted_classes

    try:
        from . import plot
    except ImportError as exc:
        raise ValidationError(str(exc)) from None
    out = check_directory(args.out, "--out")
    if args.sweep:
        from .sweep import load_records, selection_metric

        records = load_records(args.sweep)
        for path in (plot.sweep_accuracy(records, out / "sweep-accuracy.png", selection_metric(records)),
                     plot.sweep_curves(records, out / "sweep-curves.png")):
            print(path)
        return 0
    net, dataset, classes, X_test, y_test = _saved_run(args)
    meta = net.meta
    probs = net.predict_proba(X_test)
    pred = np.asarray(predicted_classes(probs))
    written = []
    if meta.get("history"):
        title = f"{'-'.join(map(str, net.sizes))} {'/'.join(net.activation_names)}, {net.head.loss}, {dataset}"
        written.append(plot.history(meta["history"], out / "history.png", title=title))
    written.append(plot.misclassified(X_test, y_test, pred, classes, out / "misclassified.png"))
    written.append(plot.weight_histograms(net.get_weights(), out / "weights.png"))
    written.append(plot.probabilities(X_test, probs, y_test, classes, out / "probabilities.png"))
    written.append(plot.confusion(confusion_matrix(y_test, pred, net.n_classes), classes, out / "confusion.png"))
    for path in written:
        print(path)
    return 0


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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (status 2), like every other user error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xpnet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train a network on MNIST or Fashion-MNIST")
    _add_model_args(p)
    _add_backend_args(p)
    _add_data_args(p)
    p.add_argument("--lr", type=float, default=0.003, help="learning rate (default 0.003)")
    p.add_argument("--epochs", type=_at_least(0), default=3, help="epochs; 0 evaluates the untrained net (default 3)")
    p.add_argument("--batch-size", type=_at_least(1), default=1, help="samples per SGD step; 1 is the textbook per-sample algorithm (default 1)")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None,
                   help="reshuffle every epoch (default: on for batch size > 1, off for 1)")
    p.add_argument("--validation", type=float, default=None, metavar="FRACTION", help="hold out this fraction of the training set")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="run each epoch as one compiled call (default: on where the backend has a compiler: jax)")
    p.add_argument("--save", default=None, metavar="PATH", help="write weights, config and history to this .npz (atomically)")
    p.add_argument("--checkpoint-every", type=_at_least(1), default=None, metavar="N",
                   help="also write --save after every N epochs (N >= 1; default: only at the end)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint at --save, if there is one; "
                   "the result equals an uninterrupted run")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sweep", help="train a grid of configurations, many networks at once (stacks)")
    p.add_argument("--layers", default="784-32-32-10", help="layer sizes joined by '-'; a list joined by ',' "
                   "(default 784-32-32-10)")
    p.add_argument("--activation", default="sigmoid", help=f"hidden activation ({', '.join(functions.ACTIVATIONS)}), one "
                   "per hidden layer joined by '/'; a list joined by ',' (default sigmoid)")
    p.add_argument("--loss", default="cross-entropy", type=_one(), choices=functions.LOSSES)
    p.add_argument("--output", default=None, type=_one(), choices=functions.OUTPUTS,
                   help="output activation (default: the loss's own)")
    p.add_argument("--init", default="normal-max", help=f"a list of: {', '.join(INITIALISERS)} (default normal-max)")
    p.add_argument("--init-scale", default="1", metavar="C,...", help="multipliers of the initial weights (default 1)")
    p.add_argument("--seed", default="0", help="seeds and ranges, e.g. 0-4 or 0,3,7 (default 0)")
    _add_backend_args(p, sweep=True)
    _add_data_args(p, sweep=True)
    p.add_argument("--lr", default="0.003", help="learning rates, e.g. 1e-4,1e-3,0.01 (default 0.003)")
    p.add_argument("--epochs", type=_one(_at_least(0)), default=3, help="epochs of every configuration (default 3)")
    p.add_argument("--batch-size", default="1", help="batch sizes, e.g. 1,64 (default 1)")
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None,
                   help="reshuffle every epoch (default: on for batch size > 1, off for 1)")
    p.add_argument("--validation", type=_one(float), default=None, metavar="FRACTION",
                   help="hold out this fraction of the training set (the same for every configuration)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compiled epochs where the backend has a compiler (default: on for jax)")
    p.add_argument("--stack-size", type=_one(_at_least(1)), default=None, metavar="K",
                   help="at most K networks per stack (default: as many as --memory allows)")
    p.add_argument("--memory", type=_one(_at_least(1)), default=1024, metavar="MIB",
                   help="device memory one stack may use for its networks, MiB (default 1024)")
    p.add_argument("--json", action="store_true", help="print one JSON record per configuration, as stacks finish")
    p.add_argument("--out", default=None, metavar="FILE", help="write the JSON records to FILE (one per line), "
                   "rewritten atomically as each stack finishes")
    p.add_argument("--save-dir", default=None, metavar="DIR", help="write each configuration's weights to DIR "
                   "(loadable by xpnet evaluate)")
    p.add_argument("--resume", action="store_true", help="train only the configurations that --out does not hold yet")
    p.add_argument("--workers", type=_one(_at_least(1)), default=None, metavar="N",
                   help="run the stacks on a local Dask cluster of N worker processes (needs xpnet[distributed])")
    p.add_argument("--scheduler", type=_one(), default=None, metavar="tcp://HOST:PORT",
                   help="run the stacks on the Dask cluster of this scheduler (needs xpnet[distributed])")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_sweep)

    p = sub.add_parser("export", help="write a trained network as an ONNX model (its own forward kernels, traced)")
    p.add_argument("--weights", required=True, metavar="PATH", help="an .npz written by 'xpnet train --save'")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write (atomically)")
    p.add_argument("--no-label", action="store_true", help="export the probabilities only, no 'label' output")
    p.add_argument("--check", action="store_true", help="run the export in onnxruntime on test images and compare "
                   "with xpnet (batch 1 and 1000; exit status 1 if it differs)")
    p.add_argument("--data-dir", default=None, help="directory holding the IDX files, for --check")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("evaluate", help="score saved weights (or an exported ONNX model) on a test set")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--weights", metavar="PATH", help="an .npz written by 'xpnet train --save'")
    which.add_argument("--onnx", metavar="PATH", help="an .onnx written by 'xpnet export', run in onnxruntime")
    _add_backend_args(p, dtype=None)
    _add_data_args(p, saved=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("plot", help="write PNG plots of a saved run (history, mistakes, weights, probabilities, "
                       "confusion) or of a sweep (accuracy against learning rate, learning curves)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--weights", metavar="PATH", help="an .npz written by 'xpnet train --save'")
    which.add_argument("--sweep", metavar="FILE", help="the records 'xpnet sweep --out FILE' wrote")
    p.add_argument("--out", default="plots", metavar="DIR", help="directory for the PNG files (default ./plots)")
    p.add_argument("--data-dir", default=None, help="directory holding the IDX files, as for train")
    p.set_defaults(run=cmd_plot)

    p = sub.add_parser("bench", help="training throughput per implementation and batch size (about 2 minutes)")
    p.add_argument("--impl", default=None, help="comma-separated implementations (default: every one installed "
                   "here except xpnet-array_api_strict; e.g. xpnet-numpy,torch-eager,sklearn,seeds-loop)")
    p.add_argument("--net", default="small", help="small (784-32-32-10 sigmoid) and/or large (784-256-128-64-10 relu)")
    p.add_argument("--dtype", default="float32", help="float32 and/or float64, comma-separated")
    p.add_argument("--batch-sizes", default=None, help="comma-separated; 'full' is the whole training set "
                   "(default 1,16,64,256,1024,full; with --to-accuracy 1,16,64,256,1024)")
    p.add_argument("--rounds", type=_at_least(1), default=5, help="timed rounds per case; the table shows their median")
    p.add_argument("--target", type=float, default=0.25, help="seconds per timed round (default 0.25)")
    p.add_argument("--models", default=None, metavar="K,...", help="train stacks of K networks at once and report "
                   "model-samples/s, e.g. 1,4,16,64,256 (xpnet's implementations only)")
    p.add_argument("--to-accuracy", default=None, metavar="A[,B]", help="time to accuracy instead of throughput: "
                   "training seconds until the test accuracy first reaches A (and B), lr chosen per batch size "
                   "(default impl xpnet-numpy; about a minute)")
    p.add_argument("--seeds", type=_at_least(1), default=1, help="seeds per time-to-accuracy case; tables show the median (1)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="training budget per time-to-accuracy run (20)")
    p.add_argument("--peers", default=None, metavar="PATH", help="the peers' runners (default ./benchmarks/peers.py "
                   "when it exists; it is part of a source checkout, not of the installed package)")
    p.add_argument("--json", action="store_true", help="print the raw measurements as JSON")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("gradcheck", help="check backward() against central finite differences (float64)")
    _add_model_args(p, layers="20-16-16-10")
    _add_backend_args(p, dtype=False)
    p.add_argument("--samples", type=_at_least(1), default=8, help="random samples in the batch (default 8)")
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (default 1e-6)")
    p.add_argument("--max-entries", type=_at_least(1), default=64, help="entries checked per array (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_gradcheck)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except XpnetError as exc:
        print(f"xpnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xpnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
