"""``python -m xpnet.cli``: the ``xpnet`` command."""

import sys

from . import main

sys.exit(main())
