"""Adagrad, ``torch.optim.Adagrad``'s: each step divided by the root of the sum of all squared gradients
so far; a learning-rate decay per step, an initial accumulator, coupled weight decay (weights only)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .. import checks
from ..errors import Unavailable
from .base import EPS, WEIGHT_DECAY, Rule, Setting, optax_decayed, register, step_count


@register
@dataclass(frozen=True)
class Adagrad(Rule):
    """Per array ``P`` with gradient ``g`` (``g += wd * W`` for the weights with weight decay), at step
    ``t`` (one count per network): ``clr = lr / (1 + (t - 1) lr_decay)``, ``s += g^2``,
    ``P -= clr g / (sqrt(s) + eps)`` (torch.optim.Adagrad), ``s`` starting at ``initial`` (one value per
    stack). The state per layer: ``s`` of W and b and the step count. Not linear in the gradients, so
    per-sample training steps row by row."""

    decay: bool = False
    initial: float = 0.0

    name = "adagrad"
    lr = 0.01
    settings = {
        "lr_decay": Setting(0.0, "the learning rate's decay per step, lr / (1 + (t - 1) lr_decay)", checks.nonnegative),
        "initial_accumulator_value": Setting(0.0, "the squared gradients' sum before the first step", checks.nonnegative,
                                             network=False),
        "eps": dataclasses.replace(EPS, default=1e-10),
        "weight_decay": WEIGHT_DECAY,
    }

    @classmethod
    def build(cls, optimizers):
        return cls(decay=any(o["weight_decay"] for o in optimizers),
                   initial=float(optimizers[0]["initial_accumulator_value"]))

    def init_state(self, xp, params) -> list:
        return [(xp.zeros_like(W) + self.initial, xp.zeros_like(b) + self.initial, step_count(xp, W))
                for W, b in params]

    def update(self, xp, params, grads, state, hyper, inplace=False):
        lr, eps = hyper["lr"], hyper["eps"]
        out, new_state = [], []
        for (W, b), (dW, db), (sW, sb, t) in zip(params, grads, state):
            t = t + 1.0
            if self.decay:
                dW = dW + hyper["weight_decay"] * W
            rate = lr / (1.0 + (t - 1.0) * hyper["lr_decay"])
            moved = []
            for P, g, s in ((W, dW, sW), (b, db, sb)):
                if inplace:
                    s += g * g
                    P -= rate * (g / (xp.sqrt(s) + eps))
                else:
                    s = s + g * g
                    P = P - rate * (g / (xp.sqrt(s) + eps))
                moved.append((P, s))
            (W, sW), (b, sb) = moved
            out.append((W, b))
            new_state.append((sW, sb, t))
        return out, new_state

    def torch(self, torch, groups, o, **how):
        return torch.optim.Adagrad(groups, lr=o["lr"], lr_decay=o["lr_decay"], eps=o["eps"],
                                   initial_accumulator_value=o["initial_accumulator_value"], **how)

    def optax(self, optax, o, weights):
        if o["lr_decay"]:
            raise Unavailable("optax's adagrad has no learning-rate decay (lr_decay)")
        rule = optax.adagrad(o["lr"], initial_accumulator_value=o["initial_accumulator_value"], eps=o["eps"])
        return optax_decayed(optax, rule, o["weight_decay"], weights)
