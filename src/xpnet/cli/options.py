"""The command line's half of the run specification: the argparse options of ``xpnet train`` and ``xpnet
sweep`` built from the declaration of every field (:data:`xpnet.spec.OPTIONS`), and the run built back from
the parsed options -- so that one flag means one thing in every command, and a new option is a field of
:mod:`xpnet.spec` and nothing here.
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import spec
from ..errors import ValidationError
from ..spec import FIELDS, OPTIONS, SWEPT, Option, Run

#: The options of ``xpnet train`` and ``xpnet sweep`` (data_dir and the seed included).
COMMAND_FIELDS = tuple(k for k, o in OPTIONS.items() if o.flag)


def add_arguments(parser, names=COMMAND_FIELDS, lists: bool = False, defaults: dict | None = None) -> None:
    """Add the options of the fields ``names`` to ``parser``, one argument group per run group.

    ``lists``: the command is ``xpnet sweep`` -- sweepable options take comma-separated lists (parsed by
    :func:`from_args`), the others one value. Otherwise every option takes one value. ``defaults`` overrides
    a field's default (``None`` for "as saved" and the like); the help shows it."""
    defaults = defaults or {}
    parser.set_defaults(spec_fields=(*(parser.get_default("spec_fields") or ()), *names))  # what from_args reads
    by_group: dict[str, Any] = {}
    for name in names:
        opt, group = OPTIONS[name], FIELDS[name] or "run"
        target = by_group.get(group) or by_group.setdefault(group, parser.add_argument_group(f"{group} options"))
        default = defaults.get(name, spec.default_of(name))
        listed = lists and opt.sweep
        text = opt.help + ("; a list joined by ','" + (" or ranges like 0-4" if name == "seed" else "") if listed else "")
        if name in defaults and default is None:
            text += " (default: as saved)"
        elif default is not None and not opt.action:  # a switch's help says what it changes
            text += f" (default {default})"
        if opt.boolean or opt.action:
            action = opt.action or argparse.BooleanOptionalAction
            target.add_argument(opt.flag, dest=name, action=action, default=default, help=text)
            continue
        kind = str if listed else one_value(opt.parse, SWEPT_FLAGS if lists else None, commas=name == "digits")
        target.add_argument(opt.flag, dest=name, type=kind, default=default, help=text,
                            choices=None if listed or opt.choices is None else opt.choices,
                            metavar=_metavar(opt) if opt.choices is None or listed else None)


def from_args(args, lists: bool = False, base: Run | None = None) -> Run:
    """The run (a grid with ``lists``) the parsed options describe; options the parser lacks keep
    ``base``'s values. A sweepable option's list is parsed here, with one-line errors."""
    values = {}
    for name in getattr(args, "spec_fields", ()):
        opt = OPTIONS[name]
        if hasattr(args, name):
            value = getattr(args, name)
            values[name] = _split(opt, value) if lists and opt.sweep and isinstance(value, str) else value
    hidden = getattr(args, "hidden", None)
    if hidden is not None:
        if getattr(args, "layers", None) != spec.default_of("layers"):
            raise ValidationError("give --hidden (the hidden layers; the ends from the data) or --layers, not both")
        layers = [f"in-{h}-out" if h else "in-out" for h in (t.strip() for t in (hidden.split(",") if lists else [hidden]))]
        values["layers"] = layers if len(layers) > 1 else layers[0]
    return Run.from_flat(values, base)


def add_hidden(parser, lists: bool = False) -> None:
    """``--hidden``: the hidden layers only, the input size and the class count taken from the data."""
    parser.add_argument("--hidden", default=None, metavar="H-H", help="hidden layer sizes joined by '-' (e.g. 32-32; "
                        "'' for none), the input size and the class count from the data: --layers in-32-32-out"
                        + ("; a list joined by ','" if lists else ""))


def _metavar(opt: Option) -> str:
    return opt.metavar or opt.flag.lstrip("-").upper().replace("-", "_")


def one_value(parse, swept: str | None = None, commas: bool = False):
    """An argparse type taking one value, not a comma-separated list: ``swept`` (the sweep's list
    options) says the command is a sweep; ``commas`` lets a value hold commas (``--digits 3,9``)."""

    def one(text):
        if "," in text and not commas:
            if swept is None:
                raise argparse.ArgumentTypeError(f"takes one value, not a list ({text!r}); lists are for xpnet sweep")
            raise argparse.ArgumentTypeError(f"takes one value in a sweep, not a list ({text!r}); only {swept} "
                                             "take lists")
        return parse(text)

    one.__name__ = getattr(parse, "__name__", "value")  # argparse names it in "invalid int value"
    return one


#: The options of ``xpnet sweep`` that take lists, as its messages name them.
SWEPT_FLAGS = ", ".join(OPTIONS[k].flag for k in SWEPT)


def _split(opt: Option, text: str) -> list:
    """A comma-separated list of the option's values (seeds also as ranges such as ``0-4``)."""
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise ValidationError(f"{opt.flag} has an empty item: {text!r}")
    values = []
    for item in items:
        if opt.flag == "--seed" and not item.startswith("-"):  # a range; a negative seed is refused below
            first, dash, last = item.partition("-")
            try:
                low, high = int(first), int(last if dash else first)
            except ValueError:
                raise ValidationError(f"--seed takes integers and ranges like 0-7; got {item!r}") from None
            if high < low:
                raise ValidationError(f"--seed range {item!r} is empty")
            values += range(low, high + 1)
            continue
        try:
            values.append(opt.parse(item))
        except ValueError as exc:
            raise ValidationError(f"{opt.flag}: {exc}") from None
    return values
