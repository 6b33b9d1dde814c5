"""scikit-learn estimators backed by xpnet: NumPy arrays in, NumPy arrays out, whatever backend trains.

>>> from xpnet.sklearn import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0)   # doctest: +SKIP
>>> clf.fit(X, y).score(X_test, y_test)                                           # doctest: +SKIP

Needs scikit-learn (``pip install "xpnet[peers]"``). The estimators work in ``Pipeline`` and
``GridSearchCV`` and pass ``sklearn.utils.estimator_checks.check_estimator`` (see docs/sklearn.md for the
checks and their settings).
"""

from __future__ import annotations

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("xpnet.sklearn needs scikit-learn: pip install 'xpnet[peers]'") from exc

from .mlp import MLP


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
        backend="numpy",
        device=None,
        dtype="float64",
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
    def _targets(self, y):
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    # -- training -----------------------------------------------------------------------------------
    def _build(self, n_features):
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self.net_ = MLP(
            [n_features, *self.hidden_layer_sizes, self._n_outputs()], self.activation, loss=self._loss,
            output=self._output, init=self.init, seed=seed, backend=self.backend, device=self.device,
            dtype=self.dtype,
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

    def _outputs(self, X):
        check_is_fitted(self, "net_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.net_.predict_proba(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A classifier on softmax + cross-entropy (several classes) or sigmoid + logistic loss (two).

    Labels may be anything ``numpy.unique`` sorts (ints, strings, ...); ``classes_`` holds them.
    ``loss_curve_`` is the mean training loss of each epoch.
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
        X, y = validate_data(self, X, y, dtype=np.float64, reset=first)
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y if classes is None else classes)
            if len(self.classes_) < 2:
                raise ValueError(f"MLPClassifier needs at least 2 classes; y has {len(self.classes_)} class")
            self._build(X.shape[1])
        return self._epochs(X, self._encode(y), epochs)

    def fit(self, X, y):
        return self._fit(X, y, self.max_iter, first=True)

    def partial_fit(self, X, y, classes=None):
        """One more epoch over ``(X, y)``; the first call needs ``classes``."""
        first = not hasattr(self, "net_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, 1, first, classes)

    def predict_proba(self, X):
        out = self._outputs(X)
        return np.hstack([1.0 - out, out]) if out.shape[1] == 1 else out

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


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
                 max_iter=20, shuffle=True, random_state=None, backend="numpy", device=None, dtype="float64"):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, init=init,
                         learning_rate=learning_rate, batch_size=batch_size, max_iter=max_iter, shuffle=shuffle,
                         random_state=random_state, backend=backend, device=device, dtype=dtype)

    def _n_outputs(self):
        return self.n_outputs_

    def _fit(self, X, y, epochs, first):
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True, reset=first)
        targets = y.reshape(len(y), -1).astype(np.float64)
        if first:
            self._is_1d, self.n_outputs_ = y.ndim == 1, targets.shape[1]
            self.y_mean_ = targets.mean(axis=0)
            self.y_scale_ = np.where(targets.std(axis=0) > 0, targets.std(axis=0), 1.0)
            self._build(X.shape[1])
        return self._epochs(X, (targets - self.y_mean_) / self.y_scale_, epochs)

    def fit(self, X, y):
        return self._fit(X, y, self.max_iter, first=True)

    def partial_fit(self, X, y):
        """One more epoch over ``(X, y)``."""
        return self._fit(X, y, 1, first=not hasattr(self, "net_"))

    def predict(self, X):
        out = self._outputs(X) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._is_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
