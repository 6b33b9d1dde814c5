"""Wall time of a process that compiles and trains per-sample chunks on JAX (docs/math.md): the
12-10-8-4 tanh net, float64, 2 epochs of 45 rows, with the optimizer options given as a Python dict.

    python benchmarks/chunk_compile.py '{"momentum": 0.9}' 32      # options, chunk rows

Run it as its own process (``time`` around it measures import and compile as well); it prints the
seconds from building the network to the end of training.
"""

import ast
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import xpnet  # noqa: E402
from helpers import random_problem  # noqa: E402

options = ast.literal_eval(sys.argv[1]) if len(sys.argv) > 1 else {}
chunk = int(sys.argv[2]) if len(sys.argv) > 2 else 32
X, y = random_problem(12, 4, n=45, seed=11)
start = time.time()
net = xpnet.MLP([12, 10, 8, 4], activation="tanh", seed=3, backend="jax", dtype="float64")
net.fit(X, y, epochs=2, lr=0.05, batch_size=1, sample_chunk=chunk, **options)
print(options, chunk, f"{time.time() - start:.1f} s", flush=True)
