"""Accuracy and confusion matrices, on host (NumPy) label arrays."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as class ``j``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the labels."""
    y_true = np.asarray(y_true)
    return float(np.mean(np.asarray(y_pred) == y_true)) if y_true.size else float("nan")
