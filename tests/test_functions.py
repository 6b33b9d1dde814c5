"""Activations and losses: numerical stability and derivatives against finite differences."""

import warnings

import numpy as np
import pytest

from xpnet import functions as F
from xpnet.errors import ValidationError

xp = np


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_at_extreme_inputs(dtype):
    z = np.array([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = F.sigmoid(xp, z)
    assert s.dtype == dtype
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s[[0, 3, 6]], [0.0, 0.5, 1.0], atol=1e-30)
    np.testing.assert_allclose(s[2], 1 / (1 + np.exp(1.0)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_never_take_log_zero(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    t = np.eye(3, dtype=dtype)[[1, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p, loss = F.softmax_cross_entropy(xp, z, t)
        _, logistic = F.sigmoid_logistic(xp, z[:, :1], np.array([[0.0], [1.0]], dtype=dtype))
    # -log p for class 1 of row 0 is 2e4; row 1 is uniform: log 3. The loss is summed over the batch.
    np.testing.assert_allclose(loss, 2e4 + np.log(3.0), rtol=1e-6)
    np.testing.assert_allclose(logistic, 1e4 + 1e4, rtol=1e-6)
    np.testing.assert_allclose(np.sum(p, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(F.softmax(xp, z), p)


@pytest.mark.parametrize("name", list(F.ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name):
    f, df = F.ACTIVATIONS[name]
    z = np.linspace(-3, 3, 13) + 0.05  # away from relu's kink at 0
    eps = 1e-6
    numeric = (f(xp, z + eps) - f(xp, z - eps)) / (2 * eps)
    np.testing.assert_allclose(df(xp, f(xp, z)), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("head", list(F.HEADS.values()), ids=lambda h: f"{h.output}+{h.loss}")
def test_head_delta_matches_finite_differences_of_the_loss(head):
    rng = np.random.default_rng(0)
    n_out = 1 if head.loss == "logistic" else 4
    z = rng.normal(size=(5, n_out))
    t = np.eye(max(n_out, 2))[rng.integers(0, max(n_out, 2), 5)][:, :n_out] if n_out > 1 else rng.integers(0, 2, (5, 1)) * 1.0

    def loss(zz):  # summed over the batch, so its derivative for each row is that sample's own dl/dz
        return head.forward(xp, zz, t)[1]

    eps = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (loss(up) - loss(down)) / (2 * eps)
    np.testing.assert_allclose(head.delta(xp, z, head.activation(xp, z), t), numeric, rtol=1e-6, atol=1e-10)


def test_unknown_names_and_impossible_pairs_are_refused():
    with pytest.raises(ValidationError, match="activation must be one of"):
        F.get_activation("swish")
    with pytest.raises(ValidationError, match="loss must be one of"):
        F.get_head("hinge")
    with pytest.raises(ValidationError, match="cannot be paired"):
        F.get_head("cross-entropy", "sigmoid")
    assert F.get_head("squared", "sigmoid").output == "sigmoid"
    assert F.get_head("logistic").output == "sigmoid"
