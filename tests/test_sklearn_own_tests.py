"""scikit-learn's own tests of its MLP (the ``test_mlp.py`` that ships inside scikit-learn), run against
xpnet's estimators by changing the one import line: every test passes but those that call private
methods of scikit-learn's class. On NumPy here; ``XPNET_SKLEARN_OWN_BACKENDS=numpy,torch`` runs them
with the estimators' default backend set to each (docs/sklearn.md has the counts)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn's tests need scikit-learn")

#: Tests that call private methods of scikit-learn's own class (``_loss_grad_lbfgs``): not the interface.
PRIVATE = {"test_gradient"}
BACKENDS = os.environ.get("XPNET_SKLEARN_OWN_BACKENDS", "numpy").split(",")

SHIM = '''
import types

import xpnet.sklearn


def _with_backend(cls, name):
    """``cls`` with its ``backend`` parameter's default set to ``name`` (its signature otherwise the same)."""
    init = cls.__init__
    new = types.FunctionType(init.__code__, init.__globals__, "__init__", init.__defaults__, init.__closure__)
    new.__kwdefaults__ = {**init.__kwdefaults__, "backend": name}
    return type(cls.__name__, (cls,), {"__init__": new, "__module__": __name__})  # pickled by this name


MLPClassifier = _with_backend(xpnet.sklearn.MLPClassifier, BACKEND)
MLPRegressor = _with_backend(xpnet.sklearn.MLPRegressor, BACKEND)
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_scikit_learns_own_mlp_tests_pass_on_xpnets_estimators(tmp_path, backend):
    if backend != "numpy":
        pytest.importorskip(backend)
    source = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
    text = source.read_text()
    line = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
    assert text.count(line) == 1, "scikit-learn's test file changed its import line"
    (tmp_path / "xpnet_estimators.py").write_text(SHIM.replace("BACKEND", repr(backend)))
    (tmp_path / "test_mlp_on_xpnet.py").write_text(text.replace(line, "from xpnet_estimators import MLPClassifier, "
                                                                      "MLPRegressor"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "sklearn.conftest", "-p", "no:cacheprovider",
                           "-rfEs", "-W", "ignore", "test_mlp_on_xpnet.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    failed = set(re.findall(r"^(?:FAILED|ERROR) test_mlp_on_xpnet\.py::(\w+)", proc.stdout, flags=re.M))
    counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|errors?|skipped)", proc.stdout.splitlines()[-1]))
    assert failed == PRIVATE, proc.stdout[-3000:]
    assert counts["passed"] >= 55, proc.stdout.splitlines()[-1]
