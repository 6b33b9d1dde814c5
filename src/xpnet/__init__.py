"""xpnet: a multilayer perceptron with hand-written gradients, on any Array API library.

>>> import xpnet
>>> net = xpnet.MLP("784-32-32-10", activation="sigmoid", backend="numpy")
"""

from .backends import Backend, get_backend, installed_backends
from .errors import BackendError, DataError, DivergenceError, ValidationError, XpnetError
from .gradcheck import gradcheck
from .mlp import MLP
from .stack import Stack
from .train import evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Backend",
    "BackendError",
    "DataError",
    "DivergenceError",
    "Stack",
    "ValidationError",
    "XpnetError",
    "evaluate",
    "fit",
    "get_backend",
    "gradcheck",
    "installed_backends",
]
