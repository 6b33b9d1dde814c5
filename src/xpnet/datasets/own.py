"""Your own data (``xpnet train --data FILE``): a ``.npz``, a CSV file or a folder of IDX files.

- ``.npz``: arrays ``X`` (rows, features) and ``y`` (rows,) of whole-number labels; optionally
  ``X_test`` and ``y_test``, and ``classes`` (one name per label). The names Keras' and scikit-learn's
  files use are read alike (:data:`NPZ_NAMES`: ``x_train``, ``y_train``, ``x_test``, ``y_test``,
  ``data``, ``target``, ``target_names`` ...); images (rows, height, width, and any channels) are
  flattened, and plotted as images where they have one channel; labels may be names (numbered in the
  order of ``classes``, or sorted).
- CSV (comma-separated, an optional header line): the label is the column headed ``label``, ``y``,
  ``target``, ``class`` (:data:`LABEL_COLUMNS`); without such a header, the one column that is not
  numeric; otherwise the first or the last column, whichever holds labels (whole numbers 0, 1, ... each
  present; the first column when both do, as in the common MNIST CSV files), and the choice is said once.
  Labels are whole numbers, or names (sorted, then numbered from 0).
- A folder of IDX files named as MNIST's (``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``,
  gzip or raw; ``t10k-...`` optionally): images of any size, flattened.

Without a test split (no ``X_test``/``y_test``, a CSV, no ``t10k`` files) a fifth of the rows
(:data:`TEST_FRACTION`; stratified: a fifth of each class, chosen by the run's split seed) is held out as
the test set, never trained on; the :class:`~xpnet.datasets.Dataset` names them (``held_out``). Every problem -- a missing file, an unknown format, a wrong shape, a value that is not a finite
number, a negative or fractional label -- is one :class:`~xpnet.errors.DataError` naming the file, raised
before any work. :func:`identify` gives the name and SHA-256 a run records.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError

LABEL_COLUMNS = ("label", "labels", "y", "target", "targets", "class", "classes", "category", "species", "digit")
#: The arrays of a ``.npz`` under each name they are read from, the first one present.
NPZ_NAMES = {"X": ("X", "x", "X_train", "x_train", "data", "features"),
             "y": ("y", "y_train", "Y", "Y_train", "labels", "label", "target", "targets"),
             "X_test": ("X_test", "x_test"), "y_test": ("y_test", "Y_test"),
             "classes": ("classes", "class_names", "target_names")}
#: The fraction of the rows held out as the test set of data without a test split of its own.
TEST_FRACTION = 0.2
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def identify(path) -> tuple[str, str]:
    """``(name, sha256)`` of the data at ``path``: its file name and the SHA-256 of its bytes (of a folder:
    of its IDX files' names and digests)."""
    path = Path(path)
    if path.is_dir():
        listing = "".join(f"{base}\0{_file_digest(p)}\n" for base, p in _idx_files(path).items())
        return path.name, hashlib.sha256(listing.encode()).hexdigest()
    return path.name, _file_digest(path)


def digest_arrays(*arrays) -> str:
    """SHA-256 of arrays given in Python (``fit``'s data): each one's dtype, shape and bytes, in order
    (``None`` for an array not given)."""
    h = hashlib.sha256()
    for a in arrays:
        a = None if a is None else np.ascontiguousarray(a)
        h.update(b"-" if a is None else f"{a.dtype.str}{a.shape}".encode())
        if a is not None:
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        raise DataError(f"--data {path}: no such file or folder") from None
    return _digest(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    """SHA-256 of a file's bytes; cached while the file is unchanged."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"--data {path}: cannot be read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def load(path, sha256: str | None = None, split_seed: int = 0):
    """The data at ``path`` as a :class:`~xpnet.datasets.Dataset` (features as stored, labels ``int64``),
    checked; with ``sha256``, the data must still be the one a run recorded. Without a test split of its
    own, :func:`held_out` rows (chosen by ``split_seed``) are the test set."""
    from . import Dataset

    path = Path(path)
    name, digest = identify(path)
    if sha256 is not None and digest != sha256:
        raise DataError(f"--data {path}: not the data this run was made with (sha256 {digest[:12]}..., recorded "
                        f"{sha256[:12]}...)")
    shape = label_note = None
    if path.is_dir():
        X, y, X_test, y_test, classes, shape = _read_idx_folder(path)
    elif path.suffix.lower() == ".npz":
        X, y, X_test, y_test, classes, shape = _read_npz(path)
    elif path.suffix.lower() in (".csv", ".txt"):
        X, y, X_test, y_test, classes, label_note = _read_csv(path)
    else:
        raise DataError(f"--data {path}: not a .npz, .csv or folder of IDX files")
    note, rows = label_note, None
    classes = _check(path, X, y, X if X_test is None else X_test, y if y_test is None else y_test, classes)
    if X_test is None:
        test = held_out(y, TEST_FRACTION, split_seed)
        if not test.any() or test.all():
            raise DataError(f"--data {path}: {len(y)} rows are too few to hold a test set out of them; give it "
                            "a test split of its own (X_test, y_test)")
        rows = np.flatnonzero(test)
        X, y, X_test, y_test = X[~test], y[~test], X[test], y[test]
        held = (f"{name} has no test split: {len(rows)} of its {len(test)} rows ({TEST_FRACTION:.0%} of each class, "
                f"chosen by --split-seed {split_seed}) are held out as the test set, never trained on")
        note = "\n".join(filter(None, (note, held)))
    side = int(round(np.sqrt(X.shape[1])))
    if shape is None and side * side == X.shape[1] and side >= 8:
        shape = (side, side)
    return Dataset(name, X, y.astype(np.int64), X_test, y_test.astype(np.int64), classes, str(path), note, rows,
                   shape)


def held_out(y, fraction: float, seed: int = 0) -> np.ndarray:
    """Which rows (a boolean mask) form a test set of ``fraction`` of the rows of each class, chosen by
    ``numpy.random.default_rng(seed)``: at least one row of a class of two rows or more, never all of it."""
    y = np.asarray(y)
    rng, test = np.random.default_rng(seed), np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        count = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        test[rng.permutation(rows)[:count]] = True
    return test


def _check(path, X, y, X_test, y_test, classes) -> list[str]:
    """One-line errors for what training could not use; the class names."""
    for split, features, labels in (("", X, y), ("_test", X_test, y_test)):
        if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
            raise DataError(f"--data {path}: X{split} must be a table of rows and features; got shape {features.shape}")
        if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
            raise DataError(f"--data {path}: y{split} must hold one label per row of X{split} ({features.shape[0]}); "
                            f"got shape {labels.shape}")
        if features.dtype.kind not in "biuf":
            raise DataError(f"--data {path}: X{split} must hold numbers; got dtype {features.dtype}")
        bad = ~np.isfinite(features) if features.dtype.kind == "f" else None
        if bad is not None and bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise DataError(f"--data {path}: X{split} row {row} feature {col} is {features[row, col]} "
                            "(not a finite number)")
        if labels.dtype.kind not in "biuf" or (labels.dtype.kind == "f" and not np.all(labels == np.round(labels))):
            raise DataError(f"--data {path}: y{split} must hold whole-number labels; got {labels[:3].tolist()} ...")
        if labels.min() < 0:
            raise DataError(f"--data {path}: y{split} holds the negative label {labels.min()}; labels count from 0")
    if X_test.shape[1] != X.shape[1]:
        raise DataError(f"--data {path}: X_test has {X_test.shape[1]} features, X has {X.shape[1]}")
    count = int(max(y.max(), y_test.max())) + 1
    if classes is None:
        classes = [str(c) for c in range(count)]
    elif len(classes) < count:
        raise DataError(f"--data {path}: {len(classes)} class names for labels up to {count - 1}")
    if len(classes) < 2:
        raise DataError(f"--data {path}: every label is 0; a classifier needs two classes or more")
    return list(classes)


def _read_npz(path):
    if not zipfile.is_zipfile(path):
        raise DataError(f"--data {path}: not a .npz file (not a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"--data {path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    found = {role: next((arrays[n] for n in names if n in arrays), None) for role, names in NPZ_NAMES.items()}
    missing = [k for k in ("X", "y") if found[k] is None]
    if missing:
        raise DataError(f"--data {path}: no array {' or '.join(missing)} (it holds {', '.join(arrays) or 'nothing'}); "
                        "expected X, y and optionally X_test, y_test, classes (or x_train, y_train, x_test, y_test)")
    if (found["X_test"] is None) != (found["y_test"] is None):
        raise DataError(f"--data {path}: X_test and y_test come together; it holds only one")
    classes = found["classes"]
    if classes is not None:
        if classes.ndim != 1:
            raise DataError(f"--data {path}: classes must be a list of names; got shape {classes.shape}")
        classes = [str(c) for c in classes.tolist()]
    y, y_test = found["y"], found["y_test"]
    if y.dtype.kind in "US" or (y_test is not None and y_test.dtype.kind in "US"):
        y, y_test, classes = _named_labels(path, y, y_test, classes)
    X, X_test, shape = found["X"], found["X_test"], None
    if X.ndim >= 3:  # images: flattened; drawn as images where they have one channel
        shape = tuple(X.shape[1:3]) if X.ndim == 3 or (X.ndim == 4 and X.shape[-1] == 1) else None
        if X_test is not None and X_test.shape[1:] != X.shape[1:]:
            raise DataError(f"--data {path}: X_test holds rows of shape {X_test.shape[1:]}, X of {X.shape[1:]}")
        X = X.reshape(len(X), -1)
        X_test = None if X_test is None else X_test.reshape(len(X_test), -1)
    return X, y, X_test, y_test, classes, shape


def _named_labels(path, y, y_test, classes):
    """Labels given as names: numbered in the order of ``classes``, or sorted where it is not given."""
    if y_test is not None and (y.dtype.kind in "US") != (y_test.dtype.kind in "US"):
        raise DataError(f"--data {path}: y and y_test must both hold names or both numbers")
    labels = [np.char.strip(a.astype(str)).tolist() for a in (y, y_test) if a is not None]
    found = set().union(*labels)
    names = classes or sorted(found)
    unknown = sorted(found - set(names))
    if unknown:
        raise DataError(f"--data {path}: y holds the label {unknown[0]!r}, which classes does not name")
    number = {name: i for i, name in enumerate(names)}
    y, *rest = (np.array([number[v] for v in a], dtype=np.int64) for a in labels)
    return y, (rest[0] if rest else None), [str(n) for n in names]


def _read_csv(path):
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            first = next(reader, None)
            second = next(reader, None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"--data {path}: not a readable CSV file ({exc})") from None
    if first is None:
        raise DataError(f"--data {path}: empty")
    header = not all(map(_number, first)) and second is not None and sum(map(_number, second)) > sum(map(_number, first))
    names = [c.strip().lower() for c in first] if header else []
    row = second if header else first
    if row is None:
        raise DataError(f"--data {path}: a header and no rows")
    text = [i for i, c in enumerate(row) if not _number(c)]
    label = next((names.index(n) for n in LABEL_COLUMNS if n in names), None)
    if label is None and len(text) == 1:
        label = text[0]
    if len(row) < 2:
        raise DataError(f"--data {path}: one column; expected a label and features")
    if label is None:  # every column a number: read once, the labels are the first or the last column
        table = _loadtxt(path, header, None, np.float64)
        label = _label_column(table)
        note = (f"{path.name}: the labels are its {'first' if label == 0 else 'last'} column (a header naming a "
                f"column {', '.join(LABEL_COLUMNS[:4])} or class chooses another)")
        return np.delete(table, label, axis=1), table[:, label], None, None, None, note
    X = _loadtxt(path, header, [i for i in range(len(row)) if i != label], np.float64)
    raw = np.char.strip(_loadtxt(path, header, [label], str)[:, 0])
    if all(map(_number, raw)):
        return X, raw.astype(np.float64), None, None, None, None
    classes, y = np.unique(raw, return_inverse=True)
    return X, y, None, None, [str(c) for c in classes], None


def _loadtxt(path, header: bool, columns, dtype) -> np.ndarray:
    """The CSV's rows (after the header line, if any): ``columns`` of them (``None``: all) as ``dtype``."""
    try:
        return np.loadtxt(path, delimiter=",", skiprows=int(header), usecols=columns, ndmin=2, dtype=dtype)
    except (ValueError, IndexError) as exc:
        raise DataError(f"--data {path}: {str(exc).splitlines()[0]}") from None


def _label_column(table: np.ndarray) -> int:
    """Of a table of numbers whose header (if any) names no label column: the first or the last column,
    whichever holds labels -- whole numbers 0, 1, ..., k-1, each present, k >= 2 (a corner pixel or a
    measurement does not); the first when both or neither do."""
    for column in (0, table.shape[1] - 1):
        values = np.unique(table[:, column])
        if len(values) >= 2 and np.array_equal(values, np.arange(len(values))):
            return column
    return 0


def _number(text) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _idx_files(folder: Path) -> dict[str, Path]:
    found = {}
    for base in IDX_FILES:
        for candidate in (folder / f"{base}.gz", folder / base):
            if candidate.is_file():
                found[base] = candidate
                break
    if not all(b in found for b in IDX_FILES[:2]):
        raise DataError(f"--data {folder}: a folder needs {IDX_FILES[0]} and {IDX_FILES[1]} (.gz or raw); "
                        f"it holds {', '.join(sorted(p.name for p in folder.iterdir())[:6]) or 'nothing'}")
    if (IDX_FILES[2] in found) != (IDX_FILES[3] in found):
        raise DataError(f"--data {folder}: {IDX_FILES[2]} and {IDX_FILES[3]} come together; it holds only one")
    return found


def _read_idx_folder(folder: Path):
    from .idx import read_idx

    found = _idx_files(folder)
    arrays = [read_idx(found[b]) if b in found else None for b in IDX_FILES]
    flat = [a if a is None or i % 2 else a.reshape(len(a), -1) for i, a in enumerate(arrays)]
    return (*flat, None, tuple(arrays[0].shape[1:]) if arrays[0].ndim == 3 else None)
