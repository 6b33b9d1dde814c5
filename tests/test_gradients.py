"""Backward against finite differences and against PyTorch autograd (an independent oracle)."""

import dataclasses

import numpy as np
import pytest

import xpnet
from xpnet import functions as F
from xpnet import kernels, optim
from xpnet.mlp import MLP

from helpers import random_biases, random_problem

ACTIVATIONS = list(F.ACTIVATIONS)
HEADS = [(h.loss, h.output) for h in F.HEADS.values()]


def _net(activation, loss, output, dtype="float64", backend="numpy", device=None):
    n_out = 1 if loss == "logistic" else 4
    net = MLP([12, 9, 7, n_out], activation=activation, loss=loss, output=output, init="xavier",
              dtype=dtype, backend=backend, device=device, seed=3)
    return random_biases(net)


@pytest.mark.parametrize("loss,output", HEADS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradcheck_two_hidden_layers(activation, loss, output):
    net = _net(activation, loss, output)
    X, y = random_problem(12, net.sizes[-1], n=10)
    result = xpnet.gradcheck(net, X, y, max_entries=200)
    assert result["passed"], result
    assert result["max_rel_error"] < 1e-6
    assert set(result["arrays"]) == {"W0", "b0", "W1", "b1", "W2", "b2"}


def test_gradcheck_catches_a_wrong_derivative():
    net = _net("tanh", "cross-entropy", "softmax")
    X, y = random_problem(12, 4, n=10)
    wrong = F.Activation("tanh", F.tanh, lambda xp, a: 1.0 - a)  # tanh' is 1 - a², not 1 - a
    net.network = dataclasses.replace(net.network, hidden=(wrong, wrong))
    result = xpnet.gradcheck(net, X, y)
    assert not result["passed"]
    assert result["arrays"]["W2"] < 1e-6 < result["arrays"]["W0"]


# -- the oracle: PyTorch autograd on the same weights and batch ------------------------------------
def _torch_gradients(net, X, y):
    torch = pytest.importorskip("torch", reason="the autograd oracle needs torch")
    tf = torch.nn.functional
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}
    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in net.get_weights()]
    a = torch.tensor(X)
    for (W, b), name in zip(params[:-1], net.activation_names):
        a = act[name](a @ W + b)
    z = a @ params[-1][0] + params[-1][1]
    labels = torch.tensor(y)
    if net.head.loss == "cross-entropy":
        loss = tf.cross_entropy(z, labels)
    elif net.head.loss == "logistic":
        loss = tf.binary_cross_entropy_with_logits(z[:, 0], labels.double())
    elif net.head.loss == "poisson":  # half the Poisson deviance of the rate exp(z)
        target = tf.one_hot(labels, z.shape[1]).double()
        loss = (torch.exp(z) - target * z + torch.xlogy(target, target) - target).sum(dim=1).mean()
    else:
        out = torch.sigmoid(z) if net.head.output == "sigmoid" else z
        target = tf.one_hot(labels, z.shape[1]).double()
        loss = 0.5 * ((out - target) ** 2).sum(dim=1).mean()
    loss.backward()
    return loss.item(), [(W.grad.numpy(), b.grad.numpy()) for W, b in params]


@pytest.mark.parametrize("n", [10, 1], ids=["batch10", "batch1"])  # batch 1 has its own outer-product path
@pytest.mark.parametrize("loss,output", HEADS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_equal_pytorch_autograd(activation, loss, output, n):
    net = _net(activation, loss, output)
    X, y = random_problem(12, net.sizes[-1], n=n)
    expected_loss, expected = _torch_gradients(net, X, y)
    value, grads = net.loss_and_gradients(net.inputs(X), net.backend.asarray(net.targets(y), "float64"))
    np.testing.assert_allclose(float(value), expected_loss, rtol=1e-12)
    for (dW, db), (eW, eb) in zip(grads, expected):
        db = db.reshape(-1)  # biases are rows, (1, n)
        np.testing.assert_allclose(dW, eW, rtol=1e-10, atol=1e-10 * np.abs(eW).max())
        np.testing.assert_allclose(db, eb, rtol=1e-10, atol=1e-10 * np.abs(eb).max())


@pytest.mark.parametrize("loss,output", HEADS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_per_sample_training_in_chunks_equals_one_step_per_sample(activation, loss, output):
    """fit(batch_size=1) defers the first layer's updates (kernels.sample_steps); that must change nothing
    but rounding against the plain per-sample step, over a chunk boundary and a short last chunk."""
    net = _net(activation, loss, output)
    X, y = random_problem(12, net.sizes[-1], n=45)
    reference = _net(activation, loss, output)
    params, T, total = reference.params, reference.targets(y), 0.0
    rule = optim.SGD()
    state = rule.init_state(np, params)
    for i in range(len(y)):  # one plain step per sample: gradients, then the update
        loss_i, grads = kernels.gradients(np, reference.network, params, X[i : i + 1], T[i : i + 1], 0.05)
        params, state = rule.update(np, params, grads, state, {"lr": 0.05})
        total += float(loss_i)
    reference.params = params
    record = net.fit(X, y, epochs=1, lr=0.05, batch_size=1, progress=False)[0]
    for (W, b), (W_ref, b_ref) in zip(net.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(W, W_ref, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(b, b_ref, rtol=1e-11, atol=1e-13)
    assert record["train_loss"] == pytest.approx(total / len(y), rel=1e-12)
    assert not np.allclose(net.get_weights()[0][0], _net(activation, loss, output).get_weights()[0][0])
