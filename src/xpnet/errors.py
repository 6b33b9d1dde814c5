"""The exception types xpnet raises for user mistakes.

Every error a user can cause derives from :class:`XpnetError`, so a caller (and the CLI) can catch one
type and show its message as a single line. Each also derives from the built-in type that fits, so
``except ValueError`` keeps working for people who expect it.
"""


class XpnetError(Exception):
    """Base class of every error xpnet raises on purpose."""


class BackendError(XpnetError, RuntimeError):
    """An array library or device is unknown, not installed, or cannot do what was asked."""


class ValidationError(XpnetError, ValueError):
    """An argument or input array is not what xpnet expects."""


class DataError(XpnetError, ValueError):
    """A data file is missing, truncated, corrupt or does not match its checksum."""


class DivergenceError(XpnetError, FloatingPointError):
    """Training produced a non-finite loss or weight.

    ``epoch`` and ``step`` (1-based) locate it, ``lr`` is the learning rate, and ``history`` holds the
    records of the epochs that finished before it.
    """

    def __init__(self, message, *, epoch=None, step=None, lr=None, history=None):
        super().__init__(message)
        self.epoch, self.step, self.lr = epoch, step, lr
        self.history = history if history is not None else []


class Unavailable(Exception):
    """A benchmark implementation cannot run here (library missing, no GPU, unsupported case); says why.
    Not a user mistake: the case is reported as skipped, with the reason."""
