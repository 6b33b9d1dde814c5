"""Central finite differences against the hand-written backward pass.

For each parameter entry ``p`` checked, the numerical derivative is
``(L(p + eps) - L(p - eps)) / (2 eps)`` of the batch-mean loss, computed in float64 on the model's own
backend. Each array's error is the relative error of the checked entries taken together,
``‖num - ana‖₂ / (‖num‖₂ + ‖ana‖₂)``: per-entry ratios are meaningless for entries whose gradient is at
the level of the finite-difference rounding error (about 1e-10 here), while the array-wise ratio stays
well defined, and is 0 when both are exactly zero.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .errors import ValidationError
from .mlp import MLP

#: Relative error below which a float64 gradient check passes.
TOLERANCE = 1e-6


def gradcheck(model, X, y, *, eps: float = 1e-6, max_entries: int = 64, seed: int = 0) -> dict:
    """Compare ``model``'s analytic gradients on ``(X, y)`` with central finite differences.

    Parameters
    ----------
    model : MLP
        The network whose backward pass is checked. The check runs in float64: on ``model`` itself, or
        on a float64 copy (same configuration, weights, backend and device).
    X, y : arrays
        A batch of host inputs and labels (or targets).
    eps : float
        The finite-difference step.
    max_entries : int
        Arrays with more entries are checked on a random subset of this many, drawn with ``seed``.
    seed : int
        Seed of that subset.

    Returns
    -------
    dict
        ``{"arrays": {"W0": err, "b0": err, ...}, "max_rel_error": worst, "entries_checked": n,
        "tolerance": TOLERANCE, "passed": worst < TOLERANCE}``.
    """
    if max_entries < 1:
        raise ValidationError(f"max_entries must be at least 1; got {max_entries}")
    net = model
    if model.dtype != "float64":
        net = MLP.from_config(model.config(), backend=model.backend, dtype="float64")
        net.set_weights(model.get_weights())
    backend, xp = net.backend, net.xp
    Xd = net.inputs(np.asarray(X, dtype=np.float64))
    Td = backend.asarray(net.targets(y), "float64")
    _, grads = kernels.loss_and_gradients(xp, net.network, net.params, Xd, Td)

    host = [list(pair) for pair in net.get_weights()]
    device = [list(pair) for pair in net.params]

    def loss_with(layer, which, value):
        params = [tuple(pair) for pair in device]
        params[layer] = tuple(value if j == which else params[layer][j] for j in range(2))
        z, _ = kernels.forward(xp, net.network, params, Xd)
        return float(net.head.forward(xp, z, Td)[1]) / Xd.shape[0]

    rng = np.random.default_rng(seed)
    errors, checked = {}, 0
    for layer, pair in enumerate(host):
        for which, array in enumerate(pair):
            name = f"{'Wb'[which]}{layer}"
            analytic = backend.to_host(grads[layer][which]).reshape(-1)
            flat = array.reshape(-1)
            picks = np.arange(flat.size) if flat.size <= max_entries else rng.choice(flat.size, max_entries, replace=False)
            numeric = np.empty(picks.size)
            for n, i in enumerate(picks):
                original = flat[i]
                values = []
                for sign in (1.0, -1.0):
                    flat[i] = original + sign * eps
                    values.append(loss_with(layer, which, backend.asarray(array.reshape(device[layer][which].shape), "float64")))
                flat[i] = original
                numeric[n] = (values[0] - values[1]) / (2 * eps)
            ana = analytic[picks]
            denom = np.linalg.norm(numeric) + np.linalg.norm(ana)
            errors[name] = float(np.linalg.norm(numeric - ana) / denom) if denom > 0 else 0.0
            checked += picks.size
    worst = max(errors.values())
    return {
        "arrays": errors,
        "max_rel_error": worst,
        "entries_checked": checked,
        "tolerance": TOLERANCE,
        "passed": worst < TOLERANCE,
    }
