"""scikit-learn's ``MLPClassifier`` and ``MLPRegressor``, reproduced on xpnet's kernels and backends.

>>> from xpnet.sklearn import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0)   # doctest: +SKIP
>>> clf.fit(X, y).score(X_test, y_test)                                           # doctest: +SKIP

The estimators have scikit-learn's signature (names, defaults, meaning) and follow its source
(``sklearn/neural_network/_multilayer_perceptron.py`` and ``_stochastic_optimizers.py``) step by step:
its Glorot-uniform initial weights drawn from the same ``random_state`` (W, then b, per layer), its batch
order (``sklearn.utils.shuffle`` of the sample indices every epoch), its validation split for
``early_stopping``, its update rules (:class:`SklearnSGD`, :class:`SklearnAdam`),
L2 as ``alpha * W`` over the rows (or the summed ``sample_weight``) of each batch, its reported loss,
``invscaling`` and ``adaptive`` rates, ``tol``/``n_iter_no_change``, its warnings and ``verbose`` lines,
and ``lbfgs`` through ``scipy.optimize`` with xpnet computing loss and gradient where the data lives (one
host transfer per evaluation, as scipy needs). With the same parameters on the same float64 data,
``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_`` and ``validation_scores_`` equal
scikit-learn's own to rounding -- on NumPy, and on every other backend (tests/test_sklearn.py).

What xpnet adds: ``backend``, ``device`` and ``dtype`` (default: ``X``'s floating dtype). With
``sklearn.set_config(array_api_dispatch=True)`` (and ``SCIPY_ARRAY_API=1``, as scikit-learn asks) the
estimators train where ``X`` lives -- a PyTorch tensor on a GPU trains on that GPU with the torch
backend, an array-api-strict array on its device -- and ``predict``, ``predict_proba`` and the fitted
``coefs_``/``intercepts_`` come back in ``X``'s namespace and on its device. ``y`` and ``sample_weight``
follow ``X`` (read to the host once). ``backend=``/``device=`` given explicitly must agree with a non-NumPy
``X``; with NumPy inputs they choose where to train, and results come back as NumPy.

Multilabel targets, sparse ``X`` (SciPy csr/csc) and ``loss="poisson"`` are scikit-learn's too; ``coefs_`` and
``intercepts_`` are plain lists the caller may assign.
Needs scikit-learn (``pip install "xpnet[peers]"``).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np

try:
    from sklearn import get_config
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, gen_batches, shuffle
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, check_classification_targets, type_of_target,
                                          unique_labels)
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("xpnet.sklearn needs scikit-learn: pip install 'xpnet[peers]'") from exc

from . import kernels
from .backends import Backend, backend_of, get_backend, host_copy, is_sparse
from .errors import BackendError
from .mlp import MLP

_STOCHASTIC_SOLVERS = ("sgd", "adam")
#: Rows of sparse ``X`` densified at once on a backend without SciPy's sparse product (predictions).
SPARSE_CHUNK = 4096


def _dispatch() -> bool:
    return bool(get_config().get("array_api_dispatch", False))


def _is_host(X) -> bool:
    return isinstance(X, (np.ndarray, np.generic, list, tuple)) or is_sparse(X)


def _own(names: dict) -> dict:
    """A constructor's parameters from its ``locals()``: what the shared ``__init__`` stores."""
    return {k: v for k, v in names.items() if k not in ("self", "__class__")}


def _host(x) -> np.ndarray:
    """``x`` on the host: an array of a backend copied there, anything else through ``numpy.asarray``."""
    try:
        return host_copy(x)
    except BackendError:
        return np.asarray(x)



class SklearnSGD:
    """scikit-learn's ``SGDOptimizer`` (its ``_stochastic_optimizers.py``), for :mod:`xpnet.sklearn`: a
    velocity that carries the learning rate, ``v = mu v - lr g``, and the step ``v`` or, Nesterov's form,
    ``mu v - lr g`` with the new ``v``; ``p += step``. ``params``, ``grads`` and ``state`` are flat lists
    (scikit-learn's order: the weights, then the biases); ``lr`` is the current rate (a float)."""

    def init_state(self, xp, params) -> list:
        return [xp.zeros_like(p) for p in params]

    def update(self, xp, params, grads, state, lr, momentum, nesterov):
        velocities = [momentum * v - lr * g for v, g in zip(state, grads)]
        steps = [momentum * v - lr * g for v, g in zip(velocities, grads)] if nesterov else velocities
        return [p + u for p, u in zip(params, steps)], velocities


class SklearnAdam:
    """scikit-learn's ``AdamOptimizer``: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, the bias
    correction folded into the rate, ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)`` (a host float, as
    scikit-learn computes it), and ``eps`` added to ``sqrt(v)``: ``p -= lr_t m / (sqrt(v) + eps)``. The
    state is ``(t, ms, vs)``."""

    def init_state(self, xp, params):
        return 0, [xp.zeros_like(p) for p in params], [xp.zeros_like(p) for p in params]

    def update(self, xp, params, grads, state, lr, beta1, beta2, eps):
        t, ms, vs = state
        t += 1
        ms = [beta1 * m + (1 - beta1) * g for m, g in zip(ms, grads)]
        vs = [beta2 * v + (1 - beta2) * (g**2) for v, g in zip(vs, grads)]
        rate = lr * float(np.sqrt(1 - beta2**t)) / (1 - beta1**t)
        return [p - rate * m / (xp.sqrt(v) + eps) for p, m, v in zip(params, ms, vs)], (t, ms, vs)

class _Optimizer:
    """scikit-learn's optimizer object: the rule's state on the device, the current learning rate, and
    what happens at an epoch's end (``invscaling``) and when training stops improving (``adaptive``)."""

    def __init__(self, est, xp, params):
        self.solver = est.solver
        self.learning_rate_init = est.learning_rate_init
        self.learning_rate = float(est.learning_rate_init)
        self.schedule, self.power_t = est.learning_rate, est.power_t
        self.momentum, self.nesterov = est.momentum, est.nesterovs_momentum
        self.betas, self.epsilon = (est.beta_1, est.beta_2), est.epsilon
        self.rule = SklearnSGD() if self.solver == "sgd" else SklearnAdam()
        self.state = self.rule.init_state(xp, params)

    def step(self, xp, params, grads):
        if self.solver == "sgd":
            options = (self.learning_rate, self.momentum, self.nesterov)
        else:
            options = (self.learning_rate_init, *self.betas, self.epsilon)
        params, self.state = self.rule.update(xp, params, grads, self.state, *options)
        return params

    def iteration_ends(self, time_step):
        if self.solver == "sgd" and self.schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose) -> bool:
        if self.solver != "sgd" or self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, training (stochastic and lbfgs), where
    to train and where results go."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [str, Backend, None],
        "device": "no_validation",
        "dtype": [StrOptions({"float32", "float64"}), None],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, loss, shuffle, random_state, tol, verbose, warm_start,
                 momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, backend, device, dtype):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.device = device
        self.dtype = dtype

    # -- where to train, and where results go -------------------------------------------------------
    def _validate(self, X, y="no_validation", reset=True, **kwargs):
        """``validate_data`` keeping non-NumPy arrays in their namespace when dispatch is on (float64 or
        float32 kept as scikit-learn's MLP keeps them, otherwise)."""
        dtype = "numeric" if _dispatch() else (np.float64, np.float32)
        return validate_data(self, X, y, reset=reset, dtype=dtype, accept_sparse=["csr", "csc"], **kwargs)

    def _placement(self, X):
        """The backend to train on for ``X``, and whether results go back to the host (NumPy)."""
        source = None if _is_host(X) or not _dispatch() else backend_of(X)
        if source is None or source.name == "numpy":
            backend = get_backend(self.backend or "numpy", self.device)
            if not backend.can_train:
                raise ValueError(f"backend={backend.name!r} cannot train (its arrays record a graph and hold no "
                                 "values); it runs the forward pass only (xpnet export)")
            return backend, True
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

    def _dtype_for(self, X, backend) -> str:
        """``dtype``, or ``X``'s floating dtype (float64 for anything else), float32 where the device
        has no float64."""
        if self.dtype is not None:
            return self.dtype
        name = "float64"
        if _is_host(X):
            name = "float32" if (X.dtype if is_sparse(X) else np.asarray(X).dtype) == np.float32 else "float64"
        elif X.dtype == backend.xp.float32:
            name = "float32"
        try:
            backend.dtype(name)
        except BackendError:
            name = "float32"
        return name

    def _out(self, array):
        """A result of the network (an array of its backend) where the caller's inputs live."""
        return host_copy(array) if self._to_host else array

    def _check_same_place(self, X, method):
        if not _dispatch():
            return
        here = "numpy" if _is_host(X) else str(backend_of(X))
        there = "numpy" if self._to_host else str(self.net_.backend)
        if here.split(":")[0] == there.split(":")[0] == "numpy" or here == there:
            return
        raise ValueError(f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and the same "
                         f"device as those passed to fit(): fit used {there}, {method} got {here}")

    # -- scikit-learn's _fit ------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)  # Y: the host's 2-D targets
        n_samples, n_features = X.shape
        if first_pass or not hasattr(self, "net_"):  # (coefs_ assigned to an estimator never fitted)
            backend, self._to_host = self._placement(X)
            dtype = self._dtype_for(X, backend)
        else:
            self._check_same_place(X, "partial_fit" if incremental else "fit")
            backend, dtype = self.net_.backend, self.net_.dtype
        if sample_weight is not None:
            sample_weight = _check_sample_weight(_host(sample_weight), np.empty((n_samples, 0), dtype=dtype))
        self.n_outputs_ = Y.shape[1]
        layer_units = [n_features, *hidden, self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, backend, dtype)
        else:
            if not hasattr(self, "net_"):
                self._make_net(layer_units, backend, dtype)
            self._adopt()
            if list(self.net_.sizes) != layer_units:
                raise ValueError(f"the network has layers {self.net_.sizes}; this data and hidden_layer_sizes need "
                                 f"{layer_units}")
        net = self.net_
        data = (self._sparse_rows(X) if is_sparse(X) else net.inputs(X), backend.asarray(Y, net.dtype), sample_weight)
        with backend.context():  # CuPy's device current, JAX's full float32 products, as xpnet's own fit
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(data, Y, incremental)
            else:
                self._fit_lbfgs(data)
        self._publish()
        if not all(bool(net.xp.all(net.xp.isfinite(a))) for pair in net.params for a in pair):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _make_net(self, layer_units, backend, dtype):
        activation = [self.activation] * (len(layer_units) - 2)
        loss, output = {"softmax": ("cross-entropy", "softmax"), "logistic": ("logistic", "sigmoid"),
                        "identity": ("squared", "identity"), "exp": ("poisson", "exp")}[self.out_activation_]
        self.net_ = MLP(layer_units, activation, loss=loss, output=output, backend=backend, dtype=dtype)

    def _initialize(self, layer_units, backend, dtype):
        self.n_iter_, self.t_ = 0, 0
        self.n_layers_ = len(layer_units)
        self._make_net(layer_units, backend, dtype)
        weights = []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):  # Glorot-uniform, as scikit-learn draws it
            bound = np.sqrt((2.0 if self.activation == "logistic" else 6.0) / (fan_in + fan_out))
            W = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            b = self._random_state.uniform(-bound, bound, fan_out)
            weights.append((W.astype(dtype, copy=False), b.astype(dtype, copy=False)))
        self.net_.set_weights(weights)
        self._publish()
        self._best_params = self._flat()
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.best_loss_, self.validation_scores_, self.best_validation_score_ = np.inf, None, None

    # -- the parameters as scikit-learn lists them: the weights, then the biases ----------------------
    def _flat(self) -> list:
        return [W for W, _ in self.net_.params] + [b for _, b in self.net_.params]

    def _set_flat(self, flat):
        L = len(flat) // 2
        self.net_.params = list(zip(flat[:L], flat[L:]))

    def _publish(self):
        """``coefs_`` and ``intercepts_`` from the network: lists of arrays where ``X`` lives, which the
        caller may assign or edit (scikit-learn's attributes are its truth; :meth:`_adopt` reads them)."""
        if self._to_host:
            weights = self.net_.get_weights()
            self.coefs_, self.intercepts_ = [W for W, _ in weights], [b.reshape(-1) for _, b in weights]
        else:
            self.coefs_ = [W for W, _ in self.net_.params]
            self.intercepts_ = [self.net_.xp.reshape(b, (b.shape[-1],)) for _, b in self.net_.params]

    def _adopt(self):
        """The network's parameters from ``coefs_`` and ``intercepts_`` as they are now (assigned or edited
        in place, in any namespace the estimator takes): one line for a wrong count or shape."""
        net, sizes = self.net_, self.net_.sizes
        coefs, intercepts = getattr(self, "coefs_", None), getattr(self, "intercepts_", None)
        wanted = len(sizes) - 1
        if not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)) \
                or len(coefs) != wanted or len(intercepts) != wanted:
            raise ValueError(f"coefs_ and intercepts_ must be lists of {wanted} arrays for layers {sizes}; got "
                             f"{type(coefs).__name__} and {type(intercepts).__name__} of "
                             f"{len(coefs) if hasattr(coefs, '__len__') else '?'} and "
                             f"{len(intercepts) if hasattr(intercepts, '__len__') else '?'}")
        params = []
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            W, b = self._device_array(W), self._device_array(b)
            if tuple(W.shape) != (sizes[i], sizes[i + 1]) or tuple(b.shape) != (sizes[i + 1],):
                raise ValueError(f"coefs_[{i}] and intercepts_[{i}] must have shapes {(sizes[i], sizes[i + 1])} and "
                                 f"{(sizes[i + 1],)}; got {tuple(W.shape)} and {tuple(b.shape)}")
            params.append((W, net.xp.reshape(b, (1, sizes[i + 1]))))
        net.params = params

    def _sparse_rows(self, X):
        """Sparse ``X`` kept on the host in CSR form (its rows taken by batch): NumPy's first layer multiplies
        by it as it is (scikit-learn's sparse product); another backend gets each batch densified."""
        X = X.tocsr().astype(self.net_.dtype)
        if X.shape[1] != self.net_.sizes[0]:
            raise ValueError(f"X must have {self.net_.sizes[0]} features; got {X.shape[1]}")
        return X

    def _batch(self, X, rows):
        """Rows ``rows`` of ``X`` (a slice or host indices for sparse ``X``, device indices otherwise), as
        the network's first layer takes them."""
        if not is_sparse(X):
            return X[rows, :] if isinstance(rows, slice) else self.net_.xp.take(X, rows, axis=0)
        part = X[rows]
        return part if self.net_.backend.name == "numpy" else self.net_.backend.asarray(part.toarray(), self.net_.dtype)

    def _device_array(self, a):
        """``a`` (host, or an array of any backend) as an array of the network's backend and dtype."""
        backend, dtype = self.net_.backend, self.net_.backend.dtype(self.net_.dtype)
        try:
            source = None if _is_host(a) else backend_of(a)
        except (BackendError, TypeError):
            source = None
        if source is not None and source.name == backend.name and source.device == backend.device:
            return a if a.dtype == dtype else self.net_.xp.astype(a, dtype)
        return backend.asarray(_host(a), self.net_.dtype)

    def _loss_grad(self, flat, X, Y, weights=None, weight_sum=None):
        """scikit-learn's ``_backprop`` on xpnet's kernels: its loss (with ``0.5 * alpha * ||W||^2`` over
        the rows or the summed weights) as a 0-d array and the flat gradients, L2 included. Sparse ``X``
        on a backend without SciPy's sparse product goes by chunks of rows, densified, and sums them."""
        xp, alpha = self.net_.xp, self.alpha
        L = len(flat) // 2
        total = float(X.shape[0]) if weights is None else weight_sum
        if is_sparse(X) and self.net_.backend.name != "numpy":
            backend, loss, grads = self.net_.backend, 0.0, None
            for first in range(0, X.shape[0], SPARSE_CHUNK):
                chunk = slice(first, min(first + SPARSE_CHUNK, X.shape[0]))
                w = weights[chunk, :] if weights is not None else \
                    backend.asarray(np.ones((chunk.stop - first, 1)), self.net_.dtype)  # each row counts 1 / total
                part_loss, part = self._data_loss_grad(flat, self._batch(X, chunk), Y[chunk, :], w, total)
                loss = loss + part_loss
                grads = part if grads is None else [g + h for g, h in zip(grads, part)]
        else:
            loss, grads = self._data_loss_grad(flat, X, Y, weights, total)
        if alpha:
            loss = loss + (0.5 * alpha) * sum(xp.sum(W * W) for W in flat[:L]) / total
            grads = [dW + alpha * W / total for dW, W in zip(grads[:L], flat[:L])] + grads[L:]
        return loss, grads

    def _data_loss_grad(self, flat, X, Y, weights, total):
        """The loss of rows ``X`` (times their ``weights``) summed and divided by ``total``, and its flat
        gradients likewise (no L2)."""
        xp, net = self.net_.xp, self.net_.network
        L = len(flat) // 2
        params = list(zip(flat[:L], flat[L:]))
        rows = X.shape[0]
        z, acts = kernels.forward(xp, net, params, X)
        out = net.head.activation(xp, z)
        loss = self._batch_loss(xp, out, Y, weights, total)
        grads = kernels.backward(xp, net, params, acts, out, z, Y, scale=1.0 if weights is None else rows / total,
                                 row_weights=weights)
        return loss, [dW for dW, _ in grads] + [db for _, db in grads]

    def _batch_loss(self, xp, out, Y, weights, total):
        """scikit-learn's loss of one batch (its ``LOSS_FUNCTIONS``, probabilities clipped to [eps, 1 -
        eps]), summed over the rows (times their weights) and divided by ``total``."""
        def weighted(values):
            return xp.sum(values if weights is None else values * weights)

        if self.out_activation_ == "identity":
            return 0.5 * weighted((Y - out) ** 2) / (total * Y.shape[1])
        if self.out_activation_ == "exp":  # half the Poisson deviance, y log(y / p) (0 where y = 0) - y + p
            positive = Y > 0
            t_log = xp.where(positive, Y * xp.log(xp.where(positive, Y, xp.ones_like(Y)) / out), xp.zeros_like(Y))
            return weighted(t_log - Y + out) / total
        eps = float(xp.finfo(out.dtype).eps)
        p = xp.clip(out, eps, 1 - eps)
        if self.out_activation_ == "logistic":
            return -weighted(Y * xp.log(p) + (1 - Y) * xp.log(1 - p)) / total
        return -weighted(Y * xp.log(p)) / total

    def _fit_stochastic(self, data, targets, incremental):
        X, Y, sample_weight = data
        backend, xp = self.net_.backend, self.net_.xp
        params = self._flat()
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Optimizer(self, xp, params)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        n = X.shape[0]
        if early_stopping:
            stratify = targets if is_classifier(self) and self.n_outputs_ == 1 else None
            train, val = train_test_split(np.arange(n), random_state=self._random_state,
                                          test_size=self.validation_fraction, stratify=stratify)
            if val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 "your dataset.")
            rows = backend.asarray(train.astype(np.int32))
            if is_sparse(X):  # kept sparse on the host: the validation rows are scored in chunks
                X_val, X = X[val], X[train]
            else:
                X_val = xp.take(X, backend.asarray(val.astype(np.int32)), axis=0)
                X = xp.take(X, rows, axis=0)
            y_val, sw_val = self._validation_targets(targets[val]), None if sample_weight is None else sample_weight[val]
            Y = xp.take(Y, rows, axis=0)
            sample_weight = None if sample_weight is None else sample_weight[train]
        else:
            X_val = y_val = sw_val = None
        n_samples = X.shape[0]
        weights = None if sample_weight is None else backend.asarray(sample_weight[:, None], self.net_.dtype)
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        def rows(A, batch):  # a batch's rows: gathered in the epoch's order, or a slice
            if A is None:
                return None
            if is_sparse(A):
                return self._batch(A, sample_idx[batch] if self.shuffle else batch)
            return xp.take(A, order[batch], axis=0) if self.shuffle else A[batch, :]

        order = None
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)
                    order = backend.asarray(sample_idx.astype(np.int32))
                accumulated = 0.0
                for batch in gen_batches(n_samples, batch_size):
                    total = None if weights is None else float(sample_weight[sample_idx[batch]].sum())
                    Xb, Yb, wb = (rows(A, batch) for A in (X, Y, weights))
                    loss, grads = self._loss_grad(params, Xb, Yb, wb, total)
                    accumulated = accumulated + loss * (batch.stop - batch.start)
                    params = self._optimizer.step(xp, params, grads)
                self._set_flat(params)
                self.n_iter_ += 1
                self.loss_ = float(host_copy(accumulated)) / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val, params)
                self._optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                                  "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            self._set_flat(params)
            warnings.warn("Training interrupted by user.")
        if early_stopping:
            self._set_flat(self._best_params)

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight, params):
        if early_stopping:
            score = self._score(X, y, sample_weight)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = list(params)  # updates make new arrays: these stay as they are
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score(self, X, y, sample_weight):
        """The validation score (scikit-learn's ``_score_with_function``): NaN for non-finite outputs."""
        out = host_copy(self._activations(X))
        if not np.isfinite(out).all():
            return np.nan
        return self._score_function(y, self._from_outputs(out), sample_weight=sample_weight)

    def _fit_lbfgs(self, data):
        import scipy.optimize

        X, Y, sample_weight = data
        net = self.net_
        weights = None if sample_weight is None else net.backend.asarray(sample_weight[:, None], net.dtype)
        total = None if sample_weight is None else float(sample_weight.sum())
        shapes = [tuple(a.shape) for a in self._flat()]
        sizes = [int(np.prod(s)) for s in shapes]
        bounds = np.cumsum([0, *sizes])

        def unpack(x):
            return [net.backend.asarray(x[a:b].reshape(s), net.dtype) for a, b, s in zip(bounds[:-1], bounds[1:], shapes)]

        def loss_grad(x):  # one host transfer each way per evaluation
            loss, grads = self._loss_grad(unpack(x), X, Y, weights, total)
            return float(host_copy(loss)), np.concatenate([host_copy(g).ravel() for g in grads]).astype(np.float64)

        x0 = np.concatenate([host_copy(a).ravel() for a in self._flat()])
        result = scipy.optimize.minimize(loss_grad, x0, method="L-BFGS-B", jac=True,
                                         options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        self.n_iter_ = min(result.nit, self.max_iter)
        if result.status != 0:
            message = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={result.status}):\n"
                       f"{result.message}\n")
            if self.n_iter_ == self.max_iter:
                message += f"\nIncrease the number of iterations to improve the convergence (max_iter={self.max_iter})."
            message += ("\nYou might also want to scale the data as shown in:\n"
                        "    https://scikit-learn.org/stable/modules/preprocessing.html")
            warnings.warn(message, ConvergenceWarning, stacklevel=3)
        self.loss_ = float(result.fun)
        self._set_flat(unpack(result.x))

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. %s is not stochastic."
                                 % self.solver)
        return True

    # -- using the network --------------------------------------------------------------------------
    def _activations(self, X):
        """The output activations for validated ``X``, as an array of the network's backend (sparse ``X``:
        NumPy's sparse product, or chunks of rows densified on another backend)."""
        net = self.net_
        if not is_sparse(X):
            return net.head.activation(net.xp, net.logits(X))
        X = self._sparse_rows(X)
        with net.backend.context():
            chunks = [kernels.forward(net.xp, net.network, net.params, self._batch(X, slice(i, i + SPARSE_CHUNK)))[0]
                      for i in range(0, X.shape[0], SPARSE_CHUNK)]
        z = chunks[0] if len(chunks) == 1 else net.xp.concat(chunks, axis=0)
        return net.head.activation(net.xp, z)

    def _outputs(self, X, method):
        check_is_fitted(self, "net_")
        X = self._validate(X, reset=False)
        self._check_same_place(X, method)
        self._adopt()
        return self._activations(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.array_api_support = True
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's ``MLPClassifier`` (same parameters, defaults and results; see the module's
    docstring): softmax + cross-entropy for three or more classes, one logistic unit for two. Labels
    may be anything scikit-learn's ``LabelBinarizer`` takes; ``classes_`` holds them (on the host)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, backend=None, device=None, dtype=None):
        super().__init__(loss="log_loss", **_own(locals()))

    _score_function = staticmethod(accuracy_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._validate(X, y, reset=reset, multi_output=True)
        y = host_copy(y)  # labels follow X through the host, wherever they came from
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the previous "
                                     f"call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        self.out_activation_ = "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"
        return X, self._label_binarizer.transform(y).astype(bool)

    def _validation_targets(self, targets):
        return self._label_binarizer.inverse_transform(targets)

    def _from_outputs(self, out):
        return self._label_binarizer.inverse_transform(out.ravel() if self.n_outputs_ == 1 else out)

    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda self: self._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One more epoch over ``(X, y)``, the optimizer's state kept; the first call needs ``classes``."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(_host(y)).startswith("multilabel") else classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _proba(self, X, method):
        out = self._outputs(X, method)
        xp = self.net_.xp
        return xp.concat([1.0 - out, out], axis=1) if out.shape[1] == 1 else out

    def predict_proba(self, X):
        return self._out(self._proba(X, "predict_proba"))

    def predict_log_proba(self, X):
        proba = self._proba(X, "predict_log_proba")
        return self._out(self.net_.xp.log(proba))

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy, computed on the host in float64 whatever the namespace (scikit-learn's own
        ``accuracy_score`` averages in the namespace's default float, float32 for PyTorch)."""
        right = host_copy(self.predict(X)) == host_copy(y)
        if right.ndim == 2:  # multilabel: a row is right when every label is (scikit-learn's subset accuracy)
            right = right.all(axis=1)
        weights = None if sample_weight is None else host_copy(sample_weight)
        return float(np.average(right, weights=weights))

    def predict(self, X):
        proba = self._proba(X, "predict")  # checks that the estimator is fitted
        if self._label_binarizer.y_type_.startswith("multilabel"):  # each label's own probability > 0.5
            chosen = self._label_binarizer.inverse_transform(host_copy(proba))
            return chosen if self._to_host else self.net_.backend.asarray(chosen)
        index = self.net_.xp.argmax(proba, axis=1)
        if len(self.classes_) == 1:  # trained on one class: scikit-learn predicts it, whatever the output
            index = self.net_.xp.zeros_like(index)
        if self._to_host or self.classes_.dtype.kind not in "biuf":
            return self.classes_[host_copy(index)]  # labels that are not numbers stay NumPy
        return self.net_.xp.take(self.net_.backend.asarray(self.classes_), index, axis=0)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's ``MLPRegressor`` (same parameters, defaults and results; see the module's
    docstring): the squared error on an identity output, ``y`` of shape (n,) or (n, k), no scaling of
    the targets (as scikit-learn)."""

    _parameter_constraints: dict = {**_BaseMLP._parameter_constraints, "loss": [StrOptions({"squared_error", "poisson"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, backend=None, device=None,
                 dtype=None):
        super().__init__(**_own(locals()))

    _score_function = staticmethod(r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._validate(X, y, reset=reset, multi_output=True, y_numeric=True)
        y = host_copy(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        return X, y.reshape(len(y), -1)

    def _validation_targets(self, targets):
        return targets

    def _from_outputs(self, out):
        return out.ravel() if out.shape[1] == 1 else out

    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda self: self._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One more epoch over ``(X, y)``, the optimizer's state kept."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        out = self._outputs(X, "predict")
        if out.shape[1] == 1:
            out = self.net_.xp.reshape(out, (out.shape[0],))
        return self._out(out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
