"""``python -m xpnet.cli``: the ``xpnet`` command."""

from . import run

run()
