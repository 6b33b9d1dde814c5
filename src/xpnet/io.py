"""Saving and loading weights as ``.npz``: ``W0, b0, W1, b1, ...`` plus a JSON ``meta`` entry.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), so an interrupted save
never leaves a half-written file. Loads use ``allow_pickle=False``: a weights file holds numbers and one
JSON string, and can never make xpnet run code.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError


def atomic_write(path, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(path, weights, meta: dict) -> None:
    """Save host ``[(W, b), ...]`` and the ``meta`` dict (JSON) to ``path`` atomically."""
    arrays = {}
    for l, (W, b) in enumerate(weights):
        arrays[f"W{l}"] = np.asarray(W)
        arrays[f"b{l}"] = np.asarray(b)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_weights(path):
    """Return ``([(W, b), ...], meta)`` from a file written by :func:`save_weights`.

    Raises :class:`~xpnet.errors.DataError` naming the file for anything missing, damaged or inconsistent.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such weights file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: not a readable xpnet weights file ({type(exc).__name__}: {exc})") from None
    if "meta" not in contents:
        raise DataError(f"{path}: no 'meta' entry; not an xpnet weights file")
    try:
        meta = json.loads(str(contents["meta"]))
        if not isinstance(meta, dict):
            raise TypeError("meta is not a JSON object")
        sizes = [int(n) for n in meta["sizes"]]
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"{path}: damaged 'meta' entry ({type(exc).__name__}: {exc})") from None
    weights = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = contents.get(f"W{l}"), contents.get(f"b{l}")
        if W is None or b is None:
            raise DataError(f"{path}: missing W{l} or b{l} for layers {sizes}")
        if W.shape != (n_in, n_out) or b.shape != (n_out,) or W.dtype.kind != "f" or b.dtype.kind != "f":
            raise DataError(
                f"{path}: layer {l} should be float W({n_in}, {n_out}) and b({n_out},); "
                f"found {W.dtype} W{W.shape} and {b.dtype} b{b.shape}"
            )
        weights.append((W, b))
    return weights, meta
