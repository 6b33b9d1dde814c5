"""Adam and AdamW, ``torch.optim.Adam``'s and ``torch.optim.AdamW``'s."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .. import checks
from .base import EPS, WEIGHT_DECAY, Rule, Setting, optax_decayed, register, step_count


@register
@dataclass(frozen=True)
class Adam(Rule):
    """``torch.optim.Adam`` (``decoupled``: ``AdamW``): with weight decay coupled (``g += wd * W``) or
    decoupled (``W *= 1 - lr * wd``), on the weights only; per layer the moments and the step count
    ``t`` (one per network): ``m += (1 - b1) (g - m)``, ``v = b2 v + (1 - b2) g^2``, ``W -= lr / (1 -
    b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. Not linear in the gradients, so per-sample training
    steps row by row."""

    decoupled: bool = False
    decay: bool = False

    name = "adam"
    lr = 0.001
    settings = {
        "beta1": Setting(0.9, "decay of the first moment", checks.below_one),
        "beta2": Setting(0.999, "decay of the second moment", checks.below_one),
        "eps": EPS,
        "weight_decay": WEIGHT_DECAY,
    }

    def __post_init__(self):
        if self.decoupled != (self.name == "adamw"):  # a record that names one and holds the other
            raise ValueError(f"update rule {self.name!r} with decoupled={self.decoupled}")

    @classmethod
    def build(cls, optimizers):
        return cls(decay=any(o["weight_decay"] for o in optimizers))

    def init_state(self, xp, params) -> list:
        return [(xp.zeros_like(W), xp.zeros_like(b), xp.zeros_like(W), xp.zeros_like(b), step_count(xp, W))
                for W, b in params]

    def update(self, xp, params, grads, state, hyper, inplace=False):
        lr, b1, b2, eps = hyper["lr"], hyper["beta1"], hyper["beta2"], hyper["eps"]
        out, new_state = [], []
        for (W, b), (dW, db), (mW, mb, vW, vb, t) in zip(params, grads, state):
            t = t + 1.0
            if self.decay:
                wd = hyper["weight_decay"]
                if not self.decoupled:
                    dW = dW + wd * W
                elif inplace:
                    W *= 1.0 - lr * wd
                else:
                    W = W * (1.0 - lr * wd)
            step = lr / (1.0 - b1 ** t)
            root = xp.sqrt(1.0 - b2 ** t)
            moved = []
            for P, g, m, v in ((W, dW, mW, vW), (b, db, mb, vb)):
                if inplace:
                    m += (1.0 - b1) * (g - m)
                    v *= b2
                    v += (1.0 - b2) * (g * g)
                    P -= step * (m / (xp.sqrt(v) / root + eps))
                else:
                    m = m + (1.0 - b1) * (g - m)
                    v = b2 * v + (1.0 - b2) * (g * g)
                    P = P - step * (m / (xp.sqrt(v) / root + eps))
                moved.append((P, m, v))
            (W, mW, vW), (b, mb, vb) = moved
            out.append((W, b))
            new_state.append((mW, mb, vW, vb, t))
        return out, new_state



    def torch(self, torch, groups, o, **how):
        cls = torch.optim.AdamW if self.decoupled else torch.optim.Adam
        return cls(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], **how)

    def optax(self, optax, o, weights):
        if self.decoupled:
            return optax.adamw(o["lr"], o["beta1"], o["beta2"], o["eps"], weight_decay=o["weight_decay"], mask=weights)
        return optax_decayed(optax, optax.adam(o["lr"], o["beta1"], o["beta2"], o["eps"]), o["weight_decay"], weights)


@register
@dataclass(frozen=True)
class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with the weight decay decoupled, ``W *= 1 - lr * wd`` (weights only)."""

    decoupled: bool = True

    name = "adamw"
    settings = {**Adam.settings, "weight_decay": dataclasses.replace(
        WEIGHT_DECAY, default=0.01, help="L2 on the weights, not the biases, decoupled (W *= 1 - lr * L)")}
