"""The argument checks every layer shares, each message written once.

Each check returns the value it accepts (normalised: a Python ``int`` or ``float``, a name from its
table) and raises a one-line :class:`~xpnet.errors.ValidationError` naming the argument otherwise, so
the Python API, the run specification (:mod:`xpnet.spec`) and the command line refuse the same things
with the same words.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

from .errors import ValidationError

#: Sequences that mean "one value per network" (or "one value per grid point" in a sweep).
SEQUENCES = (list, tuple, range, np.ndarray)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def number(name: str, value, low=None):
    """A finite number (>= ``low`` when given), as a float."""
    if not _is_number(value) or not math.isfinite(value) or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        raise ValidationError(f"{name} must be a finite number{bound}; got {value!r}")
    return float(value)


def positive(name: str, value) -> float:
    """A finite number > 0, as a float."""
    if not _is_number(value) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number > 0; got {value!r}")
    if value <= 0:
        raise ValidationError(f"{name} must be > 0; got {value!r}")
    return float(value)


def nonnegative(name: str, value) -> float:
    return number(name, value, low=0)


def below_one(name: str, value) -> float:
    """A decay rate in [0, 1)."""
    value = number(name, value, low=0)
    if value >= 1:
        raise ValidationError(f"{name} must lie in [0, 1); got {value!r}")
    return value


def integer(name: str, value, low: int | None = None) -> int:
    """A whole number (>= ``low`` when given), as an int; 3.0 is accepted as 3."""
    ok = _is_number(value) and math.isfinite(value) and float(value) == int(value)
    if not ok or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        raise ValidationError(f"{name} must be an integer{bound}; got {value!r}")
    return int(value)


def seed(name: str, value) -> int:
    """A random seed: a non-negative integer (not a float, not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValidationError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def fraction(name: str, value) -> float:
    """A number strictly between 0 and 1."""
    if not _is_number(value) or not 0.0 < value < 1.0:
        raise ValidationError(f"{name} must be between 0 and 1 (exclusive); got {value!r}")
    return float(value)


def flag(name: str, value, allow_none: bool = False):
    """A boolean (or ``None`` where that means "the default")."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ValidationError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def nearest(word, names) -> str:
    """``; did you mean 'X'?`` for the name of ``names`` nearest ``word`` where one is near, else ``""``."""
    import difflib

    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6) if isinstance(word, str) else []
    return f"; did you mean {close[0]!r}?" if close else ""


def choice(name: str, value, table: Iterable[str]):
    """One of the names of ``table`` (a dict's keys, or a sequence of names)."""
    names = list(table)
    if not isinstance(value, str) or value not in names:
        raise ValidationError(f"{name} must be one of {', '.join(names)}; got {value!r}{nearest(value, names)}")
    return value


def per_network(name: str, value, K: int, check: Callable | None = None) -> list:
    """One value for each of K networks: one value for all, or a sequence of exactly K; each passed
    through ``check(name, v)`` when given."""
    values = list(value) if isinstance(value, SEQUENCES) else [value] * K
    if len(values) != K:
        raise ValidationError(f"{name} takes one value or one per network ({K}); got {len(values)}")
    return [check(name, v) for v in values] if check is not None else values


def distinct(name: str, values: list, shown: list | None = None) -> list:
    """``values`` unless it is empty or holds a value twice (``shown`` are the values as given)."""
    if not values:
        raise ValidationError(f"{name} is an empty list; give at least one value")
    shown = values if shown is None else shown
    for i, v in enumerate(values):
        if v in values[:i]:
            raise ValidationError(f"{name} lists {shown[i]!r} twice")
    return values


def layers(value) -> list[int]:
    """Layer sizes, input first: ``"784-32-10"`` (or ``"784,32,10"``) or ``[784, 32, 10]``."""
    if isinstance(value, str):
        parts = value.replace(",", "-").split("-")
        if not all(p.strip().isdigit() for p in parts):
            raise ValidationError(f"layers must look like '784-32-10' (sizes joined by '-'); got {value!r}")
        sizes = [int(p) for p in parts]
    else:
        try:
            sizes = [int(n) for n in value]
        except (TypeError, ValueError):
            raise ValidationError(f"layers must be a sequence of ints or a string like '784-32-10'; got {value!r}") from None
        if any(int(n) != n for n in value):
            raise ValidationError(f"layer sizes must be whole numbers; got {list(value)!r}")
    if len(sizes) < 2:
        raise ValidationError(f"layers needs at least an input and an output size; got {sizes}")
    if min(sizes) < 1:
        raise ValidationError(f"every layer size must be at least 1; got {sizes}")
    return sizes
