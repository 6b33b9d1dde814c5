"""The learners of what xpnet is compared with: PyTorch's usual loop, scikit-learn's MLP, the seed notebooks'
per-sample NumPy loop, a hand-tuned NumPy loop, and the libraries' own ways of training many models at
once (``torch.func`` ensembling, ``jax.vmap``).

Each follows :mod:`xpnet.bench`'s learner protocol (``start_epoch``, ``train(start, stop)``, ``accuracy``,
``device``) and is built as ``LEARNERS[name](implementation, run, data, models)`` from a benchmark case's
run specification; its library is imported only then (a missing one makes the case
:class:`~xpnet.errors.Unavailable`). Every learner trains on the same rows in the same order as xpnet's:
the data's own order, or :func:`xpnet.train.epoch_order` of the run's seed when the case shuffles.
The stacking peers start from xpnet's initial weights (network ``k`` from seed ``run.seed + k``), so
their results can be checked against xpnet's stacks.
"""

from __future__ import annotations

import numpy as np

from . import optim
from .backends import get_backend
from .errors import BackendError, Unavailable
from .init import initial_weights
from .train import epoch_order


def _import(module):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise Unavailable(f"{module} is not installed") from None


def _shuffles(run) -> bool:
    return run.training.batch_size > 1 if run.training.shuffle is None else run.training.shuffle


def _plain_sgd(run, what):
    if not run.optimizer.plain:
        raise Unavailable(f"{what} is benchmarked with plain SGD only")


def _cpu_only(impl, what):
    if impl.device not in (None, "cpu"):
        raise Unavailable(f"{what} runs on the CPU")


def _classification(run, what):
    if run.model.loss != "cross-entropy" or run.model.output not in (None, "softmax"):
        raise Unavailable(f"{what} is benchmarked with softmax + cross-entropy only")


def _torch(impl, run, what):
    """PyTorch, the device ``impl`` names, and the module of the run's hidden activation."""
    torch = _import("torch")
    _classification(run, what)
    if impl.device and impl.device.startswith("cuda") and not torch.cuda.is_available():
        raise Unavailable("torch has no CUDA device here")
    act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[run.model.activations[0]]
    return torch, torch.device(impl.device or "cpu"), act


def torch_optimizer(torch, named, optimizer, fused=False):
    """``torch.optim`` for the run's optimizer (its resolved settings; the rule's own reference): the
    weights (names ending in ``weight``) in a group with weight decay, the biases in one without, as
    xpnet decays them; ``foreach=True``, or ``fused=True``."""
    o = optimizer.resolved()
    groups = [{"params": [p for n, p in named if n.endswith("weight")], "weight_decay": o["weight_decay"] or 0.0},
              {"params": [p for n, p in named if not n.endswith("weight")], "weight_decay": 0.0}]
    return optim.rule_for([o]).torch(torch, groups, o, **({"fused": True} if fused else {"foreach": True}))


def optax_optimizer(optimizer):
    """optax's transformation for the run's optimizer (the rule's own reference; decay on the weights
    only, masked), or ``None`` for plain SGD (the hand-written ``w - lr * g`` step)."""
    if optimizer.plain:
        return None
    optax = _import("optax")
    import jax

    def weights(params):
        return jax.tree_util.tree_map(lambda x: x.ndim >= 2, params)

    o = optimizer.resolved()
    return optim.rule_for([o]).optax(optax, o, weights)


class _Ordered:
    """The epoch order every peer shares: the data's own, or the seeded shuffle."""

    def _order(self, epoch, n):
        return np.arange(n) if not self.shuffle else epoch_order(self.run.seed, epoch, n)


class TorchEager(_Ordered):
    """``nn.Sequential`` + ``torch.optim`` (the run's optimizer, ``foreach=True``; ``torch-fused``:
    ``fused=True``): the loop a PyTorch user writes (PyTorch's own initialisation, seeded with
    ``torch.manual_seed``)."""

    fused = False

    def __init__(self, impl, run, data, models=None):
        torch, self.device, act = _torch(impl, run, "torch-eager")
        self.torch, self.run, self.shuffle, self.batch_size = torch, run, _shuffles(run), run.training.batch_size
        sizes, layers = run.model.sizes, []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [torch.nn.Linear(a, b)] + ([act()] if i < len(sizes) - 2 else [])
        torch.manual_seed(run.seed)
        dt = getattr(torch, run.placement.dtype)
        self.model = torch.nn.Sequential(*layers).to(self.device, dt)
        self.opt = torch_optimizer(torch, list(self.model.named_parameters()), run.optimizer, self.fused)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.as_tensor(data.X, dtype=dt, device=self.device), torch.as_tensor(data.y, device=self.device)
        self.data, self.dt = data, dt

    def start_epoch(self, epoch):
        order = self.torch.as_tensor(self._order(epoch, len(self.y)), device=self.device)
        self.Xe, self.ye = (self.X, self.y) if not self.shuffle else (self.X[order], self.y[order])

    def train(self, start, stop):
        B = self.batch_size
        for i in range(start, stop, B):
            self.opt.zero_grad()
            self.loss(self.model(self.Xe[i : min(i + B, stop)]), self.ye[i : min(i + B, stop)]).backward()
            self.opt.step()
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def accuracy(self):
        torch = self.torch
        X = torch.as_tensor(self.data.X_test, dtype=self.dt, device=self.device)
        with torch.no_grad():
            return float((self.model(X).argmax(dim=1).cpu().numpy() == np.asarray(self.data.y_test)).mean())


class TorchFused(TorchEager):
    __doc__ = TorchEager.__doc__
    fused = True


class Sklearn(_Ordered):
    """``MLPClassifier(solver="sgd", momentum=0, alpha=0)`` through ``partial_fit``."""

    device = "cpu"

    def __init__(self, impl, run, data, models=None):
        neural = _import("sklearn.neural_network")
        _cpu_only(impl, "scikit-learn")
        _plain_sgd(run, "scikit-learn")
        _classification(run, "sklearn")
        act = {"sigmoid": "logistic"}.get(run.model.activations[0], run.model.activations[0])
        self.model = neural.MLPClassifier(
            hidden_layer_sizes=tuple(run.model.sizes[1:-1]), activation=act, solver="sgd", momentum=0.0,
            nesterovs_momentum=False, alpha=0.0, learning_rate_init=run.optimizer.lr,
            batch_size=run.training.batch_size, shuffle=False, random_state=run.seed)
        dtype = run.placement.dtype
        self.X, self.y = np.asarray(data.X, dtype=dtype), np.asarray(data.y)
        self.data, self.run, self.shuffle, self.fitted, self.dtype = data, run, _shuffles(run), False, dtype

    def start_epoch(self, epoch):
        order = self._order(epoch, len(self.y))
        self.Xe, self.ye = (self.X, self.y) if not self.shuffle else (self.X[order], self.y[order])

    def train(self, start, stop):
        self.model.partial_fit(self.Xe[start:stop], self.ye[start:stop], classes=np.arange(self.run.model.sizes[-1]))
        self.fitted = True

    def accuracy(self):
        if not self.fitted:  # no weights before the first step
            return None
        return float(self.model.score(np.asarray(self.data.X_test, dtype=self.dtype), self.data.y_test))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class SeedsLoop:
    """The seed notebooks' training loop, reimplemented faithfully (the "before" baseline): NumPy,
    float64, one sample at a time as a column vector, weights of shape (n_out, n_in), sigmoid hidden
    layers, softmax + cross-entropy (delta p - y), every layer's gradient first, then the update. It runs
    in float64 whatever the case's dtype (its ``dtype``: the records and tables say so)."""

    device = "cpu"
    dtype = "float64"

    def __init__(self, impl, run, data, models=None):
        _cpu_only(impl, "the seeds' loop")
        _plain_sgd(run, "the seeds' loop")
        m = run.model
        if (run.training.batch_size != 1 or m.activation != "sigmoid" or m.init != "normal-max"
                or m.loss != "cross-entropy"):
            raise Unavailable("the seeds' loop is per-sample, on the CPU, on the seeds' sigmoid net only")
        self.weights = [W.T for W, _ in initial_weights(m.sizes, "normal-max", run.seed)]
        self.biases = [np.zeros((n, 1)) for n in m.sizes[1:]]
        self.X, self.Y, self.lr, self.data = np.asarray(data.X, np.float64), np.eye(m.sizes[-1])[data.y], run.optimizer.lr, data

    def start_epoch(self, epoch):
        pass

    def train(self, start, stop):
        for x, y in zip(self.X[start:stop], self.Y[start:stop]):
            activations = [x.reshape(-1, 1)]
            for W, b in zip(self.weights[:-1], self.biases[:-1]):
                activations.append(_sigmoid(W @ activations[-1] + b))
            z = self.weights[-1] @ activations[-1] + self.biases[-1]
            p = np.exp(z - z.max())
            delta = p / p.sum() - y.reshape(-1, 1)
            grads = []
            for layer in range(len(self.weights) - 1, -1, -1):
                grads.append((delta @ activations[layer].T, delta))
                if layer > 0:
                    a = activations[layer]
                    delta = (self.weights[layer].T @ delta) * a * (1.0 - a)
            for layer, (gW, gb) in enumerate(reversed(grads)):
                self.weights[layer] = self.weights[layer] - self.lr * gW
                self.biases[layer] = self.biases[layer] - self.lr * gb

    def accuracy(self):
        a = np.asarray(self.data.X_test, np.float64).T
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            a = _sigmoid(W @ a + b)
        return float((np.argmax(self.weights[-1] @ a + self.biases[-1], axis=0) == self.data.y_test).mean())


class HandTuned:
    """A hand-tuned NumPy per-sample loop, the yardstick for what NumPy calls can do at batch size 1: the
    seeds' 784-32-32-10 sigmoid net, float32, written the way one tunes NumPy by hand and the Array API
    cannot express -- every result into a preallocated ``out=`` buffer, the first layer stored transposed
    (32 x 784) so that its outer product runs along contiguous rows, nothing allocated per sample (40
    NumPy calls per sample), no loss computed."""

    device = "cpu"

    def __init__(self, impl, run, data, models=None):
        _cpu_only(impl, "the hand-tuned loop")
        _plain_sgd(run, "the hand-tuned loop")
        m = run.model
        if run.placement.dtype != "float32" or run.training.batch_size != 1 or m.layers != "784-32-32-10" \
                or m.activation != "sigmoid" or m.loss != "cross-entropy":
            raise Unavailable("the hand-tuned loop is per-sample, float32, on the CPU, on the seeds' sigmoid net only")
        weights = initial_weights(m.sizes, m.init, run.seed)
        self.WT0 = np.ascontiguousarray(weights[0][0].T, dtype=np.float32)
        self.W1, self.W2 = (np.asarray(W, dtype=np.float32) for W, _ in weights[1:])
        self.b0, self.b1, self.b2 = (np.zeros(n, dtype=np.float32) for n in m.sizes[1:])
        self.X, self.T = np.asarray(data.X, dtype=np.float32), np.eye(10, dtype=np.float32)[data.y]
        self.lr, self.data = np.float32(run.optimizer.lr), data

    def start_epoch(self, epoch):
        pass

    def train(self, start, stop):
        mul, add, sub, dot, tanh, exp = np.multiply, np.add, np.subtract, np.dot, np.tanh, np.exp
        WT0, W1, W2, b0, b1, b2, lr = self.WT0, self.W1, self.W2, self.b0, self.b1, self.b2, self.lr
        h1, h2, tmp, d1, d2 = (np.empty(32, np.float32) for _ in range(5))
        z, d3 = np.empty(10, np.float32), np.empty(10, np.float32)
        g1, g2, g0 = np.empty((32, 32), np.float32), np.empty((32, 10), np.float32), np.empty_like(WT0)
        for x, t in zip(self.X[start:stop], self.T[start:stop]):
            dot(WT0, x, out=h1); add(h1, b0, out=h1)  # sigmoid(z) = (1 + tanh(z / 2)) / 2
            mul(h1, 0.5, out=h1); tanh(h1, out=h1); mul(h1, 0.5, out=h1); add(h1, 0.5, out=h1)
            dot(h1, W1, out=h2); add(h2, b1, out=h2)
            mul(h2, 0.5, out=h2); tanh(h2, out=h2); mul(h2, 0.5, out=h2); add(h2, 0.5, out=h2)
            dot(h2, W2, out=z); add(z, b2, out=z)
            sub(z, z.max(), out=z); exp(z, out=z); mul(z, 1.0 / z.sum(), out=z)
            sub(z, t, out=d3); mul(d3, lr, out=d3)
            dot(W2, d3, out=d2); sub(1.0, h2, out=tmp); mul(tmp, h2, out=tmp); mul(d2, tmp, out=d2)
            dot(W1, d2, out=d1); sub(1.0, h1, out=tmp); mul(tmp, h1, out=tmp); mul(d1, tmp, out=d1)
            mul(h2[:, None], d3, out=g2); sub(W2, g2, out=W2); sub(b2, d3, out=b2)
            mul(h1[:, None], d2, out=g1); sub(W1, g1, out=W1); sub(b1, d2, out=b1)
            mul(d1[:, None], x, out=g0); sub(WT0, g0, out=WT0); sub(b0, d1, out=b0)

    def accuracy(self):
        X = np.asarray(self.data.X_test, dtype=np.float32)
        h = _sigmoid(_sigmoid(X @ self.WT0.T + self.b0) @ self.W1 + self.b1)
        return float((np.argmax(h @ self.W2 + self.b2, axis=1) == self.data.y_test).mean())


def _stack_weights(run, K):
    """xpnet's initial weights of networks ``run.seed .. run.seed + K - 1``: per layer (W, b) of shapes
    (K, n_in, n_out) and (K, n_out)."""
    weights = [initial_weights(run.model.sizes, run.model.init, run.seed + k, run.model.init_scale) for k in range(K)]
    return [(np.stack([w[l][0] for w in weights]), np.stack([w[l][1] for w in weights]))
            for l in range(len(run.model.sizes) - 1)]


class TorchFunc(_Ordered):
    """PyTorch's model ensembling (its tutorial's way): ``torch.func.stack_module_state`` of K
    ``nn.Sequential`` networks, ``functional_call`` + ``vmap(grad(loss))`` for one vmapped gradient per
    step, and one update per step (``torch._foreach_add_``); every network trains on the same rows."""

    def __init__(self, impl, run, data, models=None):
        torch, self.device, act = _torch(impl, run, "torch-func")
        from torch.func import functional_call, grad, stack_module_state, vmap

        self.torch, self.run, self.shuffle = torch, run, _shuffles(run)
        self.batch_size, self.K = run.training.batch_size, models or 1
        dt = getattr(torch, run.placement.dtype)
        sizes = run.model.sizes
        weights = _stack_weights(run, self.K)
        nets = []
        for k in range(self.K):
            layers = []
            for i, (W, b) in enumerate(weights):
                linear = torch.nn.Linear(sizes[i], sizes[i + 1], dtype=dt, device=self.device)
                with torch.no_grad():  # nn.Linear keeps W as (out, in)
                    linear.weight.copy_(torch.as_tensor(W[k].T))
                    linear.bias.copy_(torch.as_tensor(b[k]))
                layers += [linear] + ([act()] if i < len(weights) - 1 else [])
            nets.append(torch.nn.Sequential(*layers))
        params, buffers = stack_module_state(nets)
        self.params = {name: p.detach() for name, p in params.items()}
        self.buffers = buffers
        base = nets[0].to("meta")

        def loss(p, b, x, y):
            return torch.nn.functional.cross_entropy(functional_call(base, (p, b), (x,)), y)

        self.grad = vmap(grad(loss), in_dims=(0, 0, None, None))
        # the stacked (K, ...) tensors under one torch.optim: every rule is elementwise, so this is K optimizers
        self.opt = None if run.optimizer.plain else torch_optimizer(torch, list(self.params.items()), run.optimizer)
        self.X = torch.as_tensor(data.X, dtype=dt, device=self.device)
        self.y = torch.as_tensor(data.y, device=self.device)
        self.data, self.dt = data, dt

    def start_epoch(self, epoch):
        order = self.torch.as_tensor(self._order(epoch, len(self.y)), device=self.device)
        self.Xe, self.ye = (self.X, self.y) if not self.shuffle else (self.X[order], self.y[order])

    def train(self, start, stop):
        torch, B, lr = self.torch, self.batch_size, self.run.optimizer.lr
        names = list(self.params)
        values = [self.params[n] for n in names]
        with torch.no_grad():
            for i in range(start, stop, B):
                grads = self.grad(self.params, self.buffers, self.Xe[i : min(i + B, stop)], self.ye[i : min(i + B, stop)])
                if self.opt is None:
                    torch._foreach_add_(values, [grads[n] for n in names], alpha=-lr)
                else:
                    for n in names:
                        self.params[n].grad = grads[n]
                    self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def weights(self):
        """Host ``[(W, b), ...]`` with the leading model axis, W as (K, n_in, n_out)."""
        layers = sorted({n.split(".")[0] for n in self.params}, key=int)
        return [(self.params[f"{l}.weight"].transpose(1, 2).cpu().numpy(), self.params[f"{l}.bias"].cpu().numpy())
                for l in layers]

    def accuracy(self):
        return None  # stacks are benchmarked for throughput only


class JaxVmap(_Ordered):
    """JAX's way of training many models: ``jax.vmap`` over the models of a ``lax.scan`` of ``jax.grad``
    steps, jitted once per segment shape; every network trains on the same rows."""

    compiles = True  # every segment shape anew

    def __init__(self, impl, run, data, models=None):
        jax = _import("jax")
        _classification(run, "jax-vmap")
        try:
            backend = get_backend("jax", impl.device)
            backend.dtype(run.placement.dtype)  # switches float64 on where asked
        except BackendError as exc:
            raise Unavailable(str(exc)) from None
        jnp = jax.numpy
        self.jax, self.run, self.shuffle, self.backend = jax, run, _shuffles(run), backend
        self.batch_size, self.K, self.device = run.training.batch_size, models or 1, backend.device_name
        dtype = run.placement.dtype
        self.params = [(backend.asarray(W, dtype), backend.asarray(b, dtype)) for W, b in _stack_weights(run, self.K)]
        hidden = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "tanh": jnp.tanh}[run.model.activations[0]]
        lr, n_out = run.optimizer.lr, run.model.sizes[-1]

        def loss(p, x, y):
            a = x
            for W, b in p[:-1]:
                a = hidden(a @ W + b)
            z = a @ p[-1][0] + p[-1][1]
            return -jnp.mean(jnp.sum(jax.nn.one_hot(y, n_out, dtype=z.dtype) * jax.nn.log_softmax(z), axis=-1))

        tx = optax_optimizer(run.optimizer)

        def step(carry, batch):
            p, s = carry
            g = jax.grad(loss)(p, *batch)
            if tx is None:
                return (jax.tree_util.tree_map(lambda w, d: w - lr * d, p, g), s), None
            updates, s = tx.update(g, s, p)
            return (jax.tree_util.tree_map(lambda w, u: w + u, p, updates), s), None

        def epoch(carry, X, y):
            return jax.lax.scan(step, carry, (X, y))[0]

        self.epoch = jax.jit(jax.vmap(epoch, in_axes=(0, None, None)))
        self.state = () if tx is None else jax.vmap(tx.init)(self.params)
        self.X, self.y = backend.asarray(data.X, dtype), backend.asarray(np.asarray(data.y, np.int32))
        self.data = data

    def start_epoch(self, epoch):
        order = self.backend.asarray(self._order(epoch, int(self.y.shape[0])).astype(np.int32))
        self.Xe, self.ye = (self.X, self.y) if not self.shuffle else (self.X[order], self.y[order])

    def train(self, start, stop):
        B = self.batch_size
        whole = (stop - start) // B * B
        with self.backend.context():  # the matmul precision of xpnet's JAX steps (full float32)
            for lo, hi, size in ((start, start + whole, B), (start + whole, stop, stop - start - whole)):
                if hi > lo:
                    X = self.Xe[lo:hi].reshape(-1, size, self.Xe.shape[1])
                    self.params, self.state = self.epoch((self.params, self.state), X, self.ye[lo:hi].reshape(-1, size))
        self.jax.block_until_ready(self.params)

    def weights(self):
        return [(np.asarray(W), np.asarray(b)) for W, b in self.params]

    def accuracy(self):
        return None  # stacks are benchmarked for throughput only


LEARNERS = {"torch-eager": TorchEager, "torch-fused": TorchFused, "sklearn": Sklearn, "seeds-loop": SeedsLoop, "hand-tuned-numpy": HandTuned,
            "torch-func": TorchFunc, "jax-vmap": JaxVmap}
