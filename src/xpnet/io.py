"""Saving and loading weights as ``.npz``: ``W0, b0, W1, b1, ...`` plus a JSON ``meta`` entry.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), so an interrupted save
never leaves a half-written file. Loads use ``allow_pickle=False``: a weights file holds numbers and one
JSON string, and can never make xpnet run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import DataError, ValidationError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then move it into place.

    The file ends with the mode a plain ``open(path, "w")`` would give it: the mode of the file it
    replaces, or ``0o666`` less the umask for a new one (the temporary file alone would be ``0o600``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path, what: str = "output") -> Path:
    """Make sure a file can later be written at ``path`` -- before any long work -- or raise a one-line
    :class:`~xpnet.errors.ValidationError`: the path is not a directory, its folder exists or can be
    created, and a file can be created in that folder. Missing folders are created."""
    path = Path(path)
    if path.is_dir():
        raise ValidationError(f"{what} {path} is a directory; give a file path")
    _probe(path.parent, f"{what} {path}")
    return path


def check_directory(path, what: str = "output directory") -> Path:
    """Make sure files can later be written into the directory ``path`` (created if missing), or raise a
    one-line :class:`~xpnet.errors.ValidationError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValidationError(f"{what} {path} exists and is not a directory")
    _probe(path, f"{what} {path}")
    return path


def _probe(folder: Path, shown: str) -> None:
    """Create ``folder`` if needed and a file in it (removed again); a one-line error if either fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".xpnet-", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValidationError(f"{shown} cannot be written ({exc.strerror or exc}: {exc.filename or folder})") from None


def save_weights(path, weights, meta: dict, extra: dict | None = None) -> None:
    """Save host ``[(W, b), ...]``, the ``meta`` dict (JSON) and ``extra`` named host arrays (an
    optimizer's state, the best weights of early stopping) to ``path`` atomically."""
    arrays = {name: np.asarray(a) for name, a in (extra or {}).items()}
    for l, (W, b) in enumerate(weights):
        arrays[f"W{l}"] = np.asarray(W)
        arrays[f"b{l}"] = np.asarray(b)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_weights(path, extra: bool = False, models: int | bool | None = None):
    """Return ``([(W, b), ...], meta)`` from a file written by :func:`save_weights` (and, with ``extra``,
    the dict of its other float arrays as a third element). ``models``: the file holds a stack of that
    many networks (``meta["models"]``; every weight with that leading axis), ``True``: a stack of any
    size, ``None``: one network.

    Raises :class:`~xpnet.errors.DataError` naming the file for anything missing, damaged or inconsistent:
    whatever the bytes are, reading them either gives arrays that are what the file says or one line.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such weights file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a weights file") from None
    except Exception as exc:  # noqa: BLE001 -- any failure to read these bytes (a bad zip directory, a
        # compression method or an encryption flag flipped, a CRC mismatch, a header that lies) is a damaged file
        raise DataError(f"{path}: not a readable xpnet weights file ({type(exc).__name__}: {exc})") from None
    if "meta" not in contents:
        raise DataError(f"{path}: no 'meta' entry; not an xpnet weights file")
    try:
        if contents["meta"].dtype.kind != "U" or contents["meta"].ndim != 0:
            raise TypeError(f"meta is {contents['meta'].dtype} of shape {contents['meta'].shape}, not one string")
        meta = json.loads(str(contents["meta"]))
        if not isinstance(meta, dict):
            raise TypeError("meta is not a JSON object")
        sizes = [int(n) for n in meta["sizes"]]
        if len(sizes) < 2 or min(sizes) < 1 or meta["sizes"] != sizes:
            raise ValueError(f"sizes {meta['sizes']!r} are not layer sizes")
        held = meta.get("models")
        if held is not None and (isinstance(held, bool) or not isinstance(held, int) or held < 1):
            raise ValueError(f"models {held!r} is not a number of networks")
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"{path}: damaged 'meta' entry ({type(exc).__name__}: {exc})") from None
    if models is True and held is not None:
        models = held
    if held != models:
        what = "one network" if held is None else f"a stack of {held!r} networks"
        wanted = "one network" if models is None else "a stack" if models is True else f"a stack of {models}"
        raise DataError(f"{path}: holds {what}, not {wanted}")
    lead = () if models is None else (models,)
    weights = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = contents.get(f"W{l}"), contents.get(f"b{l}")
        if W is None or b is None:
            raise DataError(f"{path}: missing W{l} or b{l} for layers {sizes}")
        if W.shape != (*lead, n_in, n_out) or b.shape != (*lead, n_out) or W.dtype.kind != "f" or b.dtype.kind != "f":
            raise DataError(
                f"{path}: layer {l} should be float W{(*lead, n_in, n_out)} and b{(*lead, n_out)}; "
                f"found {W.dtype} W{W.shape} and {b.dtype} b{b.shape}"
            )
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise DataError(f"{path}: layer {l} holds NaN or infinity (a damaged file: xpnet saves finite weights only)")
        weights.append((W, b))
    named = {f"{k}{l}" for l in range(len(weights)) for k in "Wb"} | {"meta"}
    others = {k: v for k, v in contents.items() if k not in named}
    if not extra:
        return weights, meta
    bad = [k for k, v in others.items() if v.dtype.kind != "f"]
    if bad:
        raise DataError(f"{path}: entries {', '.join(sorted(bad))} should hold floats")
    return weights, meta, others
