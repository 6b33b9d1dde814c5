"""scikit-learn estimators backed by xpnet, following scikit-learn's Array API conventions.

>>> from xpnet.sklearn import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0)   # doctest: +SKIP
>>> clf.fit(X, y).score(X_test, y_test)                                           # doctest: +SKIP

With ``sklearn.set_config(array_api_dispatch=True)`` (and ``SCIPY_ARRAY_API=1``, as scikit-learn asks)
the estimators train where ``X`` lives -- a PyTorch tensor on a GPU trains on that GPU with the torch
backend, an array-api-strict array on its device -- and ``predict``, ``predict_proba``, ``score`` and the
fitted array attributes come back in ``X``'s namespace and on its device. ``y`` follows ``X`` (labels are
read to the host). ``backend=``/``device=`` given explicitly must agree with a non-NumPy ``X`` (a
contradiction is refused in one line); with NumPy (or list) inputs they choose where to train, and the
results come back as NumPy. With dispatch off (the default) NumPy arrays go in and come out, whatever
backend trains.

Needs scikit-learn (``pip install "xpnet[peers]"``). The estimators work in ``Pipeline`` and
``GridSearchCV`` and pass ``sklearn.utils.estimator_checks.check_estimator``, its Array API checks
included (see docs/sklearn.md).
"""

from __future__ import annotations

import numpy as np

try:
    from sklearn import get_config
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("xpnet.sklearn needs scikit-learn: pip install 'xpnet[peers]'") from exc

from .backends import backend_of, get_backend, host_copy
from .errors import BackendError
from .mlp import MLP


def _dispatch() -> bool:
    return bool(get_config().get("array_api_dispatch", False))


def _is_host(X) -> bool:
    return isinstance(X, (np.ndarray, np.generic, list, tuple))


class _BaseMLP(BaseEstimator):
    """Shared parameters and training; subclasses say how targets map to output units."""

    _loss = "squared"
    _output = None

    def __init__(
        self,
        *,
        hidden_layer_sizes=(32,),
        activation="relu",
        init="he",
        learning_rate=0.05,
        batch_size=32,
        max_iter=20,
        shuffle=True,
        random_state=None,
        backend=None,
        device=None,
        dtype=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.dtype = dtype

    # -- subclass hooks -----------------------------------------------------------------------------
    def _n_outputs(self) -> int:
        raise NotImplementedError

    # -- where to train, and where results go -------------------------------------------------------
    def _validate(self, X, y="no_validation", reset=True, **kwargs):
        """``validate_data`` keeping non-NumPy arrays in their namespace when dispatch is on (NumPy's own
        float64 conversion otherwise, as before dispatch existed)."""
        return validate_data(self, X, y, reset=reset, dtype="numeric" if _dispatch() else np.float64, **kwargs)

    def _placement(self, X):
        """The backend to train on for ``X``, and whether results go back to the host (NumPy)."""
        source = None if _is_host(X) or not _dispatch() else backend_of(X)
        if source is None or source.name == "numpy":
            return get_backend(self.backend or "numpy", self.device), True
        if self.backend not in (None, source.name):
            raise ValueError(f"backend={self.backend!r} contradicts X, a {source.name} array on {source.device}; "
                             f"leave backend=None to train where X lives, or pass NumPy arrays")
        try:
            wanted = None if self.device is None else get_backend(source.name, self.device).device
        except BackendError as exc:
            raise ValueError(str(exc)) from None
        if wanted is not None and wanted != source.device:
            raise ValueError(f"device={self.device!r} contradicts X, which is on {source.device}; "
                             "leave device=None to train where X lives")
        return source, False

    def _out(self, array):
        """A result of the network (an array of its backend) where the caller's inputs live."""
        return host_copy(array) if self._to_host else array

    def _attribute(self, host):
        """A fitted array attribute computed on the host, in the namespace and on the device of ``X``."""
        return host if self._to_host else self.net_.backend.asarray(host, self.net_.dtype)

    def _check_same_place(self, X, method):
        if not _dispatch():
            return
        here = "numpy" if _is_host(X) else str(backend_of(X))
        there = "numpy" if self._to_host else str(self.net_.backend)
        if here.split(":")[0] == there.split(":")[0] == "numpy" or here == there:
            return
        raise ValueError(f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and the same "
                         f"device as those passed to fit(): fit used {there}, {method} got {here}")

    # -- training -----------------------------------------------------------------------------------
    def _build(self, X):
        backend, self._to_host = self._placement(X)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        dtype = self.dtype
        if dtype is None:  # float64 where the device has it (MPS, some others: float32 only)
            try:
                backend.dtype("float64")
                dtype = "float64"
            except BackendError:
                dtype = "float32"
        self.net_ = MLP(
            [X.shape[1], *self.hidden_layer_sizes, self._n_outputs()], self.activation, loss=self._loss,
            output=self._output, init=self.init, seed=seed, backend=backend, dtype=dtype,
        )
        self.loss_curve_ = []
        self.n_iter_ = 0
        self._seed = seed

    def _epochs(self, X, targets, epochs):
        batch = min(int(self.batch_size), X.shape[0])
        history = self.net_.fit(
            X, targets, epochs=self.n_iter_ + epochs, initial_epoch=self.n_iter_, lr=self.learning_rate,
            batch_size=batch, shuffle=self.shuffle, seed=self._seed, progress=False,
        )
        self.loss_curve_ += [record["train_loss"] for record in history]
        self.n_iter_ += epochs
        return self

    def _outputs(self, X, method):
        """The output activations for ``X``, as an array of the network's backend."""
        check_is_fitted(self, "net_")
        X = self._validate(X, reset=False)
        self._check_same_place(X, method)
        return self.net_.head.activation(self.net_.xp, self.net_.logits(X))

    # -- scikit-learn's names for the fitted parameters ---------------------------------------------
    @property
    def coefs_(self):
        """The weight matrices, ``coefs_[i]`` of shape (n_in, n_out), where ``X`` lives."""
        check_is_fitted(self, "net_")
        if self._to_host:
            return [W for W, _ in self.net_.get_weights()]
        return [W for W, _ in self.net_.params]

    @property
    def intercepts_(self):
        """The bias vectors, ``intercepts_[i]`` of shape (n_out,), where ``X`` lives."""
        check_is_fitted(self, "net_")
        if self._to_host:
            return [b for _, b in self.net_.get_weights()]
        return [self.net_.xp.reshape(b, (b.shape[-1],)) for _, b in self.net_.params]

    @property
    def n_layers_(self) -> int:
        check_is_fitted(self, "net_")
        return len(self.net_.sizes)

    @property
    def out_activation_(self) -> str:
        """scikit-learn's name of the output activation (``softmax``, ``logistic``, ``identity``)."""
        check_is_fitted(self, "net_")
        return {"sigmoid": "logistic"}.get(self.net_.head.output, self.net_.head.output)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.array_api_support = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A classifier on softmax + cross-entropy (several classes) or sigmoid + logistic loss (two).

    Labels may be anything ``numpy.unique`` sorts (ints, strings, ...); ``classes_`` holds them (on the
    host). ``loss_curve_`` is the mean training loss of each epoch.
    """

    def _n_outputs(self):
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    @property
    def _loss(self):
        return "logistic" if len(self.classes_) == 2 else "cross-entropy"

    def _encode(self, y):
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[index], y):
            unknown = sorted(set(np.asarray(y).tolist()) - set(self.classes_.tolist()))
            raise ValueError(f"y has labels {unknown[:5]} not in classes {self.classes_.tolist()}")
        return index

    def _fit(self, X, y, epochs, first, classes=None):
        X, y = self._validate(X, y, reset=first)
        y = host_copy(y)  # labels follow X through the host, wherever they came from
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y if classes is None else host_copy(classes))
            if len(self.classes_) < 2:
                raise ValueError(f"MLPClassifier needs at least 2 classes; y has {len(self.classes_)} class")
            self._build(X)
        else:
            self._check_same_place(X, "partial_fit")
        return self._epochs(X, self._encode(y), epochs)

    def fit(self, X, y):
        return self._fit(X, y, self.max_iter, first=True)

    def partial_fit(self, X, y, classes=None):
        """One more epoch over ``(X, y)``; the first call needs ``classes``."""
        first = not hasattr(self, "net_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, 1, first, classes)

    def _proba(self, X, method):
        out = self._outputs(X, method)
        xp = self.net_.xp
        return xp.concat([1.0 - out, out], axis=1) if out.shape[1] == 1 else out

    def predict_proba(self, X):
        return self._out(self._proba(X, "predict_proba"))

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy, computed on the host in float64 whatever the namespace (scikit-learn's own
        ``accuracy_score`` averages in the namespace's default float, float32 for PyTorch)."""
        right = host_copy(self.predict(X)) == host_copy(y)
        weights = None if sample_weight is None else host_copy(sample_weight)
        return float(np.average(right, weights=weights))

    def predict(self, X):
        proba = self._proba(X, "predict")  # checks that the estimator is fitted
        index = self.net_.xp.argmax(proba, axis=1)
        if self._to_host or self.classes_.dtype.kind not in "biuf":
            return self.classes_[host_copy(index)]  # labels that are not numbers stay NumPy
        xp = self.net_.xp
        return xp.take(self.net_.backend.asarray(self.classes_), index, axis=0)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A regressor on the squared loss with an identity output; ``y`` of shape (n,) or (n, k).

    The network fits the targets standardised with the mean and standard deviation of the ``y`` first
    fitted (``y_mean_``, ``y_scale_``), and ``predict`` maps its outputs back: plain SGD then behaves the
    same whatever the units of ``y``, where raw targets in the hundreds would make it diverge.
    ``loss_curve_`` is in those standardised units.
    """

    _loss = "squared"
    _output = "identity"

    def __init__(self, *, hidden_layer_sizes=(32,), activation="relu", init="he", learning_rate=0.01, batch_size=32,
                 max_iter=20, shuffle=True, random_state=None, backend=None, device=None, dtype=None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, init=init,
                         learning_rate=learning_rate, batch_size=batch_size, max_iter=max_iter, shuffle=shuffle,
                         random_state=random_state, backend=backend, device=device, dtype=dtype)

    def _n_outputs(self):
        return self.n_outputs_

    def _fit(self, X, y, epochs, first):
        X, y = self._validate(X, y, reset=first, multi_output=True, y_numeric=True)
        y = host_copy(y)
        targets = y.reshape(len(y), -1).astype(np.float64)
        if first:
            self._is_1d, self.n_outputs_ = y.ndim == 1, targets.shape[1]
            std = targets.std(axis=0)
            self._build(X)
            self.y_mean_ = self._attribute(targets.mean(axis=0))
            self.y_scale_ = self._attribute(np.where(std > 0, std, 1.0))
        else:
            self._check_same_place(X, "partial_fit")
        return self._epochs(X, (targets - host_copy(self.y_mean_)) / host_copy(self.y_scale_), epochs)

    def fit(self, X, y):
        return self._fit(X, y, self.max_iter, first=True)

    def partial_fit(self, X, y):
        """One more epoch over ``(X, y)``."""
        return self._fit(X, y, 1, first=not hasattr(self, "net_"))

    def predict(self, X):
        out = self._outputs(X, "predict")
        if self._to_host:
            out = self.net_.backend.asarray(self.y_scale_, self.net_.dtype) * out + self.net_.backend.asarray(
                self.y_mean_, self.net_.dtype)
        else:
            out = out * self.y_scale_ + self.y_mean_
        if self._is_1d:
            out = self.net_.xp.reshape(out, (out.shape[0],))
        return self._out(out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
