"""Activations and losses on every installed CPU backend: numerical stability, derivatives against finite
differences, and losses summed per network for a stack."""

import warnings

import numpy as np
import pytest

from xpnet import functions as F
from xpnet.errors import ValidationError


def _on(backend, host, dtype="float64"):
    return backend.asarray(np.asarray(host), dtype)


#: What one elementwise function of a few roundings achieves: a few units in the last place.
RTOL = {"float32": 1e-6, "float64": 1e-14}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_stable_at_extreme_inputs(backend, dtype):
    z = _on(backend, [-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = backend.to_host(F.sigmoid(backend.xp, z))
    assert s.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s[[0, 3, 6]], [0.0, 0.5, 1.0], atol=1e-30)
    np.testing.assert_allclose(s[2], 1 / (1 + np.exp(1.0)), rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_losses_never_take_log_zero(backend, dtype):
    xp = backend.xp
    z = _on(backend, [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype)
    t = _on(backend, np.eye(3)[[1, 0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p, loss = F.softmax_cross_entropy(xp, z, t)
        _, logistic = F.sigmoid_logistic(xp, z[:, :1], _on(backend, [[0.0], [1.0]], dtype))
    # -log p for class 1 of row 0 is 2e4; row 1 is uniform: log 3. The loss is summed over the batch.
    np.testing.assert_allclose(float(loss), 2e4 + np.log(3.0), rtol=RTOL[dtype])
    np.testing.assert_allclose(float(logistic), 1e4 + 1e4, rtol=RTOL[dtype])
    np.testing.assert_allclose(np.sum(backend.to_host(p), axis=1), 1.0, rtol=RTOL[dtype])
    np.testing.assert_array_equal(backend.to_host(F.softmax(xp, z)), backend.to_host(p))


@pytest.mark.parametrize("name", list(F.ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(backend, name):
    xp, act = backend.xp, F.ACTIVATIONS[name]
    z = np.linspace(-3, 3, 13) + 0.05  # away from relu's kink at 0
    eps = 1e-6

    def f(values):
        return backend.to_host(act.forward(xp, _on(backend, values)))

    numeric = (f(z + eps) - f(z - eps)) / (2 * eps)
    analytic = backend.to_host(act.derivative(xp, act.forward(xp, _on(backend, z))))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("head", list(F.HEADS.values()), ids=lambda h: f"{h.output}+{h.loss}")
def test_head_delta_matches_finite_differences_of_the_loss(backend, head):
    xp = backend.xp
    rng = np.random.default_rng(0)
    n_out = 1 if head.loss == "logistic" else 4
    z = rng.normal(size=(5, n_out))
    t = np.eye(n_out)[rng.integers(0, n_out, 5)] if n_out > 1 else rng.integers(0, 2, (5, 1)) * 1.0
    td = _on(backend, t)

    def loss(zz):  # summed over the batch, so its derivative for each row is that sample's own dl/dz
        return float(head.forward(xp, _on(backend, zz), td)[1])

    eps = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (loss(up) - loss(down)) / (2 * eps)
    zd = _on(backend, z)
    analytic = backend.to_host(head.delta(xp, zd, head.activation(xp, zd), td))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("head", list(F.HEADS.values()), ids=lambda h: f"{h.output}+{h.loss}")
def test_a_stack_gets_one_loss_per_network(backend, head):
    """A (K, batch, n) stack of outputs gives K losses, each the loss of that network alone."""
    xp = backend.xp
    rng = np.random.default_rng(1)
    n_out = 1 if head.loss == "logistic" else 3
    z = rng.normal(size=(4, 6, n_out))
    t = np.eye(n_out)[rng.integers(0, n_out, 6)] if n_out > 1 else rng.integers(0, 2, (6, 1)) * 1.0
    _, losses = head.forward(xp, _on(backend, z), _on(backend, t))  # targets shared by the stack
    losses = backend.to_host(losses)
    assert losses.shape == (4,)
    alone = [float(head.forward(xp, _on(backend, z[k]), _on(backend, t))[1]) for k in range(4)]
    np.testing.assert_allclose(losses, alone, rtol=1e-12)


def test_unknown_names_and_impossible_pairs_are_refused():
    with pytest.raises(ValidationError, match="activation must be one of"):
        F.get_activation("swish")
    with pytest.raises(ValidationError, match="loss must be one of"):
        F.get_head("hinge")
    with pytest.raises(ValidationError, match="cannot be paired"):
        F.get_head("cross-entropy", "sigmoid")
    assert F.get_head("squared", "sigmoid").output == "sigmoid"
    assert F.get_head("logistic").output == "sigmoid"
    assert F.get_activation("logistic") is F.ACTIVATIONS["sigmoid"]  # scikit-learn's name
