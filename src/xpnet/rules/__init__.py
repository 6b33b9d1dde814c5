"""The update rules, one module each (:mod:`xpnet.optim` says what a rule is and how it is found);
importing this package registers them, in this order."""

from .base import RULES, Rule, Setting, register
from .sgd import SGD
from .adam import Adam, AdamW
from .rmsprop import RMSprop
from .adagrad import Adagrad

__all__ = ["RULES", "Rule", "Setting", "register", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
