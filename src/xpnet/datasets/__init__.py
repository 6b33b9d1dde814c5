"""MNIST (shipped inside the package) and Fashion-MNIST (found on disk or downloaded), plus preprocessing.

Data flows one way: IDX files -> host ``uint8`` arrays (:func:`load`) -> float host arrays
(:func:`scale`, :func:`digit_pair`, :func:`validation_split`) -> the device, once, inside ``fit``.

>>> data = load("mnist")
>>> data.X_train.shape, data.X_train.dtype
((60000, 784), dtype('uint8'))
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import checks
from ..errors import DataError, ValidationError
from .fetch import download
from .idx import read_idx

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

#: SHA-256 of each file's *uncompressed* IDX content: valid for a copy from any mirror, gzip or raw.
SHA256 = {
    "mnist": dict(zip(FILES, (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ))),
    "fashion-mnist": dict(zip(FILES, (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ))),
}
MIRRORS = {
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}
CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
DATASETS = tuple(SHA256)
SCALINGS = ("auto", "255", "max", "standardize", "none")
PACKAGED = Path(__file__).parent / "mnist"
DEBIAN_DIR = Path("/usr/share/datasets")


@dataclass(frozen=True)
class Sources:
    """Where data sets are looked for and downloaded from, and the checksums their files must match.
    :data:`SOURCES` is xpnet's; a test (or a mirror of one's own) passes another to :func:`load`."""

    packaged: Path = PACKAGED
    debian_dir: Path = DEBIAN_DIR
    sha256: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: SHA256)
    mirrors: Mapping[str, Sequence[str]] = field(default_factory=lambda: MIRRORS)


SOURCES = Sources()


@dataclass
class Dataset:
    """Host arrays: images flattened to (n, 784) ``uint8``, labels (n,) ``int64``."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list
    source: str
    #: Said to the user about this data, a line each (the column a CSV's labels were taken from, the held-out test rows).
    note: str | None = None
    #: The file's rows held out as the test set (own data without a test split), else ``None``.
    held_out: np.ndarray | None = None
    #: The features' shape as images (IDX files' own, a square count of 64 or more), ``None`` for a table.
    image_shape: tuple | None = None


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/xpnet`` (default ``~/.cache/xpnet``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xpnet"


def _find(directory: Path, name: str, base: str) -> Path | None:
    """``base`` or ``base.gz`` in ``directory`` or ``directory/name``."""
    for folder in (directory, directory / name):
        for candidate in (folder / f"{base}.gz", folder / base):
            if candidate.is_file():
                return candidate
    return None


def _candidates(name: str, data_dir, sources: Sources) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    elif os.environ.get("XPNET_DATA"):
        dirs.append(Path(os.environ["XPNET_DATA"]))
    else:
        if name == "mnist":
            dirs.append(sources.packaged)
        dirs += [cache_dir() / name, sources.debian_dir / name]
    return dirs


def locate(name: str, data_dir=None, allow_download: bool = True, progress: bool | None = None,
           sources: Sources = SOURCES) -> dict[str, Path]:
    """Paths of the four files of dataset ``name``.

    Looked for in ``data_dir`` (or ``$XPNET_DATA``) if given; otherwise in the package (MNIST), the
    user cache and Debian's ``/usr/share/datasets/<name>``; otherwise downloaded into the cache.
    """
    checks.choice("dataset", name, sources.sha256)
    searched = _candidates(name, data_dir, sources)
    for directory in searched:
        paths = {base: _find(directory, name, base) for base in FILES}
        if all(paths.values()):
            return paths
    if data_dir is not None or os.environ.get("XPNET_DATA"):
        raise DataError(f"{name} files not found in {searched[0]} (nor in {searched[0] / name}); expected {', '.join(f + '.gz' for f in FILES)}")
    if not allow_download or name not in sources.mirrors:
        raise DataError(f"{name} files not found in {', '.join(map(str, searched))}")
    target = cache_dir() / name
    return {base: download(f"{base}.gz", target, sources.mirrors[name], sources.sha256[name][base], progress)
            for base in FILES}


def load(name: str = "mnist", data_dir=None, allow_download: bool = True, progress: bool | None = None,
         sources: Sources = SOURCES) -> Dataset:
    """Load dataset ``name`` ("mnist" or "fashion-mnist"), verifying every file's checksum."""
    paths = locate(name, data_dir, allow_download, progress, sources)
    packaged = paths[FILES[0]].parent == sources.packaged
    if packaged:  # our own .gz files: their SHA256SUMS is cheaper to check than the content
        _verify_packaged(sources.packaged)
    arrays = [_read_verified(name, paths[base], base, packaged, allow_download, progress, sources) for base in FILES]
    for images, labels, split in ((arrays[0], arrays[1], "train"), (arrays[2], arrays[3], "test")):
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataError(f"{name} {split}: {images.shape} images do not match {labels.shape} labels")
    X_train, y_train, X_test, y_test = arrays
    return Dataset(
        name, X_train.reshape(len(X_train), -1), y_train.astype(np.int64),
        X_test.reshape(len(X_test), -1), y_test.astype(np.int64), CLASSES[name], str(paths[FILES[0]].parent),
        image_shape=tuple(X_train.shape[1:]),
    )


def _read_verified(name, path, base, packaged, allow_download, progress, sources):
    """Read one file, checking its content; a damaged copy in the cache is downloaded again, once."""
    sha256 = sources.sha256[name][base]
    try:
        return read_idx(path, None if packaged else sha256)
    except DataError:
        if path.parent != cache_dir() / name or not allow_download or name not in sources.mirrors:
            raise
    path = download(path.name, path.parent, sources.mirrors[name], sha256, progress)
    return read_idx(path, sha256)


def load_mnist(data_dir=None) -> Dataset:
    """MNIST from the copy inside the package (or ``data_dir``); works offline."""
    return load("mnist", data_dir)


def load_fashion_mnist(data_dir=None, allow_download: bool = True, progress: bool | None = None,
                       sources: Sources = SOURCES) -> Dataset:
    """Fashion-MNIST from ``data_dir``/``$XPNET_DATA``, the cache, Debian's package, or a download."""
    return load("fashion-mnist", data_dir, allow_download, progress, sources)


def _verify_packaged(folder: Path) -> None:
    """Check the shipped .gz files against the SHA256SUMS shipped beside them."""
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, filename = line.split()
        actual = hashlib.sha256((folder / filename).read_bytes()).hexdigest()
        if actual != digest:
            raise DataError(f"{folder / filename}: the packaged MNIST file is damaged (sha256 mismatch); reinstall xpnet")


# -- preprocessing -------------------------------------------------------------------------------
def scale(X, method: str = "255", reference=None, dtype=np.float64) -> np.ndarray:
    """Float features (``dtype``, float64 by default) from ``uint8`` pixels.

    ``"255"`` divides by 255 (default); ``"max"`` divides each image by its own maximum (seed 004);
    ``"standardize"`` subtracts the mean and divides by the standard deviation of ``reference`` (the
    training images; default ``X`` itself), one scalar each; ``"none"`` keeps raw 0-255 values (the seed
    notebooks); ``"auto"`` is ``"255"`` for pixels (whole numbers 0..255, in ``X`` and ``reference``) and
    otherwise standardizes each feature with the mean and deviation of ``reference`` (:func:`choose_scaling`).
    The result is computed in place in one array of ``dtype``: float32 halves the memory.
    """
    checks.choice("scale", method, SCALINGS)
    if method == "auto":
        reference = X if reference is None else reference
        if not is_pixels(X, reference):
            numbers = choose_scaling(Dataset("", reference, None, X, None, [], ""))
            return (np.asarray(X, dtype=dtype) - np.asarray(numbers["mean"], dtype=dtype)) / np.asarray(
                numbers["std"], dtype=dtype)
        method = "255"
    out = np.array(X, dtype=dtype)
    if method == "255":
        out /= 255.0
    elif method == "max":
        peak = out.max(axis=1, keepdims=True)
        out /= np.where(peak > 0, peak, 1.0)
    elif method == "standardize":
        ref = out if reference is None else np.asarray(reference)
        mean, std = float(ref.mean(dtype=np.float64)), float(ref.std(dtype=np.float64))
        out -= mean
        out /= std or 1.0
    return out


def is_pixels(*arrays) -> bool:
    """Whether every value is a whole number in 0..255 (``uint8`` arrays are)."""
    return all(X.dtype == np.uint8 or (X.size and X.min() >= 0 and X.max() <= 255 and np.array_equal(X, np.round(X)))
               for X in arrays)


def choose_scaling(data: Dataset, method: str = "auto", recorded: dict | None = None) -> dict:
    """What ``method`` scales ``data``'s features with, as a run records it: ``{"method": ...}``, and for
    ``"auto"`` the choice (``"chose"``) and its numbers. ``"auto"`` divides pixels (whole numbers 0..255)
    by 255 and standardizes anything else, each feature with the mean and deviation of the training rows
    (a feature that never varies: deviation 1). ``recorded`` (what a weights file holds) is used as it is,
    so that data scored later is scaled as the training data was."""
    if recorded is not None:
        return recorded
    if method != "auto":
        return {"method": method}
    if is_pixels(data.X_train, data.X_test):
        return {"method": "auto", "chose": "255"}
    X = np.asarray(data.X_train, dtype=np.float64)
    std = X.std(axis=0)
    return {"method": "auto", "chose": "standardize each feature", "mean": X.mean(axis=0).tolist(),
            "std": np.where(std > 0, std, 1.0).tolist()}


def unscale(X, scaling: dict | None) -> np.ndarray:
    """Features scaled by :func:`choose_scaling`'s ``scaling`` back as the data held them (where that
    is known: /255 and per-feature standardization; others as they are)."""
    X = np.asarray(X, dtype=np.float64)
    if scaling and "mean" in scaling:
        return X * np.asarray(scaling["std"]) + np.asarray(scaling["mean"])
    if scaling and scaling.get("chose", scaling.get("method")) == "255":
        return X * 255.0
    return X


def describe_scaling(scaling: dict) -> str:
    """One line for what :func:`choose_scaling` chose."""
    if scaling.get("chose") == "255":
        return "--scale auto: the features are pixel values 0..255, divided by 255"
    if "mean" in scaling:
        return (f"--scale auto: the {len(scaling['mean'])} features are not pixel values: each is standardized with "
                "the training rows' mean and deviation (recorded with the weights)")
    return f"--scale {scaling['method']}"


def check_scaling(data: Dataset, method: str) -> None:
    """``"255"`` is for pixels: refused (one line) for features that are not whole numbers in 0..255."""
    if method != "255":
        return
    for X in (data.X_train, data.X_test):
        if X.dtype != np.uint8 and (X.min() < 0 or X.max() > 255 or not np.array_equal(X, np.round(X))):
            odd = X.flat[int(np.argmax((X < 0) | (X > 255) | (X != np.round(X))))]
            raise ValidationError(f"{data.name} holds features that are not pixel values 0..255 (such as {odd:g}), "
                                  "which --scale 255 divides by 255: give --scale auto (the default), standardize or "
                                  "none")


def digit_pair(X, y, digits) -> tuple[np.ndarray, np.ndarray]:
    """The samples of two classes, relabelled ``digits[0] -> 0`` and ``digits[1] -> 1``."""
    a, b = parse_digits(digits)
    keep = (y == a) | (y == b)
    return X[keep], (y[keep] == b).astype(np.int64)


def parse_digits(digits) -> tuple[int, int]:
    parts = digits.split(",") if isinstance(digits, str) else list(digits)
    try:
        a, b = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValidationError(f"digits must be two class labels like '3,9'; got {digits!r}") from None
    if a == b or not (0 <= a <= 9 and 0 <= b <= 9):
        raise ValidationError(f"digits must be two different classes in 0..9; got {digits!r}")
    return a, b


def validation_split(X, y, fraction: float, seed: int = 0):
    """``(X_train, y_train, X_val, y_val)`` with a random ``fraction`` of the samples held out, chosen by
    ``numpy.random.default_rng(seed)`` (the run specification's split seed)."""
    fraction = checks.fraction("validation fraction", fraction)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = len(y) - max(1, int(round(fraction * len(y))))
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


def prepare(data: Dataset, scaling="255", digits=None, dtype=np.float64):
    """``(X_train, y_train, X_test, y_test)`` as float features of ``dtype``, optionally one digit pair;
    ``scaling`` is a method of :data:`SCALINGS` or what :func:`choose_scaling` gives."""
    if scaling == "auto":
        scaling = choose_scaling(data)
    if isinstance(scaling, dict):
        if "mean" in scaling:
            mean, std = np.asarray(scaling["mean"]), np.asarray(scaling["std"])
            if mean.shape != (data.X_train.shape[1],):
                raise ValidationError(f"the recorded scaling has {mean.size} features' numbers; the data has "
                                      f"{data.X_train.shape[1]} features")
            X_train, X_test = ((np.asarray(X, dtype=dtype) - mean.astype(dtype)) / std.astype(dtype)
                               for X in (data.X_train, data.X_test))
            return _pair(X_train, data.y_train, X_test, data.y_test, digits)
        scaling = scaling.get("chose", scaling["method"])
    X_train = scale(data.X_train, scaling, dtype=dtype)
    X_test = scale(data.X_test, scaling, reference=data.X_train, dtype=dtype)
    return _pair(X_train, data.y_train, X_test, data.y_test, digits)


def _pair(X_train, y_train, X_test, y_test, digits):
    if digits is not None:
        X_train, y_train = digit_pair(X_train, y_train, digits)
        X_test, y_test = digit_pair(X_test, y_test, digits)
    return X_train, y_train, X_test, y_test
