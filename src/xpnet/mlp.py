"""The multilayer perceptron: its configuration, parameters and data checks, and the user-facing
methods (fit, evaluate, predict, save, load) on top of the kernels (:mod:`xpnet.kernels`) and the
training loop (:mod:`xpnet.train`).

:class:`BaseNetwork` holds what one network and a stack of networks (:class:`xpnet.stack.Stack`) share;
:class:`MLP` is one network.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from . import checks, export, functions, kernels, spec, train
from . import state as state_module
from .backends import Backend, backend_of, get_backend, host_copy
from .errors import DataError, ValidationError
from .init import initial_weights
from .io import load_weights
from .metrics import predicted_classes
from .datasets import own
from .session import Checkpoint, start


#: Layer sizes from ``"784-32-10"`` or ``[784, 32, 10]``, with a one-line error otherwise.
parse_layers = checks.layers


class BaseNetwork:
    """Layer sizes, hidden activations, the output/loss pair, backend and dtype, and the checks of input
    data: what one network (:class:`MLP`) and a stack (:class:`~xpnet.stack.Stack`) share.

    ``n_models`` is ``None`` for one network and K for a stack; ``params`` is the list of ``(W, b)``
    arrays of the backend, with a leading model axis for a stack.
    """

    n_models: int | None = None
    #: The run's state (:class:`xpnet.state.TrainState`): what training carries from one epoch to the next
    #: besides the weights -- the update rule's state, schedules, early stopping, frozen networks, history.
    #: ``None`` until the first fit (or a load).
    state = None

    @property
    def diverged(self) -> list:
        """For each network ``None``, or where it diverged (``epoch``, ``step``, ``lr``, ``problem``,
        ``at``); a diverged network of a stack keeps its last finite weights and is not trained further."""
        return self.state.report("problem") if self.state is not None else [None] * (self.n_models or 1)

    @property
    def stopped(self) -> list:
        """For each network ``None``, or ``{"stopped": epoch}`` where early stopping stopped it."""
        return self.state.report("stopped") if self.state is not None else [None] * (self.n_models or 1)

    def _configure(self, layers, activation, loss, output, backend, device, dtype) -> None:
        self.sizes = parse_layers(layers)
        head = functions.head_for(loss, output, self.sizes[-1])
        self.network = kernels.Network(functions.hidden_activations(activation, self.sizes), head)
        self.backend = get_backend(backend, device)
        self.device_name = device  # as given: what pickling and copies pass on
        self.xp = self.backend.xp
        self.dtype = dtype
        self.backend.dtype(dtype)  # fail now if the device lacks this dtype

    @property
    def activation_names(self) -> list[str]:
        return [a.name for a in self.network.hidden]

    @property
    def head(self) -> functions.Head:
        return self.network.head

    @property
    def n_classes(self) -> int:
        """Number of classes the network predicts (2 for a single sigmoid/identity output unit)."""
        return max(self.sizes[-1], 2)

    def _device_params(self, weights, lead=()):
        """Host ``[(W, b), ...]`` (``b`` of shape (n,) or (1, n)) as device parameters with ``b`` a row,
        after checking the shapes; ``lead`` is the stack's leading shape."""
        weights = list(weights)
        if len(weights) != len(self.sizes) - 1:
            raise ValidationError(f"expected {len(self.sizes) - 1} (W, b) pairs for layers {self.sizes}; got {len(weights)}")
        params = []
        for l, (W, b) in enumerate(weights):
            W, b = np.asarray(W), np.asarray(b)
            shape = (*lead, self.sizes[l], self.sizes[l + 1])
            if tuple(W.shape) != shape or tuple(b.shape) not in ((*lead, shape[-1]), (*lead, 1, shape[-1])):
                raise ValidationError(
                    f"layer {l}: expected W{shape} and b{(*lead, shape[-1])}; got W{tuple(W.shape)} and b{tuple(b.shape)}"
                )
            params.append((self.backend.asarray(W, self.dtype),
                           self.backend.asarray(b.reshape(*lead, 1, shape[-1]), self.dtype)))
        return params

    def check_file(self, path, meta: dict) -> None:
        """A file's ``meta`` describes this network, and its run (``meta["run"]``, where the file records
        one) is one xpnet reads and describes it too: otherwise a damaged file, one line."""
        described = {k: meta.get(k) for k in ("sizes", "activations", "loss", "output")}
        if "run" in meta:
            try:
                m = spec.from_meta(meta).model
                described = {"sizes": m.sizes, "activations": m.activations, "loss": m.loss,
                             "output": functions.head_for(m.loss, m.output, m.sizes[-1]).output}
            except ValidationError as exc:
                raise DataError(f"{path}: damaged run in its 'meta' entry ({exc})") from None
        mine = self.config()
        for name, theirs in (("its run", described), ("its configuration", meta)):
            differ = [k for k in described if theirs.get(k) != mine[k]]
            if differ:
                raise DataError(f"{path}: {name} ({', '.join(f'{k} {theirs.get(k)!r}' for k in differ)}) is not the "
                                f"network it holds; a damaged file")

    # -- saving -------------------------------------------------------------------------------------
    #: What a file of this class holds (:func:`xpnet.io.load_weights`' ``models``): ``None`` one network,
    #: ``True`` a stack.
    _FILE_MODELS = None

    def save(self, path, **meta) -> None:
        """Write ``W0, b0, W1, b1, ...`` (a stack's with the model axis), the run's state (:attr:`state`:
        the optimizer's moments and step counts, the schedules' and early stopping's counters and best
        weights, the history) and a JSON ``meta`` entry (the configuration, ``meta``) to an ``.npz``
        atomically: a resumed run continues exactly where this one stopped."""
        state_module.save(path, self, meta)

    @classmethod
    def load(cls, path, backend="numpy", device=None, dtype=None):
        """Rebuild a network (or stack) saved by :meth:`save`, its run state included (nothing is
        unpickled); a damaged or foreign file is a one-line :class:`~xpnet.errors.DataError`."""
        weights, meta, arrays = load_weights(path, extra=True, models=cls._FILE_MODELS)
        try:
            net = cls.from_config(meta, backend=backend, device=device, dtype=dtype)
        except (DataError, ValidationError) as exc:  # a value there that no network takes: a damaged file
            raise DataError(f"{path}: {exc} in its 'meta' entry; not an xpnet weights file") from None
        net.check_file(path, meta)
        net.set_weights(weights)
        net.state = state_module.restore(path, net, meta, arrays)
        net.meta = meta
        return net

    # -- data ---------------------------------------------------------------------------------------
    def inputs(self, X, name: str = "X"):
        """``X`` on this network's device in its dtype, checked. Host arrays (NumPy, lists) and arrays of
        another library or device are copied there (through the host); arrays already on this backend's
        device are used as they are, cast to the network's dtype if need be."""
        here = not isinstance(X, (np.ndarray, np.generic, list, tuple)) and self.backend.holds(X)
        if here and backend_of(X).device != self.backend.device:
            here = False
        if not here:
            X = host_copy(X)
            if X.dtype.kind not in "biuf":
                raise ValidationError(f"{name} must hold numbers; got dtype {X.dtype}")
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValidationError(f"{name} must have shape (n_samples, {self.sizes[0]}); got {tuple(X.shape)}")
        finite = self.xp.all(self.xp.isfinite(X)) if here else np.isfinite(X).all()
        if not bool(finite):
            raise ValidationError(f"{name} contains NaN or infinity")
        if not here:
            return self.backend.asarray(X, self.dtype)
        dtype = self.backend.dtype(self.dtype)
        return X if X.dtype == dtype else self.xp.astype(X, dtype)

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

    # -- using the network --------------------------------------------------------------------------
    def logits(self, X):
        """The last layer's pre-activations for ``X`` (host or device), as an array of the backend:
        (n, n_out), or (K, n, n_out) for a stack."""
        with self.backend.context():
            z, _ = kernels.forward(self.xp, self.network, self.params, self.inputs(X))
        return z

    def predict_proba(self, X) -> np.ndarray:
        """Output activations for ``X``, as a NumPy array (softmax probabilities for cross-entropy)."""
        return self.backend.to_host(self.head.activation(self.xp, self.logits(X)))

    def predict(self, X) -> np.ndarray:
        """Predicted class indices for ``X`` as a NumPy array (threshold 0.5 for a single output unit)."""
        return self.backend.to_host(predicted_classes(self.head.activation(self.xp, self.logits(X)), self.xp))

    def unstack(self, per_network: list):
        """What training and evaluation give per network, as this model answers: one network's own
        (an :class:`MLP`), the list (a stack)."""
        return per_network[0] if self.n_models is None else per_network

    def fit(self, X, y, *, epochs: int = 1, lr=None, batch_size: int = 1, shuffle: bool | None = None, seed=None,
            X_test=None, y_test=None, validation=None, compile: bool | None = None, progress: bool | None = None,
            on_epoch=None, initial_epoch: int = 0, sample_chunk: int | None = None, unroll: int = 1,
            order=None, optimizer: str = "sgd", checkpoint=None, checkpoint_every: int | None = None,
            resume: bool = False, threads: int | None = None, **options):
        """Train in place and return the history.

        Parameters
        ----------
        X, y : arrays
            Training inputs (n, n_inputs) and labels (n,) or targets (n, n_outputs), host or device.
        epochs : int
            Train up to this epoch (0 trains nothing).
        lr : float or sequence of float, optional
            Learning rate; a stack takes one per network (or one for all). Default: the rule's own, as on the
            command line (0.003 for ``sgd``, 0.001 for ``adam`` and ``adamw``, 0.01 for ``rmsprop`` and
            ``adagrad``: :func:`xpnet.optim.default`).
        batch_size : int
            Samples per SGD step. ``1`` without shuffling is the textbook per-sample algorithm.
        shuffle : bool, optional
            Reshuffle every epoch; defaults to ``batch_size > 1``. Epoch ``e`` is shuffled with
            :func:`xpnet.train.epoch_order` (``numpy.random.default_rng([seed, e])``), so every backend
            sees the same batches.
        seed : int or sequence of int, optional
            Shuffling seed; defaults to the model's seed (a stack: each network's own).
        X_test, y_test : arrays, optional
            Scored after every epoch (``test_loss``, ``test_accuracy``).
        validation : tuple (X_val, y_val), optional
            Scored after every epoch (``val_loss``, ``val_accuracy``).
        compile : bool, optional
            Run each epoch as one compiled call where the backend has a compiler (JAX: ``jit`` +
            ``lax.scan`` of the very same step); defaults to where it can.
        progress : bool, optional
            Draw a progress bar (default: when stderr is a terminal).
        on_epoch : callable, optional
            Called with each epoch's record (a stack: the list of its networks' records, ``None`` for a
            network that has diverged).
        initial_epoch : int
            Continue an interrupted run from the state on the network (``state``, as :meth:`load` left it):
            epochs ``initial_epoch + 1 .. epochs`` are trained, each shuffled as in an uninterrupted run, so
            resuming from a saved file ends with the same weights. (``resume=True`` does this by itself.)
        sample_chunk : int, optional
            Samples per call of the per-sample kernel (:func:`xpnet.kernels.sample_steps`) at batch size
            1; 1 runs plain steps. Default: 32, or 8 for SGD with momentum or weight decay in a compiled
            epoch (JAX).
        unroll : int
            Calls per iteration of a compiled epoch's loop (JAX's ``lax.scan`` unroll).
        threads : int, optional
            Math-library threads while training (NumPy's BLAS, PyTorch on the CPU), restored after; 0 leaves
            the library's own setting. Default: one thread for steps of at most 64 rows (per-sample training
            included), the library's own above (:func:`xpnet.train.thread_choice`).
        order : callable, optional
            ``order(epoch)`` gives the epoch's row order ((n,) integers, (K, n) for a stack, or ``None``)
            instead of the seeded shuffle.
        optimizer : str
            A registered update rule (:data:`xpnet.optim.RULES`): ``sgd``, ``adam``, ``adamw``, ``rmsprop``,
            ``adagrad`` (``torch.optim``'s semantics).
        **options
            The optimizer's options, as :class:`xpnet.spec.Optimizer` names them (one value, or one per
            network of a stack): ``momentum``, ``nesterov`` (sgd), ``beta1``, ``beta2``, ``eps`` (adam,
            adamw), ``alpha``, ``centered``, ``momentum``, ``eps`` (rmsprop), ``lr_decay``,
            ``initial_accumulator_value``, ``eps`` (adagrad), ``weight_decay`` (every rule; on the weights,
            not the biases), ``schedule`` (``constant``, ``step``,
            ``exponential``, ``cosine``, ``invscaling``, ``plateau``) with ``step_size``, ``gamma``,
            ``power_t``, ``patience``, ``min_delta``; ``early_stopping`` (a patience) with ``min_delta``
            and ``restore_best``. An option the optimizer or schedule does not use is refused.
        checkpoint : path, optional
            Write the weights and the run's state there (atomically) when training ends -- also on
            divergence, with the last finite weights -- and after every ``checkpoint_every`` epochs.
        checkpoint_every : int, optional
            Epochs between two checkpoint writes (default: only when training ends).
        resume : bool
            Continue from ``checkpoint`` if it exists (the same run: the same network, data size, seeds,
            batching and optimizer, else a one-line error): its weights and state are loaded and the epochs
            it lacks are trained, ending as an uninterrupted run would; a finished run trains nothing.

        Returns
        -------
        list of dict, or list of list of dict for a stack
            One record per epoch: ``epoch``, ``train_loss`` (the mean per-sample loss over the epoch, each
            sample's loss taken as its batch was trained), ``test_loss``, ``test_accuracy`` (``None``
            without test data), ``val_loss`` and ``val_accuracy`` with ``validation``,
            ``samples_per_second`` (the training loop only), ``seconds``, ``weight_change`` (the L2
            norm of each layer's weight change over the epoch), ``lr`` (the epoch's learning rate) and,
            on the epoch where early stopping stopped the network, ``stopped``.

        Raises
        ------
        DivergenceError
            The loss or weights became non-finite; the network keeps the last finite weights, and
            ``error.history`` holds the finished epochs. A stack does not raise: the network is frozen
            with its last finite weights, ``stack.diverged[k]`` says where, and the others train on.
        ValidationError
            A bad argument or input, before any training.
        """
        K = self.n_models or 1
        training = spec.Training(epochs=epochs, batch_size=batch_size, shuffle=shuffle, compile=compile,
                                 sample_chunk=sample_chunk, unroll=unroll, threads=threads)
        optimizers = _optimizers(K, optimizer, lr, options)
        seeds = self.seeds if seed is None else checks.per_network("seed", seed, K, checks.seed)
        if checkpoint is None and (checkpoint_every is not None or resume):
            raise ValidationError("checkpoint_every and resume need checkpoint=PATH")
        saving = None if checkpoint is None else Checkpoint(checkpoint, checkpoint_every)
        # The data's identity is what a checkpoint compares on resuming: taken only where there is one.
        digest = None if saving is None else own.digest_arrays(*map(_host_or_none, (X, y, *(validation or ()))))
        data = spec.Data(dataset=spec.ARRAYS, sha256=digest)
        session = start(self.runs(data, training, optimizers, seeds),
                        spec.Arrays(X, y, X_test, y_test, None if validation is None else tuple(validation)), self,
                        checkpoint=saving, resume=resume, order=order, initial_epoch=initial_epoch)
        callback = None if on_epoch is None else (lambda records: on_epoch(self.unstack(records)))
        return self.unstack(session.train(progress=progress, on_epoch=callback))

    def runs(self, data: "spec.Data", training: "spec.Training", optimizers, seeds) -> list:
        """The run specifications of training this network (a stack: each of its networks) on ``data`` as
        ``training`` says, network ``k`` with ``optimizers[k]`` and shuffling seed ``seeds[k]``."""
        m = self.network
        base = spec.Run(data=data, model=spec.Model(layers="-".join(map(str, self.sizes)),
                                                    activation="/".join(self.activation_names) or spec.default_of("activation"), loss=m.head.loss,
                                                    output=m.head.output, init=self.inits[0],
                                                    init_scale=self.init_scales[0]),
                        training=training, optimizer=optimizers[0], placement=spec.Placement(
                            backend=self.backend.name, device=self.device_name, dtype=self.dtype), seed=seeds[0])
        made = {}  # one run per distinct network: a stack's networks often differ in the seed only
        for key in zip(seeds, self.inits, self.init_scales, optimizers):
            if key not in made:
                seed, init, init_scale, optimizer = key
                run = base if (init, init_scale) == (self.inits[0], self.init_scales[0]) else base.replace(
                    init=init, init_scale=init_scale)
                made[key] = run.for_network(seed, optimizer)
        return [made[key] for key in zip(seeds, self.inits, self.init_scales, optimizers)]

    def evaluate(self, X, y, **kwargs):
        """Mean loss, accuracy and confusion matrix on a dataset; see :func:`xpnet.train.evaluate`."""
        return train.evaluate(self, X, y, **kwargs)


def _host_or_none(a):
    return None if a is None else host_copy(a)


def _optimizers(K, optimizer, lr, options) -> list:
    """One :class:`~xpnet.spec.Optimizer` per network from ``fit``'s keywords: a value for all, or (where
    networks may differ) one per network."""
    names = {f.name for f in dataclasses.fields(spec.Optimizer)} - {"optimizer", "lr"}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValidationError(f"fit() has no option {', '.join(map(repr, unknown))}; the optimizer's options are "
                              f"{', '.join(sorted(names))}")
    values = {"optimizer": optimizer, "lr": lr, **options}
    shared = [k for k, v in values.items() if not spec.OPTIONS[k].network and isinstance(v, checks.SEQUENCES)]
    if shared:
        raise ValidationError(f"{shared[0]} takes one value for every network of a stack; got {values[shared[0]]!r}")
    per = {name: checks.per_network(name, value, K) if spec.OPTIONS[name].network else [value] * K
           for name, value in values.items()}
    rows = [tuple(per[name][k] for name in per) for k in range(K)]
    made = {row: spec.Optimizer(**dict(zip(per, row))) for row in set(rows)}  # one per distinct setting
    return [made[row] for row in rows]


class MLP(BaseNetwork):
    """A fully connected network trained by hand-written backpropagation.

    Parameters
    ----------
    layers : str or sequence of int
        Layer sizes, input first: ``"784-32-10"`` or ``[784, 32, 10]``.
    activation : str or sequence of str
        Hidden activation, one name or one per hidden layer: ``sigmoid`` (or ``logistic``), ``relu``,
        ``tanh``, ``identity``.
    loss : str
        ``cross-entropy`` (softmax output), ``logistic`` (one sigmoid output unit, labels 0/1) or
        ``squared`` (identity or sigmoid output).
    output : str, optional
        The output activation; defaults to the loss's own.
    init : str
        Weight initialisation: ``normal-max``, ``xavier``, ``xavier-uniform``, ``he``, ``lecun``,
        ``uniform``.
    seed : int
        Seed of the initial weights (drawn on the host, so the same on every backend) and the default
        shuffling seed.
    backend : str or Backend
        ``numpy``, ``cupy``, ``torch``, ``jax`` or ``array_api_strict``.
    device : str, optional
        The backend's device (see :func:`xpnet.get_backend`).
    dtype : str
        ``float32`` or ``float64``.
    init_scale : float
        Multiplies every initial weight (the initial standard deviation relative to ``init``'s).

    Attributes
    ----------
    params : list of (W, b)
        Arrays of the backend: ``W`` of shape (n_in, n_out), ``b`` a row of shape (1, n_out).

    Examples
    --------
    >>> net = MLP("4-8-3", activation="tanh", seed=0)
    >>> net.predict([[0.0, 1.0, 2.0, 3.0]]).shape
    (1,)
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
        init_scale: float = 1.0,
    ):
        self._configure(layers, activation, loss, output, backend, device, dtype)
        self.init, self.seed, self.init_scale = init, seed, init_scale
        self.set_weights(initial_weights(self.sizes, init, seed, init_scale))

    @property
    def seeds(self) -> list[int]:
        """The shuffling seed, as the training loop takes it (one per network)."""
        return [self.seed]

    @property
    def inits(self) -> list[str]:
        return [self.init]

    @property
    def init_scales(self) -> list[float]:
        return [self.init_scale]

    # -- parameters ---------------------------------------------------------------------------------
    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """A host (NumPy) copy of every ``(W, b)``, ``b`` of shape (n_out,)."""
        return [(self.backend.to_host(W).copy(), self.backend.to_host(b).reshape(-1).copy()) for W, b in self.params]

    def set_weights(self, weights) -> None:
        """Replace the parameters with host arrays ``[(W, b), ...]`` (shapes are checked)."""
        self.params = self._device_params(weights)

    def config(self) -> dict:
        """Everything needed to rebuild this network (weights aside), as JSON-ready values."""
        return {
            "sizes": self.sizes,
            "activations": self.activation_names,
            "output": self.head.output,
            "loss": self.head.loss,
            "init": self.init,
            "init_scale": self.init_scale,
            "seed": self.seed,
            "dtype": self.dtype,
        }

    @classmethod
    def from_spec(cls, run: "spec.Run") -> "MLP":
        """The network a run specification describes, with its initial weights."""
        m, p = run.model, run.placement
        return cls(m.layers, m.activation, loss=m.loss, output=m.output, init=m.init, seed=run.seed,
                   backend=p.backend, device=p.device, dtype=p.dtype, init_scale=m.init_scale)

    @classmethod
    def from_config(cls, config: dict, backend="numpy", device=None, dtype=None) -> "MLP":
        """The network :meth:`config` describes (with its initial weights), on ``backend``/``device``, in
        ``dtype`` (default: the configuration's). Entries older files lack take their defaults."""
        missing = [k for k in ("sizes", "activations", "loss", "output") if k not in config]
        if missing:
            raise DataError(f"the configuration lacks {', '.join(missing)}")
        return cls(
            config["sizes"], config["activations"], loss=config["loss"], output=config["output"],
            init=config.get("init", "normal-max"), seed=config.get("seed", 0), backend=backend, device=device,
            dtype=dtype or config.get("dtype", "float32"), init_scale=config.get("init_scale", 1.0),
        )

    def __getstate__(self) -> dict:
        """Pickle host copies of the weights, the configuration and the run's state, never device arrays
        or modules."""
        meta, arrays = state_module.to_host(self)
        state = {"config": meta, "arrays": arrays, "weights": self.get_weights(), "backend": self.backend.name,
                 "device": self.device_name}
        if hasattr(self, "meta"):
            state["meta"] = self.meta
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(type(self).from_config(state["config"], state["backend"], state["device"]).__dict__)
        self.set_weights(state["weights"])
        if "arrays" in state:
            self.state = state_module.restore("a pickled network", self, state["config"], state["arrays"])
        if "meta" in state:
            self.meta = state["meta"]

    def __repr__(self) -> str:
        return (
            f"MLP({'-'.join(map(str, self.sizes))}, activations={self.activation_names}, "
            f"output={self.head.output}, loss={self.head.loss}, backend={self.backend}, dtype={self.dtype})"
        )

    # -- the maths, for one batch -------------------------------------------------------------------
    def loss_and_gradients(self, X, t):
        """Batch-mean loss (a device scalar) and its gradients ``[(dW, db), ...]`` for device arrays
        ``X`` and targets ``t`` (``db`` a row, like ``b``)."""
        return kernels.loss_and_gradients(self.xp, self.network, self.params, X, t)

    def to_onnx(self, path=None, *, label: bool = True, metadata: dict | None = None):
        """Export the forward pass to ONNX (see :mod:`xpnet.export`): input ``"input"`` (N, n_inputs),
        outputs ``"probabilities"`` and ``"label"``; written to ``path`` when given. Needs the ``onnx``
        extra."""
        return export.to_onnx(self, path, label=label, metadata=metadata)


__all__ = ["BaseNetwork", "MLP", "parse_layers"]
