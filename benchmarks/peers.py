"""The runners of the libraries xpnet is compared with: PyTorch's usual loop, scikit-learn's MLP, the seed
notebooks' per-sample NumPy loop and a hand-tuned NumPy loop.

They follow :mod:`xpnet.bench`'s runner protocol (``setup(n)``, ``run()``, ``device``) and are built as
``RUNNERS[name](device, net, dtype, batch_size, X, y)``. This file belongs to the source checkout, not to
the installed package: ``xpnet bench`` loads it from ``./benchmarks/peers.py`` (or ``--peers PATH``), and
the pytest-benchmark suite beside it imports it directly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from xpnet import bench
from xpnet.bench import LR, NETS, Unavailable


def _sibling(name):
    """``NAME.py`` of this folder, as a module."""
    spec = importlib.util.spec_from_file_location(f"xpnet_benchmarks_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TorchRunner:
    """``nn.Sequential`` + ``torch.optim.SGD``: the loop a PyTorch user writes."""

    def __init__(self, device, net, dtype, batch_size, X, y):
        try:
            import torch
        except ImportError:
            raise Unavailable("torch is not installed") from None
        if device and device.startswith("cuda") and not torch.cuda.is_available():
            raise Unavailable("torch has no CUDA device here")
        self.torch, self.device, self.batch_size = torch, torch.device(device or "cpu"), batch_size
        sizes, act = NETS[net]["layers"], {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[NETS[net]["activation"]]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [torch.nn.Linear(a, b)] + ([act()] if i < len(sizes) - 2 else [])
        torch.manual_seed(0)
        dt = getattr(torch, dtype)
        self.model = torch.nn.Sequential(*layers).to(self.device, dt)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X = torch.as_tensor(X, dtype=dt, device=self.device)
        self.y = torch.as_tensor(y, device=self.device)

    def setup(self, n):
        self.n = n

    def run(self):
        B = self.batch_size
        for i in range(0, self.n, B):
            self.opt.zero_grad()
            self.loss(self.model(self.X[i : i + B]), self.y[i : i + B]).backward()
            self.opt.step()
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)


class SklearnRunner:
    """``MLPClassifier(solver="sgd", momentum=0, alpha=0)`` through ``partial_fit``."""

    device = "cpu"

    def __init__(self, device, net, dtype, batch_size, X, y):
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError:
            raise Unavailable("scikit-learn is not installed") from None
        if device not in (None, "cpu"):
            raise Unavailable("scikit-learn runs on the CPU")
        spec = NETS[net]
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(spec["layers"][1:-1]), activation={"sigmoid": "logistic"}.get(spec["activation"], "relu"),
            solver="sgd", momentum=0.0, nesterovs_momentum=False, alpha=0.0, learning_rate_init=LR,
            batch_size=batch_size, shuffle=False, random_state=0,
        )
        self.X, self.y = np.asarray(X, dtype=dtype), np.asarray(y)

    def setup(self, n):
        self.Xn, self.yn = self.X[:n], self.y[:n]

    def run(self):
        self.model.partial_fit(self.Xn, self.yn, classes=np.arange(10))


class SeedsRunner:
    """The seed notebooks' per-sample loop (``seeds_loop.py``): float64, batch 1, the small net only."""

    device = "cpu"

    def __init__(self, device, net, dtype, batch_size, X, y):
        if device not in (None, "cpu") or net != "small" or dtype != "float64" or batch_size != 1:
            raise Unavailable("the seeds' loop is per-sample, float64, on the CPU, on the seeds' sigmoid net only")
        self.net = _sibling("seeds_loop").Network(NETS[net]["layers"], seed=0)
        self.X, self.Y = np.asarray(X, dtype=np.float64), np.eye(10)[y]

    def setup(self, n):
        self.n = n

    def run(self):
        self.net.train_epoch(self.X[: self.n], self.Y[: self.n], LR)


def hand_tuned(device, net, dtype, batch_size, X, y):
    """The hand-tuned NumPy loop of ``hand_tuned.py``: float32, batch 1, the small net only."""
    if device not in (None, "cpu") or net != "small" or dtype != "float32" or batch_size != 1:
        raise Unavailable("the hand-tuned loop is per-sample, float32, on the CPU, on the seeds' sigmoid net only")
    return _sibling("hand_tuned").HandTunedRunner(X, y)


RUNNERS = {"torch-eager": TorchRunner, "sklearn": SklearnRunner, "seeds-loop": SeedsRunner,
           "hand-tuned-numpy": hand_tuned}
assert set(RUNNERS) == set(bench.PEERS)


# -- time to accuracy: the peers trained segment by segment (see xpnet.bench.time_to_accuracy) --------
class TorchLearner:
    """PyTorch eager, its usual loop, trained on the samples ``start .. stop`` of each epoch's order."""

    def __init__(self, device, net, dtype, batch_size, lr, seed, data):
        try:
            import torch
        except ImportError:
            raise Unavailable("torch is not installed") from None
        X, y, X_test, y_test = data
        self.torch, self.batch_size, self.seed, self.n = torch, batch_size, seed, len(y)
        self.device = torch.device(device or "cpu")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise Unavailable("torch has no CUDA device here")
        sizes = NETS[net]["layers"]
        act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[NETS[net]["activation"]]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [torch.nn.Linear(a, b)] + ([act()] if i < len(sizes) - 2 else [])
        torch.manual_seed(seed)
        dt = getattr(torch, dtype)
        self.model = torch.nn.Sequential(*layers).to(self.device, dt)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.as_tensor(X, dtype=dt, device=self.device), torch.as_tensor(y, device=self.device)
        self.X_test, self.y_test = torch.as_tensor(X_test, dtype=dt, device=self.device), torch.as_tensor(y_test, device=self.device)

    def start_epoch(self, epoch):
        if self.batch_size == 1:
            self.Xe, self.ye = self.X, self.y
            return
        order = self.torch.as_tensor(np.random.default_rng([self.seed, epoch]).permutation(self.n), device=self.device)
        self.Xe, self.ye = self.X[order], self.y[order]

    def train(self, start, stop):
        B = self.batch_size
        for i in range(start, stop, B):
            self.opt.zero_grad()
            self.loss(self.model(self.Xe[i : min(i + B, stop)]), self.ye[i : min(i + B, stop)]).backward()
            self.opt.step()
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def accuracy(self):
        with self.torch.no_grad():
            return float((self.model(self.X_test).argmax(dim=1) == self.y_test).double().mean())


class SklearnLearner:
    """scikit-learn's ``MLPClassifier`` (plain SGD, no momentum, no penalty) through ``partial_fit``."""

    def __init__(self, device, net, dtype, batch_size, lr, seed, data):
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError:
            raise Unavailable("scikit-learn is not installed") from None
        if device not in (None, "cpu"):
            raise Unavailable("scikit-learn runs on the CPU")
        X, y, X_test, y_test = data
        spec = NETS[net]
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(spec["layers"][1:-1]), activation={"sigmoid": "logistic"}.get(spec["activation"], "relu"),
            solver="sgd", momentum=0.0, nesterovs_momentum=False, alpha=0.0, learning_rate_init=lr,
            batch_size=batch_size, shuffle=False, random_state=seed,
        )
        self.X, self.y = np.asarray(X, dtype=dtype), np.asarray(y)
        self.X_test, self.y_test = np.asarray(X_test, dtype=dtype), np.asarray(y_test)
        self.batch_size, self.seed, self.n, self.fitted = batch_size, seed, len(y), False

    def start_epoch(self, epoch):
        order = np.arange(self.n) if self.batch_size == 1 else np.random.default_rng([self.seed, epoch]).permutation(self.n)
        self.Xe, self.ye = self.X[order], self.y[order]

    def train(self, start, stop):
        self.model.partial_fit(self.Xe[start:stop], self.ye[start:stop], classes=np.arange(10))
        self.fitted = True

    def accuracy(self):
        return float(self.model.score(self.X_test, self.y_test)) if self.fitted else None  # no weights before


LEARNERS = {"torch-eager": TorchLearner, "sklearn": SklearnLearner}
