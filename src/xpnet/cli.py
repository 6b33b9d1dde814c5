"""The ``xpnet`` command: ``xpnet train | evaluate | gradcheck | bench``.

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
from .errors import XpnetError
from .init import INITIALISERS


def _add_model_args(p, layers="784-32-32-10"):
    p.add_argument("--layers", default=layers, help=f"layer sizes joined by '-' (default {layers})")
    p.add_argument("--activation", default="sigmoid", help=f"hidden activation: {', '.join(functions.ACTIVATIONS)}; "
                   "or one per hidden layer joined by ','")
    p.add_argument("--loss", default="cross-entropy", choices=functions.LOSSES)
    p.add_argument("--output", default=None, choices=functions.OUTPUTS, help="output activation (default: the loss's own)")
    p.add_argument("--init", default="normal-max", choices=list(INITIALISERS))
    p.add_argument("--seed", type=int, default=0)


def _add_backend_args(p, dtype="float32"):
    p.add_argument("--backend", default="numpy", help=f"array library: {', '.join(LIBRARIES)} (default numpy)")
    p.add_argument("--device", default=None, help="device, e.g. cpu, cuda:0, device1 (default: the backend's)")
    p.add_argument("--dtype", default=dtype, choices=["float32", "float64"])


def _activation(text):
    return text.split(",") if "," in text else text


def _model(args, dtype=None):
    from .mlp import MLP

    return MLP(
        args.layers, _activation(args.activation), loss=args.loss, output=args.output, init=args.init,
        seed=args.seed, backend=args.backend, device=args.device, dtype=dtype or args.dtype,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xpnet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("gradcheck", help="check backward() against central finite differences (float64)")
    _add_model_args(p, layers="20-16-16-10")
    _add_backend_args(p)
    p.add_argument("--samples", type=int, default=8, help="random samples in the batch (default 8)")
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (default 1e-6)")
    p.add_argument("--max-entries", type=int, default=64, help="entries checked per array (default 64)")
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
