"""The multilayer perceptron: parameters, a forward pass that keeps what backward needs, and backward.

Samples are rows. Layer ``l`` maps ``a_l`` (batch, n_l) to ``a_{l+1} = f(a_l @ W_l + b_l)`` with
``W_l`` of shape (n_l, n_{l+1}) and ``b_l`` of shape (n_{l+1},); ``a_0`` is the input ``X``. The last
layer's pre-activation ``z`` goes through the output activation of the :class:`~xpnet.functions.Head`.

Backward is the chain rule written out (derivation in docs/math.md)::

    delta_L = dLoss/dz = head delta / batch             (times lr in a training step)
    dW_l    = a_l^T @ delta_l,     db_l = sum(delta_l over the batch)
    delta_l = (delta_{l+1} @ W_l^T) * f'(a_l)           (f' from the activation's output)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import functions
from .backends import Backend, get_backend
from .errors import DataError, ValidationError
from .init import initial_weights
from .io import load_weights, save_weights
from .optim import sgd


def forward(xp, params, X, activations, z0=None):
    """Run the layers on ``X``; return ``(z, acts)``: the last layer's pre-activation and the input of
    every layer (``acts[0] is X``), which with the output is all that :func:`backward` needs.

    ``z0``, when given, is the first layer's pre-activation ``X @ W_0 + b_0`` already computed (see
    :meth:`MLP.sample_steps`)."""
    acts = [X]
    z = X @ params[0][0] + params[0][1] if z0 is None else z0
    for (W, b), f in zip(params[1:], activations):
        acts.append(f(xp, z))
        z = acts[-1] @ W + b
    return z, acts


def backward(xp, params, acts, out, z, t, derivatives, head, scale=1.0, input_weights=True):
    """``scale`` times the gradients ``[(dW_0, db_0), ...]`` of the batch-mean loss.

    Every gradient is linear in the output delta, so scaling that one (small) array by ``scale`` -- the
    learning rate, in a training step -- scales them all at no extra cost. ``input_weights=False`` leaves
    out the largest product, ``dW_0`` (``None`` in its place); ``db_0`` is then, for one sample, the first
    layer's delta, from which :meth:`MLP.sample_steps` applies ``dW_0`` later.
    """
    n = acts[0].shape[0]
    delta = head.delta(xp, z, out, t)
    if scale / n != 1.0:
        delta = delta * (scale / n)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        db = delta[0, :] if n == 1 else xp.sum(delta, axis=0)
        if l == 0 and not input_weights:
            grads.append((None, db))
        elif n == 1:  # one sample: the outer product, which BLAS does badly as a k=1 matrix product
            grads.append((xp.matrix_transpose(acts[l]) * delta, db))
        else:
            grads.append((xp.matrix_transpose(acts[l]) @ delta, db))
        if l > 0:
            delta = (delta @ xp.matrix_transpose(params[l][0])) * derivatives[l - 1](xp, acts[l])
    return grads[::-1]


def parse_layers(layers) -> list[int]:
    """``"784-32-10"`` or ``[784, 32, 10]`` -> ``[784, 32, 10]``, with a clear error otherwise."""
    if isinstance(layers, str):
        parts = layers.replace(",", "-").split("-")
        if not all(p.strip().isdigit() for p in parts):
            raise ValidationError(f"layers must look like '784-32-10' (sizes joined by '-'); got {layers!r}")
        sizes = [int(p) for p in parts]
    else:
        try:
            sizes = [int(n) for n in layers]
        except (TypeError, ValueError):
            raise ValidationError(f"layers must be a sequence of ints or a string like '784-32-10'; got {layers!r}") from None
        if any(int(n) != n for n in layers):
            raise ValidationError(f"layer sizes must be whole numbers; got {list(layers)!r}")
    if len(sizes) < 2:
        raise ValidationError(f"layers needs at least an input and an output size; got {sizes}")
    if min(sizes) < 1:
        raise ValidationError(f"every layer size must be at least 1; got {sizes}")
    return sizes


class MLP:
    """A fully connected network trained by hand-written backpropagation.

    >>> net = MLP("4-8-3", activation="tanh", seed=0)
    >>> net.predict([[0.0, 1.0, 2.0, 3.0]]).shape
    (1,)

    Parameters are plain arrays of the backend in ``net.params``: a list of ``(W, b)`` pairs with
    ``W`` of shape (n_in, n_out) and ``b`` of shape (n_out,).
    """

    def __init__(
        self,
        layers: str | Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        loss: str = "cross-entropy",
        output: str | None = None,
        init: str = "normal-max",
        seed: int = 0,
        backend: str | Backend = "numpy",
        device: str | None = None,
        dtype: str = "float32",
    ):
        self.sizes = parse_layers(layers)
        hidden = len(self.sizes) - 2
        names = [activation] * hidden if isinstance(activation, str) else list(activation)
        if len(names) != hidden:
            raise ValidationError(
                f"{hidden} hidden layer(s) need {hidden} activation(s); got {len(names)}: {names}"
            )
        pairs = [functions.get_activation(n) for n in names]
        self.activation_names = names
        self._activations = [f for f, _ in pairs]
        self._derivatives = [d for _, d in pairs]
        self.head = functions.get_head(loss, output)
        n_out = self.sizes[-1]
        if self.head.loss == "logistic" and n_out != 1:
            raise ValidationError(f"the logistic loss takes one output unit (labels 0/1); layers end in {n_out}")
        if self.head.loss == "cross-entropy" and n_out < 2:
            raise ValidationError("softmax + cross-entropy needs at least 2 output units; use loss='logistic' for 1")
        self.init, self.seed = init, seed
        self.backend = get_backend(backend, device)
        self._device = device
        self.xp = self.backend.xp
        self.dtype = dtype
        self.backend.dtype(dtype)  # fail now if the device lacks this dtype
        self.set_weights(initial_weights(self.sizes, init, seed))
        self._compiled = {}  # compiled epochs by (batch size, lr, shuffle), for backends with a compiler

    # -- parameters ---------------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """Number of classes the network predicts (2 for a single sigmoid/identity output unit)."""
        return max(self.sizes[-1], 2)

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """A host (NumPy) copy of every ``(W, b)``."""
        return [(self.backend.to_host(W).copy(), self.backend.to_host(b).copy()) for W, b in self.params]

    def set_weights(self, weights) -> None:
        """Replace the parameters with host arrays ``[(W, b), ...]`` (shapes are checked)."""
        weights = list(weights)
        if len(weights) != len(self.sizes) - 1:
            raise ValidationError(f"expected {len(self.sizes) - 1} (W, b) pairs for layers {self.sizes}; got {len(weights)}")
        params = []
        for l, (W, b) in enumerate(weights):
            shape = (self.sizes[l], self.sizes[l + 1])
            if tuple(W.shape) != shape or tuple(b.shape) != shape[1:]:
                raise ValidationError(
                    f"layer {l}: expected W{shape} and b{shape[1:]}; got W{tuple(W.shape)} and b{tuple(b.shape)}"
                )
            params.append((self.backend.asarray(W, self.dtype), self.backend.asarray(b, self.dtype)))
        self.params = params

    def config(self) -> dict:
        """Everything needed to rebuild this network (weights aside), as JSON-ready values."""
        return {
            "sizes": self.sizes,
            "activations": self.activation_names,
            "output": self.head.output,
            "loss": self.head.loss,
            "init": self.init,
            "seed": self.seed,
            "dtype": self.dtype,
        }

    def __getstate__(self) -> dict:
        """Pickle host copies of the weights and the configuration, never device arrays or modules."""
        state = {"config": self.config(), "weights": self.get_weights(), "backend": self.backend.name,
                 "device": self._device}
        if hasattr(self, "meta"):
            state["meta"] = self.meta
        return state

    def __setstate__(self, state: dict) -> None:
        c = state["config"]
        self.__init__(c["sizes"], c["activations"], loss=c["loss"], output=c["output"], init=c["init"],
                      seed=c["seed"], backend=state["backend"], device=state["device"], dtype=c["dtype"])
        self.set_weights(state["weights"])
        if "meta" in state:
            self.meta = state["meta"]

    def __repr__(self) -> str:
        return (
            f"MLP({'-'.join(map(str, self.sizes))}, activations={self.activation_names}, "
            f"output={self.head.output}, loss={self.head.loss}, backend={self.backend}, dtype={self.dtype})"
        )

    # -- data ---------------------------------------------------------------------------------------
    def inputs(self, X, name: str = "X"):
        """``X`` on this network's device in its dtype, checked: host arrays (NumPy, lists) are copied,
        arrays already on the backend are used as they are."""
        host = isinstance(X, (np.ndarray, list, tuple))
        if host:
            X = np.asarray(X)
            if X.dtype.kind not in "biuf":
                raise ValidationError(f"{name} must hold numbers; got dtype {X.dtype}")
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValidationError(f"{name} must have shape (n_samples, {self.sizes[0]}); got {tuple(X.shape)}")
        finite = np.isfinite(X).all() if host else self.xp.all(self.xp.isfinite(X))
        if not bool(finite):
            raise ValidationError(f"{name} contains NaN or infinity")
        return self.backend.asarray(X, self.dtype) if host else X

    def targets(self, y) -> np.ndarray:
        """Host float64 targets for host labels ``y``: one-hot rows for several outputs, a column for one.

        A 2-D ``y`` of shape (n, n_out) is taken as targets already (regression with the squared loss).
        """
        y = np.asarray(y)
        n_out = self.sizes[-1]
        if y.ndim == 2:
            if y.shape[1] != n_out:
                raise ValidationError(f"2-D targets must have {n_out} columns; got shape {y.shape}")
            return y.astype(np.float64)
        if y.ndim != 1:
            raise ValidationError(f"y must be a 1-D array of labels; got shape {y.shape}")
        if y.dtype.kind not in "iub":
            if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValidationError(f"labels must be integers; got dtype {y.dtype}")
        labels = y.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValidationError(
                f"labels must lie in 0..{self.n_classes - 1} for {n_out} output unit(s); "
                f"got values from {labels.min()} to {labels.max()}"
            )
        if n_out == 1:
            return labels[:, None].astype(np.float64)
        return np.eye(n_out)[labels]

    # -- the maths ----------------------------------------------------------------------------------
    def forward(self, X, params=None):
        """``(out, z, acts)`` for a device batch ``X``: outputs, last pre-activation, layer inputs."""
        z, acts = forward(self.xp, self.params if params is None else params, X, self._activations)
        return self.head.activation(self.xp, z), z, acts

    def backward(self, acts, out, z, t, params=None, scale=1.0):
        """Gradients ``[(dW, db), ...]`` of the batch-mean loss, times ``scale`` (see :func:`backward`)."""
        params = self.params if params is None else params
        return backward(self.xp, params, acts, out, z, t, self._derivatives, self.head, scale)

    def loss_and_gradients(self, X, t, params=None):
        """Batch-mean loss (a device scalar) and its gradients, for device arrays ``X`` and targets ``t``."""
        params = self.params if params is None else params
        z, acts = forward(self.xp, params, X, self._activations)
        out, total = self.head.forward(self.xp, z, t)
        return total / X.shape[0], self.backward(acts, out, z, t, params)

    def step(self, params, X, t, lr):
        """One SGD step on a batch: returns ``(params, loss)`` with the loss *summed* over the batch.

        On backends whose arrays can be updated in place (NumPy, CuPy, PyTorch, array-api-strict) the
        given parameter arrays are updated and returned; elsewhere (JAX) new arrays are returned and the
        step is a pure function, ready for a tracing compiler.
        """
        xp = self.xp
        z, acts = forward(xp, params, X, self._activations)
        out, total = self.head.forward(xp, z, t)
        steps = backward(xp, params, acts, out, z, t, self._derivatives, self.head, scale=lr)
        return sgd(params, steps, self.backend.inplace), total

    def sample_steps(self, params, X, t, lr):
        """Per-sample SGD over the rows of ``X`` in order -- the updates of ``len(X)`` calls of
        :meth:`step` with one row each, up to rounding -- on a backend that updates in place; returns
        ``(params, loss)`` with the loss summed over the rows, each taken before its own update.

        What a per-sample step costs most is the first layer's rank-one update ``W_0 -= x^T d`` (784 x 32
        numbers for MNIST's small net, for one sample). Here those updates wait until the end of the
        rows: after rows ``0..k-1`` with first-layer deltas ``D`` (learning rate included), the first
        layer holds ``W_0 - X[:k]^T D[:k]`` and ``b_0 - sum(D[:k])``, so row ``k`` meets the
        pre-activation ``x_k W_0 + b_0 - (X[k] X[:k]^T + 1) D[:k]`` (docs/math.md). Two products before
        the rows and one after replace every per-row outer product; every other layer steps as usual.
        """
        xp = self.xp
        W0, b0 = params[0]
        first = X @ W0 + b0  # each row's first pre-activation under the weights the rows start from
        gram = X @ xp.matrix_transpose(X) + 1.0  # row products; the 1 carries the bias updates
        D = xp.zeros_like(first)
        zs = []
        for k in range(X.shape[0]):
            z0 = first[k : k + 1, :] - gram[k : k + 1, :k] @ D[:k, :]
            z, acts = forward(xp, params, X[k : k + 1, :], self._activations, z0=z0)
            zs.append(z)
            tk = t[k : k + 1, :]
            out = self.head.activation(xp, z)
            steps = backward(xp, params, acts, out, z, tk, self._derivatives, self.head, lr, input_weights=False)
            sgd(params[1:], steps[1:], inplace=True)
            D[k, :] = steps[0][1]
        sgd(params[:1], [(xp.matrix_transpose(X) @ D, xp.sum(D, axis=0))], inplace=True)
        _, total = self.head.forward(xp, xp.concat(zs, axis=0), t)
        return params, total

    # -- user-facing --------------------------------------------------------------------------------
    def predict_proba(self, X):
        """Output activations for host ``X``, as a NumPy array (softmax probabilities for cross-entropy)."""
        out, _, _ = self.forward(self.inputs(X))
        return self.backend.to_host(out)

    def predict(self, X) -> np.ndarray:
        """Predicted class indices for host ``X`` (threshold 0.5 for a single output unit)."""
        return predicted_classes(self.predict_proba(X))

    def loss(self, X, y) -> float:
        """Mean loss of host ``X`` against labels (or targets) ``y``."""
        return self.evaluate(X, y)["loss"]

    def fit(self, X, y, **kwargs):
        """Train with SGD; see :func:`xpnet.train.fit` for the arguments. Returns the history."""
        from .train import fit

        return fit(self, X, y, **kwargs)

    def evaluate(self, X, y, **kwargs):
        """Mean loss, accuracy and confusion matrix on a dataset; see :func:`xpnet.train.evaluate`."""
        from .train import evaluate

        return evaluate(self, X, y, **kwargs)

    # -- saving -------------------------------------------------------------------------------------
    def save(self, path, **extra_meta) -> None:
        """Write ``W0, b0, W1, b1, ...`` and a JSON ``meta`` entry to an ``.npz`` atomically."""
        save_weights(path, self.get_weights(), {**self.config(), **extra_meta})

    @classmethod
    def load(cls, path, backend="numpy", device=None, dtype=None) -> "MLP":
        """Rebuild a network saved by :meth:`save` (nothing is unpickled)."""
        weights, meta = load_weights(path)
        missing = [k for k in ("activations", "loss", "output") if k not in meta]
        if missing:
            raise DataError(f"{path}: the 'meta' entry lacks {', '.join(missing)}; not an xpnet weights file")
        net = cls(
            meta["sizes"], meta["activations"], loss=meta["loss"], output=meta["output"],
            init=meta.get("init", "normal-max"), seed=meta.get("seed", 0),
            backend=backend, device=device, dtype=dtype or meta.get("dtype", "float32"),
        )
        net.set_weights(weights)
        net.meta = meta
        return net


def predicted_classes(out: np.ndarray) -> np.ndarray:
    """Class indices from host output activations: argmax, or ``out > 0.5`` for one column."""
    if out.shape[1] == 1:
        return (out[:, 0] > 0.5).astype(np.int64)
    return np.argmax(out, axis=1)


__all__ = ["MLP", "forward", "backward", "parse_layers", "predicted_classes"]
