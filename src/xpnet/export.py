"""Export a trained network to ONNX by running xpnet's own forward kernels on ndonnx arrays.

ndonnx is an Array API library whose arrays record an ONNX graph instead of computing; running
:func:`xpnet.kernels.forward` and the output activation on a symbolic input *is* the export, so no kernel
is written twice. The exported model has

- one input, ``"input"``: float32 (or the network's dtype) of shape ``(N, n_inputs)``, ``N`` free;
- the output ``"probabilities"``: the output activation (softmax probabilities for cross-entropy, the
  sigmoid of the single unit for the logistic loss), shape ``(N, n_outputs)``;
- and, unless ``label=False``, ``"label"``: the predicted class, int64 of shape ``(N,)`` (argmax, or
  probability > 0.5 for one output unit).

It carries the network's configuration and the weights file's metadata (data set, scaling, digits) as
the ONNX metadata entry ``"xpnet"`` (JSON), which ``xpnet evaluate --onnx`` reads. Needs the ``onnx``
extra: ``pip install "xpnet[onnx]"`` (ndonnx to export, onnxruntime to run and check).
"""

from __future__ import annotations

import json

import numpy as np

from . import kernels
from .backends import get_backend
from .errors import BackendError, DataError, ValidationError
from .io import atomic_write
from .metrics import predicted_classes

INPUT = "input"
PROBABILITIES, LABEL = "probabilities", "label"
#: Largest absolute difference between onnxruntime's and xpnet's float32 probabilities that a check accepts.
TOLERANCE = 1e-5


def _missing(package: str, exc: ImportError) -> BackendError:
    return BackendError(f"{package} is not installed ({exc.msg}); pip install 'xpnet[onnx]'")


def to_onnx(model, path=None, *, label: bool = True, metadata: dict | None = None):
    """The ONNX model of ``model``'s forward pass (an ``onnx.ModelProto``), written atomically to
    ``path`` when given. ``metadata`` is stored beside the configuration (JSON, entry ``"xpnet"``)."""
    try:
        backend = get_backend("ndonnx")
    except BackendError as exc:
        raise BackendError(f"{exc}; pip install 'xpnet[onnx]'") from None
    traced = type(model).from_config(model.config(), backend=backend)
    traced.set_weights(model.get_weights())
    X = backend.trace_input(("N", model.sizes[0]), model.dtype)
    z, _ = kernels.forward(backend.xp, traced.network, traced.params, X)
    probabilities = traced.head.activation(backend.xp, z)
    outputs = {PROBABILITIES: probabilities}
    if label:
        classes = predicted_classes(probabilities, backend.xp, columns=model.sizes[-1])
        outputs[LABEL] = backend.xp.astype(classes, backend.xp.int64)
    proto = backend.build({INPUT: X}, outputs)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "xpnet", json.dumps({**(metadata or {}), **model.config()}, sort_keys=True)
    proto.doc_string = f"xpnet {'-'.join(map(str, model.sizes))} network exported by running its forward kernels on ndonnx"
    if path is not None:
        data = proto.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return proto


def opset(proto) -> int:
    """The default-domain ONNX opset version a model uses."""
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


class Exported:
    """An exported model loaded in onnxruntime: ``probabilities(X)``, ``labels(X)``, ``metadata``."""

    def __init__(self, path):
        try:
            import onnxruntime
        except ImportError as exc:
            raise _missing("onnxruntime", exc) from None
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a missing or damaged file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "NO_SUCHFILE" in first or "No such file" in first:
                raise DataError(f"{path}: no such ONNX file") from None
            raise DataError(f"{path}: not a loadable ONNX model ({first[:200]})") from None
        names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        meta = self.session.get_modelmeta().custom_metadata_map.get("xpnet")
        if names != [INPUT] or PROBABILITIES not in outputs or meta is None:
            raise DataError(f"{path}: not an ONNX model exported by xpnet (inputs {names}, outputs {outputs})")
        self.metadata = json.loads(meta)
        self.outputs = outputs
        self.dtype = np.float64 if "double" in self.session.get_inputs()[0].type else np.float32

    def probabilities(self, X) -> np.ndarray:
        return self.session.run([PROBABILITIES], {INPUT: np.asarray(X, dtype=self.dtype)})[0]

    def labels(self, X) -> np.ndarray:
        if LABEL in self.outputs:
            return self.session.run([LABEL], {INPUT: np.asarray(X, dtype=self.dtype)})[0]
        return np.asarray(predicted_classes(self.probabilities(X)))


def check(model, path, X, batch_sizes=(1, 1000)) -> dict:
    """Run the exported model at ``path`` in onnxruntime on the first rows of ``X`` and compare with
    ``model``'s own probabilities and labels: ``{"max_abs_diff": {batch: diff}, "labels_equal": bool,
    "passed": bool, "tolerance": TOLERANCE}``."""
    exported = Exported(path)
    diffs, same = {}, True
    for batch in batch_sizes:
        rows = np.asarray(X[:batch])
        if len(rows) < batch:
            raise ValidationError(f"the check needs {batch} samples; got {len(rows)}")
        diffs[batch] = float(np.abs(exported.probabilities(rows) - model.predict_proba(rows)).max())
        same = same and bool(np.array_equal(exported.labels(rows), model.predict(rows)))
    return {"max_abs_diff": diffs, "labels_equal": same, "tolerance": TOLERANCE,
            "passed": same and max(diffs.values()) <= TOLERANCE}
