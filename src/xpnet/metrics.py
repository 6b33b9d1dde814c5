"""Predicted classes (on any namespace), accuracy and confusion matrices (on host label arrays)."""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace


def predicted_classes(out, xp=None, columns=None):
    """Class indices from output activations (..., n, n_out), in ``out``'s namespace: the argmax, or
    ``out > 0.5`` for a single output unit. ``columns`` gives n_out where the array's shape does not
    (a traced array's may be unknown)."""
    xp = array_namespace(out) if xp is None else xp
    if (out.shape[-1] if columns is None else columns) == 1:
        return xp.astype(out[..., 0] > 0.5, xp.int32)
    return xp.argmax(out, axis=-1)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as class ``j``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the labels."""
    y_true = np.asarray(y_true)
    return float(np.mean(np.asarray(y_pred) == y_true)) if y_true.size else float("nan")
