"""A stack of K networks of one architecture, trained together by the same array operations.

Every parameter carries a leading model axis -- ``W_l`` of shape (K, n_l, n_{l+1}), ``b_l`` of shape
(K, 1, n_{l+1}) -- and the kernels of :mod:`xpnet.kernels` run unchanged on it: each operation of a
training step advances all K networks, so per-sample training of a whole grid search costs about as many
array operations as training one network. The networks may differ in seed (initial weights and
shuffling order), initialisation scheme, initial scale and learning rate; nothing a kernel computes
mixes them, so each ends with the weights it gets when trained alone, and one that diverges is frozen
with its last finite weights while the others train on.

>>> stack = Stack("784-32-10", seeds=[0, 1, 2], backend="numpy")
>>> stack.n_models
3
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import checks
from .backends import Backend
from .errors import DataError, ValidationError
from .init import initial_weights
from .mlp import MLP, BaseNetwork


class Stack(BaseNetwork):
    """K networks with the same layers, activations, output/loss, backend and dtype.

    Parameters
    ----------
    layers, activation, loss, output
        As for :class:`~xpnet.mlp.MLP`, shared by every network.
    seeds : sequence of int
        One seed per network (K = its length): initial weights and default shuffling order.
    init : str or sequence of str
        Initialisation scheme, one for all or one per network.
    init_scale : float or sequence of float
        Multiplier of the initial weights, one for all or one per network.
    backend, device, dtype
        As for :class:`~xpnet.mlp.MLP`.

    Attributes
    ----------
    params : list of (W, b)
        ``W`` of shape (K, n_in, n_out) and ``b`` of shape (K, 1, n_out), arrays of the backend.
    diverged : list of (dict or None)
        For each network, ``None``, or where it diverged: ``epoch``, ``step``, ``lr``, ``problem`` and
        ``at`` (the same words :class:`~xpnet.errors.DivergenceError` uses). A diverged network keeps
        its last finite weights and is not trained further.

    Methods ``fit``, ``evaluate``, ``predict`` and ``predict_proba`` are those of one network, per
    network: ``fit`` takes one learning rate per network (or one for all) and returns one history per
    network, ``evaluate`` one result per network, ``predict`` an array of shape (K, n).
    """

    def __init__(
        self,
        layers: str | Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        loss: str = "cross-entropy",
        output: str | None = None,
        *,
        seeds: Sequence[int] = (0,),
        init: str | Sequence[str] = "normal-max",
        init_scale: float | Sequence[float] = 1.0,
        backend: str | Backend = "numpy",
        device: str | None = None,
        dtype: str = "float32",
    ):
        self._configure(layers, activation, loss, output, backend, device, dtype)
        self.seeds = list(seeds)
        K = len(self.seeds)
        if K < 1:
            raise ValidationError("a stack needs at least one network (seeds is empty)")
        self.n_models = K
        self.inits = checks.per_network("init", init, K)
        self.init_scales = checks.per_network("init_scale", init_scale, K)
        weights = [initial_weights(self.sizes, i, s, c) for i, s, c in zip(self.inits, self.seeds, self.init_scales)]
        self.set_weights([(np.stack([w[l][0] for w in weights]), np.stack([w[l][1] for w in weights]))
                          for l in range(len(self.sizes) - 1)])

    @classmethod
    def from_runs(cls, runs) -> "Stack":
        """One stack of the networks of ``runs`` (run specifications that share everything but the
        seed, initialisation and optimizer hyperparameters: one :meth:`~xpnet.spec.Run.stack_key`)."""
        first = runs[0]
        if any(r.stack_key() != first.stack_key() for r in runs):
            raise ValidationError("the runs of a stack must share everything but seed, init, init_scale and lr")
        m, p = first.model, first.placement
        return cls(m.layers, m.activation, loss=m.loss, output=m.output, seeds=[r.seed for r in runs],
                   init=[r.model.init for r in runs], init_scale=[r.model.init_scale for r in runs],
                   backend=p.backend, device=p.device, dtype=p.dtype)

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Host copies ``[(W, b), ...]``: ``W`` of shape (K, n_in, n_out), ``b`` of shape (K, n_out)."""
        K = self.n_models
        return [(self.backend.to_host(W).copy(), self.backend.to_host(b).reshape(K, -1).copy()) for W, b in self.params]

    def set_weights(self, weights) -> None:
        """Replace the parameters with host arrays ``[(W, b), ...]`` with the leading model axis."""
        self.params = self._device_params(weights, lead=(self.n_models,))

    def model(self, k: int) -> MLP:
        """Network ``k`` as an :class:`~xpnet.mlp.MLP` of its own (a copy, on the same backend), with its
        part of the run's state (the optimizer's, the schedule's, early stopping's, its history): saved,
        it resumes as the run of that network alone would."""
        if not 0 <= k < self.n_models:
            raise ValidationError(f"network index must lie in 0..{self.n_models - 1}; got {k}")
        net = MLP(self.sizes, self.activation_names, loss=self.head.loss, output=self.head.output,
                  init=self.inits[k], seed=self.seeds[k], backend=self.backend, dtype=self.dtype,
                  init_scale=self.init_scales[k])
        net.set_weights([(W[k], b[k]) for W, b in self.get_weights()])
        if self.state is not None:
            net.state = self.state.one(k)
        return net

    _FILE_MODELS = True  # its files hold a stack, of any size

    def config(self) -> dict:
        """Everything needed to rebuild this stack (weights aside), as JSON-ready values."""
        return {"sizes": self.sizes, "activations": self.activation_names, "output": self.head.output,
                "loss": self.head.loss, "inits": self.inits, "init_scales": self.init_scales, "seeds": self.seeds,
                "dtype": self.dtype, "models": self.n_models}

    @classmethod
    def from_config(cls, config: dict, backend="numpy", device=None, dtype=None) -> "Stack":
        """The stack :meth:`config` describes (with its initial weights) on ``backend``/``device``."""
        missing = [k for k in ("sizes", "activations", "loss", "output", "seeds", "inits", "init_scales") if k not in config]
        if missing:
            raise DataError(f"the configuration lacks {', '.join(missing)}")
        return cls(config["sizes"], config["activations"], loss=config["loss"], output=config["output"],
                   seeds=config["seeds"], init=config["inits"], init_scale=config["init_scales"], backend=backend,
                   device=device, dtype=dtype or config.get("dtype", "float32"))

    def __repr__(self) -> str:
        return (
            f"Stack({self.n_models} x {'-'.join(map(str, self.sizes))}, activations={self.activation_names}, "
            f"output={self.head.output}, loss={self.head.loss}, backend={self.backend}, dtype={self.dtype})"
        )


__all__ = ["Stack"]
