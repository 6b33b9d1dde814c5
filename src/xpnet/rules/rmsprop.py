"""RMSprop, ``torch.optim.RMSprop``'s: a running average of the squared gradients divides each step;
optionally centered (the running average of the gradients subtracted), with momentum, with coupled
weight decay (on the weights only)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from ..errors import Unavailable
from .base import EPS, MOMENTUM, WEIGHT_DECAY, Rule, Setting, optax_decayed, register


@register
@dataclass(frozen=True)
class RMSprop(Rule):
    """Per array ``P`` with gradient ``g`` (``g += wd * W`` for the weights with weight decay):
    ``s = alpha s + (1 - alpha) g^2``; centered: ``a += (1 - alpha) (g - a)`` and ``d = sqrt(s - a^2) + eps``,
    else ``d = sqrt(s) + eps``; with momentum ``buf = mu buf + g / d`` and ``P -= lr buf``, else
    ``P -= lr g / d`` (torch.optim.RMSprop). The state per layer: ``s`` of W and b, then ``a`` (centered),
    then ``buf`` (momentum). Not linear in the gradients, so per-sample training steps row by row.

    ``momentum`` and ``decay`` say whether any network of the run has momentum or weight decay;
    ``centered`` is one value per stack."""

    centered: bool = False
    momentum: bool = False
    decay: bool = False

    name = "rmsprop"
    lr = 0.01
    settings = {
        "alpha": Setting(0.99, "smoothing constant of the squared gradients' average", checks.below_one),
        "eps": EPS,
        "momentum": MOMENTUM,
        "centered": Setting(False, "divide by the gradients' estimated variance, not their mean square",
                            checks.flag, network=False, switch=True),
        "weight_decay": WEIGHT_DECAY,
    }

    @classmethod
    def build(cls, optimizers):
        return cls(centered=optimizers[0]["centered"], momentum=any(o["momentum"] for o in optimizers),
                   decay=any(o["weight_decay"] for o in optimizers))

    def init_state(self, xp, params) -> list:
        per = 1 + self.centered + self.momentum
        return [tuple(xp.zeros_like(P) for _ in range(per) for P in (W, b)) for W, b in params]

    def update(self, xp, params, grads, state, hyper, inplace=False):
        lr, alpha, eps = hyper["lr"], hyper["alpha"], hyper["eps"]
        out, new_state = [], []
        for (W, b), (dW, db), s in zip(params, grads, state):
            if self.decay:
                dW = dW + hyper["weight_decay"] * W
            moved, kept = [], []
            for i, (P, g) in enumerate(((W, dW), (b, db))):
                square, average, buffer = s[i], s[2 + i] if self.centered else None, s[-2 + i] if self.momentum else None
                if inplace:
                    square *= alpha
                    square += (1.0 - alpha) * (g * g)
                else:
                    square = alpha * square + (1.0 - alpha) * (g * g)
                if self.centered:
                    if inplace:
                        average += (1.0 - alpha) * (g - average)
                    else:
                        average = average + (1.0 - alpha) * (g - average)
                    scale = xp.sqrt(square - average * average) + eps
                else:
                    scale = xp.sqrt(square) + eps
                step = g / scale
                if self.momentum:
                    if inplace:
                        buffer *= hyper["momentum"]
                        buffer += step
                    else:
                        buffer = hyper["momentum"] * buffer + step
                    step = buffer
                if inplace:
                    P -= lr * step
                else:
                    P = P - lr * step
                moved.append(P)
                kept.append((square, average, buffer))
            out.append(tuple(moved))
            (sW, aW, bW), (sb, ab, bb) = kept
            new_state.append((sW, sb, *((aW, ab) if self.centered else ()), *((bW, bb) if self.momentum else ())))
        return out, new_state

    def torch(self, torch, groups, o, **how):
        if how.get("fused"):
            raise Unavailable("torch.optim.RMSprop has no fused implementation")
        return torch.optim.RMSprop(groups, lr=o["lr"], alpha=o["alpha"], eps=o["eps"], momentum=o["momentum"],
                                   centered=o["centered"], **how)

    def optax(self, optax, o, weights):
        rule = optax.rmsprop(o["lr"], decay=o["alpha"], eps=o["eps"], eps_in_sqrt=False, centered=o["centered"],
                             momentum=o["momentum"] or None)
        return optax_decayed(optax, rule, o["weight_decay"], weights)
