"""``python -m benchmarks run|table|list SUITE``: see :mod:`benchmarks.cli`."""

import sys

from .cli import main

sys.exit(main())
