"""Weight initialisers.

Random numbers are not part of the Array API standard, so weights are drawn on the host with
``numpy.random.default_rng(seed)`` (always in float64) and moved to the backend afterwards: one seed gives
the same initial weights on every backend and dtype. Biases start at zero.

Each initialiser maps ``(rng, n_in, n_out)`` to a float64 host array of shape ``(n_in, n_out)``.
"""

from __future__ import annotations

import math

import numpy as np

from . import checks


def normal_max(rng, n_in, n_out):
    """N(0, 1/max(n_in, n_out)): the seed notebooks' initialisation."""
    return rng.normal(0.0, math.sqrt(1.0 / max(n_in, n_out)), size=(n_in, n_out))


def xavier(rng, n_in, n_out):
    """Glorot normal: N(0, 2/(n_in + n_out)), keeps activation and gradient variance for tanh/sigmoid."""
    return rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=(n_in, n_out))


def xavier_uniform(rng, n_in, n_out):
    """Glorot uniform: U(-r, r) with r = sqrt(6/(n_in + n_out)), the same variance as :func:`xavier`."""
    r = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=(n_in, n_out))


def he(rng, n_in, n_out):
    """He normal: N(0, 2/n_in), for ReLU layers (half the units are zero)."""
    return rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_in, n_out))


def lecun(rng, n_in, n_out):
    """LeCun normal: N(0, 1/n_in)."""
    return rng.normal(0.0, math.sqrt(1.0 / n_in), size=(n_in, n_out))


def uniform(rng, n_in, n_out):
    """U(-1, 1): seed 004's initialisation."""
    return rng.uniform(-1.0, 1.0, size=(n_in, n_out))


INITIALISERS = {
    "normal-max": normal_max,
    "xavier": xavier,
    "xavier-uniform": xavier_uniform,
    "he": he,
    "lecun": lecun,
    "uniform": uniform,
}


def initial_weights(sizes, init="normal-max", seed=0, scale=1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Host (float64) weights and zero biases for consecutive layer ``sizes``; every weight is multiplied
    by ``scale`` (the initial standard deviation relative to the scheme's own)."""
    draw = INITIALISERS[checks.choice("init", init, INITIALISERS)]
    scale = checks.positive("init_scale", scale)
    rng = np.random.default_rng(checks.seed("seed", seed))
    return [(scale * draw(rng, n_in, n_out), np.zeros(n_out)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
